"""Training jobs for a whole class: queued in the database, trained by Ray workers.

A job is a row of the ``jobs`` table (``model_zoo.db``) and, while it is
queued or training, a Ray actor (``model_zoo.cluster``) in a worker process,
never in the web server. Ray queues the actors until a training slot is free
and places them on any machine of the cluster. The worker writes its progress
into the row about once a second and its result at the end, so every server on
the database shows the same queue, and a server restart loses nothing:

- a finished job is saved as a new zoo version by its worker, in the same
  transaction that marks it saved;
- a stopped one keeps its model in the row until its owner saves or discards it;
- a job whose worker died is marked ``lost`` with the reason, never shown as a model.

The page reads ``view``/``views`` (the live curve of a running job comes
straight from its worker through Ray) and calls ``submit``, ``stop``,
``save`` and ``discard``:

    job_id = jobs.submit(TrainingSettings.for_architecture("mlp_1x50", epochs=3), owner="otter-17")
    jobs.view(job_id).epoch
    jobs.stop(job_id)                       # after the current batch
    jobs.save(job_id, "my-mlp")             # a stopped job: keep it …
    jobs.discard(job_id)                    # … or drop it
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import math
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from model_zoo import db, store, training
from model_zoo.training import TrainingLimits, TrainingSettings

MAX_CURVE_POINTS = 600  # per-batch points kept for the live chart
FLUSH_SECONDS = 1.0  # a worker writes its progress to the database at most this often
HEARTBEAT_SECONDS = 5.0  # a worker says it is alive at least this often, even between batches
LOST_AFTER_SECONDS = 60.0  # a training job silent for this long has lost its worker
RECONCILE_SECONDS = 2.0  # how often a server checks its jobs' workers
KEEP_ENDED_JOBS = 30  # ended jobs listed in the queue table
KEEP_UNDECIDED_JOBS = 10  # stopped jobs whose learner left: the oldest are discarded
MAX_ACTIVE_VARIABLE = "DIGIT_ZOO_MAX_ACTIVE_JOBS"
DEFAULT_MAX_ACTIVE = 30  # a class: one job each


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"  # trained, but saving failed: its owner can try again
    STOPPED = "stopped"  # stopped early: its owner saves or discards what it learned
    FAILED = "failed"
    SAVED = "saved"
    DISCARDED = "discarded"
    LOST = "lost"  # its worker died: nothing to keep

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)

    @property
    def undecided(self) -> bool:
        return self in (JobState.FINISHED, JobState.STOPPED)


ACTIVE = [state.value for state in JobState if state.active]
UNDECIDED = [state.value for state in JobState if state.undecided]


class JobError(ValueError):
    """A job that cannot be submitted, stopped, saved or discarded as asked."""


class JobLimitError(JobError):
    """A learner who already has a job waiting or training asked for another, or the class is full."""


class ClusterError(JobError):
    """Ray cannot be reached or started."""


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's state and progress, safe to read anywhere."""

    id: str
    owner: str
    settings: TrainingSettings
    requested_name: str
    state: JobState
    phase: str  # what the job is doing now, in words
    position: int | None  # 0 training, 1 next in the queue, …; None when ended
    worker: str  # where it trains
    epoch: int  # epochs completed
    epochs: int
    step: int  # batches done in the current epoch
    steps_per_epoch: int
    batch_steps: list[int]  # global step of each kept per-batch point
    batch_loss: list[float]  # the loss of that batch
    batch_loss_smoothed: list[float]
    history: dict[str, list[float]]  # loss, accuracy, val_loss, val_accuracy per epoch
    digits_per_second: float | None
    seconds: float  # training time so far
    seconds_left: float | None
    stop_requested: bool
    error: str
    saved_name: str
    test_accuracy: float | None
    stopped_early: bool

    @property
    def active(self) -> bool:
        return self.state.active

    @property
    def undecided(self) -> bool:
        return self.state.undecided

    @property
    def fraction_done(self) -> float:
        total = self.epochs * self.steps_per_epoch
        if self.state in (JobState.FINISHED, JobState.SAVED) and not self.stopped_early:
            return 1.0
        return min(1.0, (self.epoch * self.steps_per_epoch + self.step) / total) if total else 0.0


# ------------------------------------------------------------------ progress (in the worker)


class JobProgress(training.TrainingProgress):
    """What a worker knows of its run: fed by ``training.train``, read as ``snapshot()``."""

    def __init__(self, settings: TrainingSettings):
        self.settings = settings
        self._lock = threading.Lock()
        self.phase = "loading the digits and building the model"
        self._epoch = self._step = self._steps_per_epoch = self._train_digits = 0
        self._previous_running_loss = 0.0
        self._curve = training.LossCurve(MAX_CURVE_POINTS)
        self._history: dict[str, list[float]] = {}
        self._started: float | None = None  # perf_counter when the first batch began
        self._ended: float | None = None

    def on_start(self, settings, steps_per_epoch, train_digits) -> None:
        with self._lock:
            self._steps_per_epoch, self._train_digits = steps_per_epoch, train_digits
            self.phase = "starting: the first batch builds the model"
            self._started = time.perf_counter()

    def on_batch(self, epoch, step, loss) -> None:
        # Keras reports the running mean over the epoch so far: recover this batch's loss.
        batch_loss = loss if step == 1 else step * loss - (step - 1) * self._previous_running_loss
        self._previous_running_loss = loss
        with self._lock:
            self._epoch, self._step = epoch, step
            self._curve.add(epoch * self._steps_per_epoch + step, max(0.0, batch_loss))
            self.phase = "checking the validation digits" if step == self._steps_per_epoch else "training"

    def on_epoch(self, epoch, metrics, seconds) -> None:
        with self._lock:
            for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
                self._history.setdefault(name, []).append(float(metrics.get(name, math.nan)))
            self._epoch, self._step = epoch, 0
            self.phase = "training" if epoch < self.settings.epochs else "scoring the 10,000 test digits"

    def ended(self, phase: str) -> None:
        with self._lock:
            self.phase = phase
            if self._started is not None and self._ended is None:
                self._ended = time.perf_counter()

    def snapshot(self) -> dict:
        """Plain JSON: what the database keeps and the page draws."""
        with self._lock:
            seconds = 0.0
            if self._started is not None:
                seconds = (self._ended or time.perf_counter()) - self._started
            steps, loss, smoothed = self._curve.points()
            return {"phase": self.phase, "epoch": self._epoch, "step": self._step,
                    "steps_per_epoch": self._steps_per_epoch, "train_digits": self._train_digits,
                    "batch_steps": steps, "batch_loss": loss, "batch_loss_smoothed": smoothed,
                    "history": {k: list(v) for k, v in self._history.items()},
                    "seconds": round(seconds, 3), "running": self._ended is None}


# ------------------------------------------------------------------ the page's API


def submit(settings: TrainingSettings, owner: str, name: str = "",
           limits: TrainingLimits | None = None, trained_in: str = "app", key: str | None = None) -> str:
    """Queue a job on the Ray cluster; its id.

    With a ``key`` (a secret in its owner's link), only that key's holder or
    the teacher may stop, save or discard it. Raises ``SettingsError`` for a
    setting out of range and ``JobLimitError`` when the learner already has a
    job or the class's queue is full; nothing is queued then. Loads MNIST into
    Ray's object store on the first job.
    """
    from model_zoo import cluster  # Ray starts with the first job, not with the app

    limits = limits or TrainingLimits.from_env()
    settings.validate(limits)
    maximum = max_active_jobs()
    try:
        connection_info = cluster.connect()
    except (ConnectionError, RuntimeError, ValueError) as error:  # what ray.init raises
        where = os.environ.get("RAY_ADDRESS") or "a local Ray instance"
        raise ClusterError(f"Training cannot start: Ray at {where} is not available ({error}). "
                           "Check RAY_ADDRESS, or unset it to train on this machine.") from error
    job_id = uuid.uuid4().hex[:10]
    with db.engine().begin() as connection:
        mine = connection.execute(sa.select(db.jobs.c.state, db.jobs.c.settings).where(
            db.jobs.c.owner == owner, db.jobs.c.state.in_(ACTIVE))).first()
        if mine is not None:
            raise JobLimitError(
                f"{owner} already has a job {mine.state} ({mine.settings['arch']}): one job per "
                "learner at a time, so the queue stays fair. Stop it or wait for it to end.")
        active = connection.execute(sa.select(sa.func.count()).select_from(db.jobs)
                                    .where(db.jobs.c.state.in_(ACTIVE))).scalar()
        if active >= maximum:
            raise JobLimitError(f"The class's queue is full ({active} jobs waiting or training, "
                                f"at most {maximum}): try again when one has ended.")
        connection.execute(db.jobs.insert().values(
            id=job_id, owner=owner, owner_key=_hashed(key), settings=dataclasses.asdict(settings),
            requested_name=name,
            state=JobState.QUEUED.value, phase="waiting for a free training slot",
            cluster=connection_info.cluster, submitted_at=time.time()))
    try:
        cluster.start_job(job_id, settings, limits, trained_in)
    except Exception as error:  # the row must not stay queued for a job Ray never got
        _end(job_id, JobState.FAILED, phase="not started", error=f"Could not start on Ray: {error}")
        raise
    _forget_undecided()
    return job_id


def view(job_id: str) -> JobView | None:
    """The job as it is now; None for an unknown id."""
    _reconcile()
    with db.engine().connect() as connection:
        row = connection.execute(sa.select(*_VIEW_COLUMNS).where(db.jobs.c.id == job_id)).first()
        if row is None:
            return None
        return _view(row, _positions(connection).get(job_id), live=True)


def views() -> list[JobView]:
    """The class's queue: every active job and the latest ended ones, oldest first."""
    _reconcile()
    with db.engine().connect() as connection:
        positions = _positions(connection)
        active = connection.execute(sa.select(*_VIEW_COLUMNS).where(db.jobs.c.state.in_(ACTIVE))).all()
        ended = connection.execute(sa.select(*_VIEW_COLUMNS).where(db.jobs.c.state.not_in(ACTIVE))
                                   .order_by(db.jobs.c.submitted_at.desc()).limit(KEEP_ENDED_JOBS)).all()
    rows = sorted([*active, *ended], key=lambda row: row.submitted_at)
    return [_view(row, positions.get(row.id), live=False) for row in rows]


def owns(job_id: str, key: str | None, teacher: bool = False) -> bool:
    """Whether this caller may stop, save or discard the job: its key's holder, or the teacher."""
    with db.engine().connect() as connection:
        owner_key = connection.execute(sa.select(db.jobs.c.owner_key).where(db.jobs.c.id == job_id)).scalar()
    return teacher or owner_key is None or (key is not None and hmac.compare_digest(owner_key, _hashed(key)))


def _authorise(job_id: str, key: str | None, teacher: bool, action: str) -> None:
    if not owns(job_id, key, teacher):
        raise JobError(f"Only the learner who started job {job_id}, or the teacher, can {action} it "
                       "(from the link its Train page gave them).")


def _hashed(key: str | None) -> str | None:
    return hashlib.sha256(key.encode()).hexdigest() if key is not None else None


def stop(job_id: str, *, key: str | None = None, teacher: bool = False) -> None:
    """A training job ends after its current batch; a queued one leaves the queue."""
    from model_zoo import cluster

    _authorise(job_id, key, teacher, "stop")
    left = _end(job_id, JobState.DISCARDED, phase="left the queue before it started",
                only_from=[JobState.QUEUED.value])
    if left:
        cluster.cancel(job_id)
        return
    with db.engine().begin() as connection:
        connection.execute(db.jobs.update().where(db.jobs.c.id == job_id, db.jobs.c.state.in_(ACTIVE))
                           .values(stop_requested=True, phase="stopping after this batch"))
    cluster.stop(job_id)  # at once through Ray; the worker also reads the flag above


def save(job_id: str, name: str = "", *, key: str | None = None, teacher: bool = False) -> store.ZooEntry:
    """Save a stopped (or finished, unsaved) job's model as a new user version."""
    _authorise(job_id, key, teacher, "save")
    with db.engine().begin() as connection:
        row = connection.execute(sa.select(db.jobs).where(db.jobs.c.id == job_id)).first()
        if row is None:
            raise JobError(f"Job {job_id} is not in the database.")
        claimed = connection.execute(db.jobs.update().where(
            db.jobs.c.id == job_id, db.jobs.c.state.in_(UNDECIDED), db.jobs.c.result_model.is_not(None))
            .values(state=JobState.SAVED.value)).rowcount  # a second click finds it saved
        if not claimed:
            raise JobError(f"Job {job_id} is {row.state}: there is no model to save.")
        entry = store.insert_version(connection, name or row.requested_name, row.result_record,
                                     row.result_model, row.result_tensorboard)
        connection.execute(db.jobs.update().where(db.jobs.c.id == job_id).values(
            saved_name=entry.name, phase=f"saved as {entry.name}", error="",
            result_model=None, result_tensorboard=None))
    return entry


def discard(job_id: str, *, key: str | None = None, teacher: bool = False) -> None:
    """Drop a stopped or finished job's model."""
    _authorise(job_id, key, teacher, "discard")
    if not _end(job_id, JobState.DISCARDED, phase="discarded", only_from=UNDECIDED):
        state = _state(job_id)
        raise JobError(f"Job {job_id} is {state or 'unknown'}: there is nothing to discard.")


def max_active_jobs() -> int:
    """The teacher's cap on jobs waiting or training at once (``DIGIT_ZOO_MAX_ACTIVE_JOBS``)."""
    return training.whole_number_from_env(MAX_ACTIVE_VARIABLE, DEFAULT_MAX_ACTIVE)


# ------------------------------------------------------------------ the worker's writes


def worker_started(job_id: str) -> bool:
    """Claim a queued job for this worker; False if it left the queue meanwhile."""
    now = time.time()
    with db.engine().begin() as connection:
        return bool(connection.execute(db.jobs.update().where(
            db.jobs.c.id == job_id, db.jobs.c.state == JobState.QUEUED.value).values(
            state=JobState.RUNNING.value, phase="loading the digits and building the model",
            worker=f"{socket.gethostname()}:{os.getpid()}", started_at=now, heartbeat_at=now)).rowcount)


def worker_report(job_id: str, progress: JobProgress | None) -> bool:
    """Write progress (or only a heartbeat); True if the job's owner asked it to stop."""
    values: dict = {"heartbeat_at": time.time()}
    if progress is not None:
        snapshot = progress.snapshot()
        values |= {"progress": snapshot, "phase": snapshot["phase"]}
    with db.engine().begin() as connection:
        connection.execute(db.jobs.update().where(db.jobs.c.id == job_id,
                                                  db.jobs.c.state == JobState.RUNNING.value)
                           .values(**values))
        return bool(connection.execute(sa.select(db.jobs.c.stop_requested)
                                       .where(db.jobs.c.id == job_id)).scalar())


def worker_finished(job_id: str, progress: JobProgress, result: training.TrainingResult,
                    tensorboard_dir, trained_in: str) -> None:
    """Record the end of a run: a finished one becomes a version, a stopped one waits."""
    record = store.result_record(result, trained_in=trained_in,
                                 extra={"job": job_id, "owner": _owner(job_id)})
    content = store.model_bytes(result.model)
    logs = store.zip_folder(tensorboard_dir)
    common = dict(progress=progress.snapshot(), ended_at=time.time(), heartbeat_at=time.time(),
                  test_accuracy=result.test_accuracy, stopped_early=result.stopped_early)
    running = (db.jobs.c.id == job_id) & (db.jobs.c.state == JobState.RUNNING.value)
    if not result.stopped_early:
        try:
            with db.engine().begin() as connection:
                entry = store.insert_version(connection, _requested_name(job_id), record, content, logs)
                connection.execute(db.jobs.update().where(running).values(
                    state=JobState.SAVED.value, phase=f"saved as {entry.name}", saved_name=entry.name,
                    **common))
            return
        except (sa.exc.SQLAlchemyError, ValueError) as error:  # e.g. a full disk: its owner saves again
            keep = dict(state=JobState.FINISHED.value, phase="finished, not saved",
                        error=f"Training finished, but saving failed: {error}")
    else:
        keep = dict(state=JobState.STOPPED.value, phase="stopped: save or discard what it learned")
    with db.engine().begin() as connection:
        connection.execute(db.jobs.update().where(running).values(
            result_record=record, result_model=content, result_tensorboard=logs, **keep, **common))


def worker_lost(job_id: str, reason: str, database: str) -> None:
    """The dispatcher's word that a job's worker process died."""
    with db.engine(database).begin() as connection:
        connection.execute(db.jobs.update().where(db.jobs.c.id == job_id, db.jobs.c.state.in_(ACTIVE))
                           .values(state=JobState.LOST.value, phase="lost", ended_at=time.time(),
                                   error=f"Lost: {reason}. Start it again."))


def worker_failed(job_id: str, progress: JobProgress | None, error: BaseException) -> None:
    snapshot = progress.snapshot() if progress is not None else None
    _end(job_id, JobState.FAILED, phase="failed", error=f"{type(error).__name__}: {error}",
         only_from=[JobState.RUNNING.value], progress=snapshot)


# ------------------------------------------------------------------ reading rows

_VIEW_COLUMNS = [column for column in db.jobs.c
                 if column.name not in ("owner_key", "result_record", "result_model", "result_tensorboard")]


def _view(row, position: int | None, *, live: bool) -> JobView:
    from model_zoo import cluster

    settings = TrainingSettings(**row.settings)
    state = JobState(row.state)
    snapshot = row.progress or {}
    phase = row.phase
    if live and state == JobState.RUNNING:
        fresh = cluster.live_progress(row.id, row.cluster)  # through Ray: the newest batch
        if fresh is not None:
            snapshot, phase = fresh, fresh["phase"] if not row.stop_requested else row.phase
    epoch, step = snapshot.get("epoch", 0), snapshot.get("step", 0)
    steps_per_epoch, train_digits = snapshot.get("steps_per_epoch", 0), snapshot.get("train_digits", 0)
    seconds = snapshot.get("seconds", 0.0)
    done = epoch * steps_per_epoch + step
    rate = left = None
    if done and seconds > 0:
        rate = (epoch * train_digits + min(step * settings.batch_size, train_digits)) / seconds
        if state == JobState.RUNNING:
            left = seconds * (settings.epochs * steps_per_epoch - done) / done
    return JobView(
        id=row.id, owner=row.owner, settings=settings, requested_name=row.requested_name, state=state,
        phase=phase, position=position, worker=row.worker, epoch=epoch, epochs=settings.epochs,
        step=step, steps_per_epoch=steps_per_epoch, batch_steps=snapshot.get("batch_steps", []),
        batch_loss=snapshot.get("batch_loss", []),
        batch_loss_smoothed=snapshot.get("batch_loss_smoothed", []),
        history=snapshot.get("history", {}), digits_per_second=rate, seconds=seconds, seconds_left=left,
        stop_requested=row.stop_requested, error=row.error, saved_name=row.saved_name,
        test_accuracy=row.test_accuracy, stopped_early=row.stopped_early)


def _positions(connection: sa.Connection) -> dict[str, int]:
    """0 for every training job, then 1, 2, … for the queue in the order of submission."""
    rows = connection.execute(sa.select(db.jobs.c.id, db.jobs.c.state).where(db.jobs.c.state.in_(ACTIVE))
                              .order_by(db.jobs.c.submitted_at)).all()
    positions = {row.id: 0 for row in rows if row.state == JobState.RUNNING.value}
    queued = [row.id for row in rows if row.state == JobState.QUEUED.value]
    return positions | {job_id: i for i, job_id in enumerate(queued, start=1)}


def _state(job_id: str) -> str | None:
    with db.engine().connect() as connection:
        return connection.execute(sa.select(db.jobs.c.state).where(db.jobs.c.id == job_id)).scalar()


def _owner(job_id: str) -> str:
    with db.engine().connect() as connection:
        return connection.execute(sa.select(db.jobs.c.owner).where(db.jobs.c.id == job_id)).scalar() or ""


def _requested_name(job_id: str) -> str:
    with db.engine().connect() as connection:
        return connection.execute(sa.select(db.jobs.c.requested_name)
                                  .where(db.jobs.c.id == job_id)).scalar() or ""


def _end(job_id: str, state: JobState, *, phase: str, error: str = "",
         only_from: list[str] | None = None, **values) -> bool:
    """Move a job to an ended state if it is still in one of ``only_from``; True if it was."""
    condition = db.jobs.c.id == job_id
    if only_from is not None:
        condition &= db.jobs.c.state.in_(only_from)
    values = {k: v for k, v in values.items() if v is not None}
    with db.engine().begin() as connection:
        return bool(connection.execute(db.jobs.update().where(condition).values(
            state=state.value, phase=phase, error=error, ended_at=time.time(),
            result_model=None, result_tensorboard=None, **values)).rowcount)


# ------------------------------------------------------------------ housekeeping

_last_reconcile = 0.0
_reconcile_lock = threading.Lock()


def _reconcile() -> None:
    """Mark jobs whose worker is gone as lost, with the reason (at most every few seconds)."""
    global _last_reconcile
    from model_zoo import cluster

    with _reconcile_lock:
        if time.monotonic() - _last_reconcile < RECONCILE_SECONDS:
            return
        _last_reconcile = time.monotonic()
    with db.engine().connect() as connection:
        rows = connection.execute(sa.select(db.jobs.c.id, db.jobs.c.state, db.jobs.c.cluster,
                                            db.jobs.c.heartbeat_at)
                                  .where(db.jobs.c.state.in_(ACTIVE))).all()
    now = time.time()
    for row in rows:
        reason = cluster.why_gone(row.id, row.cluster)
        if reason is None and row.state == JobState.RUNNING.value and row.heartbeat_at is not None \
                and now - row.heartbeat_at > LOST_AFTER_SECONDS:
            reason = (f"no word from its worker for {now - row.heartbeat_at:.0f} s: its machine or "
                      "Ray instance stopped")
        if reason is not None:
            _end(row.id, JobState.LOST, phase="lost", error=f"Lost: {reason}. Start it again.",
                 only_from=[row.state])


def _forget_undecided() -> None:
    """Bound the database: the oldest stopped jobs nobody saved are discarded."""
    with db.engine().connect() as connection:
        undecided = connection.execute(sa.select(db.jobs.c.id).where(db.jobs.c.state.in_(UNDECIDED))
                                       .order_by(db.jobs.c.ended_at.desc())).scalars().all()
    for job_id in undecided[KEEP_UNDECIDED_JOBS:]:
        _end(job_id, JobState.DISCARDED, phase="discarded: nobody saved it", only_from=UNDECIDED)
