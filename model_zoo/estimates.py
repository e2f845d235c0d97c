"""How long a training job takes on this server, and when a queued one starts and ends.

Measured, not guessed: a job that trains to its end leaves its speed in
``job_timings`` (its digits a second in the steady epochs, and the fixed
rest: starting, building, scoring, saving), and the next job of the same kind
is estimated from the median of the latest ones. Until a kind has trained
here, the shipped model's own training speed is the first guess.

    estimate = estimates.job_seconds(settings)     # Estimate(seconds=24.0, basis="from 5 cnn jobs …")
    estimates.schedule(queue, slots=1)             # {job id: (starts in, ends in)} in seconds
    estimates.over_budget(settings, minutes=3)     # the refusal, with a suggestion; None when it fits
"""

from __future__ import annotations

import functools
import json
import math
import statistics
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from model_zoo import architectures, config, db
from model_zoo.training import PEN_RENDERS, TrainingSettings

KEEP_TIMINGS = 8  # the latest jobs of a kind that an estimate is the median of
FRESH_SECONDS = 10.0  # a page's estimates reuse what this process read this recently
FIRST_GUESS_FIXED_SECONDS = 6.0  # a warm worker's start, build, scoring and saving (docs/performance.md)
USPS_TRAIN_DIGITS = 7_291  # data.load_usps's training part
PEN_TRAIN_DIGITS = 7_072  # UNIPEN's train writers' digits (data.pen_split), each drawn PEN_RENDERS times
ONES_SHARE = 0.1124  # MNIST's share of 1s, redrawn once more with a European flag by the strokes option


@dataclass(frozen=True)
class Speed:
    digits_per_second: float
    fixed_seconds: float
    basis: str  # where the figures come from, in words


@dataclass(frozen=True)
class Estimate:
    seconds: float  # from a free training slot to the saved version
    basis: str


@dataclass(frozen=True)
class QueuedJob:
    """What the schedule needs of a job in the queue (``jobs.JobView`` has it)."""

    id: str
    settings: TrainingSettings
    running_for: float | None  # seconds since its worker took it; None while it waits
    fraction_done: float  # of its training
    training_seconds: float  # its training so far


def speed_key(settings: TrainingSettings) -> str:
    """What sets a job's digits a second: the architecture, its shape, augmentation, the batch size."""
    shape = f" {settings.width}x{settings.hidden_layers}" if settings.width else ""
    return f"{settings.arch}{shape} batch {settings.batch_size}{' augmented' if settings.augment else ''}"


def digits_per_epoch(settings: TrainingSettings) -> int:
    """The training digits of one epoch, as ``training.train`` gathers them (the class's: about a quarter)."""
    digits = settings.train_size - max(1, round(settings.train_size * settings.val_fraction))
    if settings.usps:
        digits += USPS_TRAIN_DIGITS
    if settings.strokes:
        digits *= 2 + ONES_SHARE
    if settings.unipen:
        digits += PEN_RENDERS * PEN_TRAIN_DIGITS
    if settings.class_digits:
        digits *= 4 / 3
    return round(digits)


def timing(
    settings: TrainingSettings, train_digits: int, epoch_seconds: list[float], wall_seconds: float
) -> dict | None:
    """A finished job's ``job_timings`` values (without its id), or None when it says nothing of speed.

    The first epoch also traces the model: a job of one epoch has no steady one, and its
    speed would make every estimate of its kind far too long (2,000 digits' tracing, say,
    read as a 5-epoch default's "3 min 50 s").
    """
    if len(epoch_seconds) < 2 or not train_digits or wall_seconds <= 0:
        return None
    steady = statistics.median(epoch_seconds[1:])
    rate = train_digits / max(steady, 1e-3)
    return {
        "speed_key": speed_key(settings),
        "digits_per_second": rate,
        "fixed_seconds": max(0.0, wall_seconds - len(epoch_seconds) * steady),
        "ended_at": time.time(),
    }


def speed(settings: TrainingSettings) -> Speed:
    """The speed of jobs like this one here: measured, else the shipped model's training scaled to this server."""
    key = speed_key(settings)
    rows = _latest(key)
    if rows:
        jobs = f"{len(rows)} job{'s' * (len(rows) != 1)}"
        return Speed(
            statistics.median(row[1] for row in rows),
            statistics.median(row[2] for row in rows),
            f"measured: {jobs} of {key} trained here",
        )
    shipped = _shipped_speed(settings.arch)
    others = [row for row in _latest(None) if _shipped_kind(row[0])]
    # An MLP's speed says more of another MLP's than of a CNN's (per-batch costs against arithmetic).
    alike = [row for row in others if _dense(row[0].split()[0]) == _dense(settings.arch)]
    others = alike or others
    if not others:
        return Speed(shipped, FIRST_GUESS_FIXED_SECONDS, f"a first guess from the shipped {settings.arch}'s training")
    # The other kinds that trained here say how this server compares with the machine that trained the zoo.
    scale = statistics.median(row[1] / _shipped_speed(row[0].split()[0]) for row in others)
    jobs = f"{len(others)} job{'s' * (len(others) != 1)}"
    return Speed(
        shipped * scale,
        statistics.median(row[2] for row in others),
        f"a first guess from the shipped {settings.arch}'s training, scaled by {jobs} of other kinds trained here",
    )


def _dense(arch: str) -> bool:
    return architectures.get(arch).family == "mlp"


def _shipped_kind(key: str) -> bool:
    """Whether ``key`` is the speed key of an architecture's tutorial settings (as its shipped model trained)."""
    arch = key.split()[0]
    return arch in architectures.ZOO and key == speed_key(TrainingSettings.for_architecture(arch))


def job_seconds(settings: TrainingSettings) -> Estimate:
    """How long ``settings`` keeps a training slot, from the moment it gets one."""
    found = speed(settings)
    seconds = found.fixed_seconds + settings.epochs * digits_per_epoch(settings) / found.digits_per_second
    return Estimate(seconds, found.basis)


def schedule(queue: list[QueuedJob], slots: int) -> dict[str, tuple[float, float]]:
    """When each job starts and ends, in seconds from now: the queue in order, each to the first free slot.

    A training job's end is projected from its progress once it is a tenth
    through, else from its estimate; either way never in the past.
    """
    free = []  # when each slot is free, in seconds from now
    times = {}
    for job in queue:
        if job.running_for is None:
            continue
        found = speed(job.settings)
        total = job_seconds(job.settings).seconds
        if job.fraction_done >= 0.1 and job.training_seconds > 0:
            total = found.fixed_seconds + job.training_seconds / job.fraction_done
        free.append(max(0.0, total - job.running_for))
        times[job.id] = (0.0, free[-1])
    free += [0.0] * max(0, slots - len(free))
    for job in queue:
        if job.running_for is not None:
            continue
        free.sort()
        start = free[0]
        free[0] = start + job_seconds(job.settings).seconds
        times[job.id] = (start, free[0])
    return times


def over_budget(settings: TrainingSettings, minutes: int) -> str | None:
    """Why ``settings`` may not run under a budget of ``minutes`` a job, with what would fit; None if it fits."""
    estimate = job_seconds(settings)
    budget = minutes * 60
    if estimate.seconds <= budget:
        return None
    found = speed(settings)
    per_epoch = digits_per_epoch(settings) / found.digits_per_second
    room = budget - found.fixed_seconds
    fits = []
    if (epochs := math.floor(room / per_epoch)) >= 1:
        fits.append(f"{epochs} epoch{'s' * (epochs != 1)}")
    digits = math.floor(settings.train_size * room / (settings.epochs * per_epoch) / 1000) * 1000
    if digits >= 1000:
        fits.append(f"{digits:,} training digits")
    suggestion = " or ".join(fits) if fits else "a smaller model or fewer digits"
    return (
        f"This job would take about {duration(estimate.seconds)} on this server ({estimate.basis}), "
        f"over the class's budget of {minutes} min a job. Try {suggestion}: "
        f"the budget is the teacher's (DIGIT_ZOO_MAX_JOB_MINUTES)."
    )


def duration(seconds: float) -> str:
    """ "45 s", "3 min 10 s", "1 h 05 min": a time as a learner reads it."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# ------------------------------------------------------------------ reading what was measured

_read: dict[tuple[str, str], tuple[float, list]] = {}  # (database, key) → (when read, rows)
_read_lock = threading.Lock()


def _latest(key: str | None) -> list[tuple[str, float, float]]:
    """(speed key, digits a second, fixed seconds) of the latest jobs of ``key`` (None: of any kind).

    Read at most every few seconds: a page's estimates are made on every run.
    """
    cache_key = (str(db.url()), key)
    with _read_lock:
        found = _read.get(cache_key)
    if found is not None and time.monotonic() - found[0] < FRESH_SECONDS:
        return found[1]
    query = sa.select(db.job_timings.c.speed_key, db.job_timings.c.digits_per_second, db.job_timings.c.fixed_seconds)
    if key is not None:
        query = query.where(db.job_timings.c.speed_key == key)
    with db.reading() as connection:
        rows = connection.execute(
            query.order_by(db.job_timings.c.ended_at.desc()).limit(
                KEEP_TIMINGS * (1 if key else len(architectures.ZOO))
            )
        ).all()
    rows = [tuple(row) for row in rows]
    with _read_lock:
        _read[cache_key] = (time.monotonic(), rows)
    return rows


def forget() -> None:
    """Read the database afresh at the next estimate (a job just ended here; tests)."""
    with _read_lock:
        _read.clear()


@functools.cache
def _shipped_speed(arch: str) -> float:
    """Digits a second in the shipped model's steady epochs (its record), the zoo's median if it has none."""
    rates = {}
    for path in config.TRAINED_DIR.glob("*.json"):
        record = json.loads(path.read_text())
        seconds = record.get("seconds_per_epoch") or []
        if record.get("train_digits") and seconds:
            rates[path.stem] = record["train_digits"] / statistics.median(seconds[1:] or seconds)
    if arch in rates:
        return rates[arch]
    return statistics.median(rates.values()) if rates else 10_000.0
