"""Training jobs for a whole class: queued in the database, trained by Ray workers.

Long on purpose: the page's whole API over a job's life (submit, queue, stop, save, discard,
lost), each step a guarded transaction beside the others it must agree with.

A job is a row of the ``jobs`` table (``model_zoo.db``) and, while it is
queued or training, a Ray task (``model_zoo.cluster``) in a worker process,
never in the web server. Ray queues the tasks until a training slot is free
and places them on any machine of the cluster. The worker writes its progress
(``model_zoo.job_records``)
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
import hmac
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from model_zoo import config, db, estimates, housekeeping, job_records, store
from model_zoo.config import SettingsError
from model_zoo.job_records import ACTIVE, UNDECIDED, JobState
from model_zoo.training import TrainingLimits, TrainingSettings

LOST_AFTER_SECONDS = 60.0  # a training job silent for this long has lost its worker
RECONCILE_SECONDS = 2.0  # how often a server checks its jobs' workers
HANDOVER_SECONDS = 300.0  # a job queued but not handed to Ray after this: its server died meanwhile
KEEP_ENDED_JOBS = 30  # ended jobs listed in the queue table
KEEP_UNDECIDED_JOBS = 3  # a learner's stopped jobs not saved: their oldest are discarded
MAX_ACTIVE_VARIABLE = "DIGIT_ZOO_MAX_ACTIVE_JOBS"
DEFAULT_MAX_ACTIVE = 30  # a class: one job each


LOG = logging.getLogger(__name__)


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
    started_at: float | None  # Unix seconds: when its worker took it
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


# ------------------------------------------------------------------ the page's API


def submit(
    settings: TrainingSettings,
    owner: str,
    name: str = "",
    limits: TrainingLimits | None = None,
    trained_in: str = "app",
    key: str | None = None,
    learner: str | None = None,
) -> str:
    """Queue a job on the Ray cluster; its id.

    With a ``key`` (a secret in its owner's link), only that key's holder or
    the teacher may stop, save or discard it. ``learner`` is the id of the
    learner's browser: one job at a time each (None: a script's job, no
    such limit). Raises ``SettingsError`` for a setting out of range and
    ``JobLimitError`` when the learner already has a job or the class's queue
    is full; nothing is queued then. Loads MNIST into Ray's object store on
    the first job.
    """
    from model_zoo import cluster  # Ray starts with the first job, not with the app

    limits = limits or TrainingLimits.from_env()
    settings.validate(limits)
    if limits.max_job_minutes and (problem := estimates.over_budget(settings, limits.max_job_minutes)):
        raise SettingsError(problem)
    maximum = max_active_jobs()
    if problem := housekeeping.storage_problem():
        raise JobError(f"Training cannot start: {problem}. Tell the teacher; nothing was queued.")
    try:
        connection_info = cluster.connect()
    except cluster.RayUnavailable as error:
        raise ClusterError(
            f"Training cannot start: {error}. Nothing was queued; tell the teacher (RAY_ADDRESS "
            "names the cluster; unset, the server trains on its own machine)."
        ) from error
    job_id = uuid.uuid4().hex[:10]
    try:
        _queue(job_id, settings, owner, name, key, learner, connection_info.cluster, maximum)
    except sa.exc.OperationalError as error:  # e.g. a read-only database file, a full disk
        LOG.error("Could not record job %s: %s", job_id, error)
        raise JobError(
            "Training cannot start: the database refuses to record the job (read-only, or "
            "its disk is full). Tell the teacher; nothing was queued."
        ) from None
    try:
        cluster.start_job(job_id, settings, limits, trained_in=trained_in, owner=owner, requested_name=name)
    except Exception as error:  # the row must not stay queued for a job Ray never got
        job_records.end(job_id, JobState.FAILED, phase="not started", error=f"Could not start on Ray: {error}")
        raise
    with db.engine().begin() as connection:  # from now on, a Ray instance that does not know it lost it
        connection.execute(db.jobs.update().where(db.jobs.c.id == job_id).values(handed_at=time.time()))
    _forget_undecided(learner)
    return job_id


def _queue(
    job_id: str,
    settings: TrainingSettings,
    owner: str,
    name: str,
    key: str | None,
    learner: str | None,
    cluster_name: str,
    maximum: int,
) -> None:
    """The job's row, queued, if its learner has no other job and the class has fewer than ``maximum``.

    The checks and the insert are one step (``db.one_writer_at_a_time``); the
    partial unique index ``one_active_job_per_learner`` holds the first rule
    whatever a caller does.
    """
    learner_key = db.hashed_key(learner)
    try:
        with db.engine().begin() as connection:
            db.one_writer_at_a_time(connection)
            if learner_key is not None:
                mine = connection.execute(
                    sa.select(db.jobs.c.state, db.jobs.c.settings).where(
                        db.jobs.c.learner_key == learner_key, db.jobs.c.state.in_(ACTIVE)
                    )
                ).first()
                if mine is not None:
                    raise _one_each(owner, f" {mine.state} ({mine.settings['arch']})")
            active = connection.execute(
                sa.select(sa.func.count()).select_from(db.jobs).where(db.jobs.c.state.in_(ACTIVE))
            ).scalar()
            if active >= maximum:
                raise JobLimitError(
                    f"The class's queue is full ({active} jobs waiting or training, "
                    f"at most {maximum}): try again when one has ended."
                )
            connection.execute(
                db.jobs.insert().values(
                    id=job_id,
                    owner=owner,
                    owner_key=db.hashed_key(key),
                    learner_key=learner_key,
                    settings=dataclasses.asdict(settings),
                    requested_name=name,
                    state=JobState.QUEUED.value,
                    phase="waiting for a free training slot",
                    cluster=cluster_name,
                    submitted_at=time.time(),
                )
            )
    except sa.exc.IntegrityError:  # the index: another submit of this learner's got in first
        raise _one_each(owner, "") from None


def _one_each(owner: str, which: str) -> JobLimitError:
    return JobLimitError(
        f"{owner} already has a job{which}: one job per learner at a time, so the queue "
        "stays fair. Stop it or wait for it to end."
    )


NICKNAMES = ("otter", "heron", "lynx", "puffin", "gecko", "marmot", "ibis", "tapir", "koala", "newt")


def nickname(learner: str) -> str:
    """The learner's name in the queue, e.g. "otter-17": the same on every visit, nobody else's."""
    learner_key = db.hashed_key(learner)
    with db.reading() as connection:
        known = connection.execute(sa.select(db.learners.c.nickname).where(db.learners.c.key == learner_key)).scalar()
    if known is not None:
        return known
    numbers = 90  # otter-10 … otter-99, then three digits once the short ones are mostly taken
    for attempt in range(200):
        if attempt == 50:
            numbers = 900
        # Not the random module: training reseeds it, and every nickname would repeat.
        name = f"{secrets.choice(NICKNAMES)}-{10 + secrets.randbelow(numbers)}"
        try:
            with db.engine().begin() as connection:  # the unique nickname decides, not a look first
                connection.execute(db.learners.insert().values(key=learner_key, nickname=name, created=time.time()))
            return name
        except sa.exc.IntegrityError:  # taken, or this learner's other tab named them a moment ago
            with db.reading() as connection:
                known = connection.execute(
                    sa.select(db.learners.c.nickname).where(db.learners.c.key == learner_key)
                ).scalar()
            if known is not None:
                return known
    raise JobError("No free nickname left for a new learner: ask the teacher.")


def view(job_id: str) -> JobView | None:
    """The job as it is now; None for an unknown id."""
    _reconcile()
    with db.reading() as connection:
        row = connection.execute(sa.select(*_VIEW_COLUMNS).where(db.jobs.c.id == job_id)).first()
        position = _positions(connection).get(job_id)
    # Ray is asked after the transaction: none waits on the network.
    return _view(row, position, live=True) if row is not None else None


def views() -> list[JobView]:
    """The class's queue: every active job and the latest ended ones, oldest first."""
    _reconcile()
    with db.reading() as connection:
        positions = _positions(connection)
        active = connection.execute(sa.select(*_VIEW_COLUMNS).where(db.jobs.c.state.in_(ACTIVE))).all()
        ended = connection.execute(
            sa.select(*_VIEW_COLUMNS)
            .where(db.jobs.c.state.not_in(ACTIVE))
            .order_by(db.jobs.c.submitted_at.desc())
            .limit(KEEP_ENDED_JOBS)
        ).all()
    rows = sorted([*active, *ended], key=lambda row: row.submitted_at)
    return [_view(row, positions.get(row.id), live=False) for row in rows]


def owns(job_id: str, key: str | None, teacher: bool = False) -> bool:
    """Whether this caller may stop, save or discard the job: its key's holder, or the teacher."""
    with db.reading() as connection:
        owner_key = connection.execute(sa.select(db.jobs.c.owner_key).where(db.jobs.c.id == job_id)).scalar()
    return teacher or owner_key is None or (key is not None and hmac.compare_digest(owner_key, db.hashed_key(key)))


def _authorise(job_id: str, key: str | None, teacher: bool, action: str) -> None:
    if not owns(job_id, key, teacher):
        raise JobError(
            f"Only the learner who started job {job_id}, or the teacher, can {action} it "
            "(from the link its Train page gave them)."
        )


def stop(job_id: str, *, key: str | None = None, teacher: bool = False) -> None:
    """A training job ends after its current batch; a queued one leaves the queue."""
    from model_zoo import cluster

    _authorise(job_id, key, teacher, "stop")
    left = job_records.end(
        job_id, JobState.DISCARDED, phase="left the queue before it started", only_from=[JobState.QUEUED.value]
    )
    if left:
        cluster.cancel(job_id)
        return
    with db.engine().begin() as connection:
        connection.execute(
            db.jobs.update()
            .where(db.jobs.c.id == job_id, db.jobs.c.state.in_(ACTIVE))
            .values(stop_requested=True, phase="stopping after this batch")
        )
    cluster.stop(job_id)  # at once through Ray; the worker also reads the flag above


def save(job_id: str, name: str = "", *, key: str | None = None, teacher: bool = False) -> store.ZooEntry:
    """Save a stopped (or finished, unsaved) job's model as a new user version."""
    _authorise(job_id, key, teacher, "save")
    with db.engine().begin() as connection:
        row = connection.execute(sa.select(db.jobs).where(db.jobs.c.id == job_id)).first()
        if row is None:
            raise JobError(f"Job {job_id} is not in the database.")
        claimed = connection.execute(
            db.jobs.update()
            .where(db.jobs.c.id == job_id, db.jobs.c.state.in_(UNDECIDED), db.jobs.c.result_model.is_not(None))
            .values(state=JobState.SAVED.value)
        ).rowcount  # a second click finds it saved
        if not claimed:
            raise JobError(f"Job {job_id} is {row.state}: there is no model to save.")
        entry = store.insert_version(
            connection,
            name or row.requested_name,
            row.result_record,
            row.result_model,
            row.result_tensorboard,
            owner_key=row.owner_key,
        )
        connection.execute(
            db.jobs.update()
            .where(db.jobs.c.id == job_id)
            .values(
                saved_name=entry.name,
                phase=f"saved as {entry.name}",
                error="",
                result_model=None,
                result_tensorboard=None,
            )
        )
    return entry


def discard(job_id: str, *, key: str | None = None, teacher: bool = False) -> None:
    """Drop a stopped or finished job's model."""
    _authorise(job_id, key, teacher, "discard")
    if not job_records.end(job_id, JobState.DISCARDED, phase="discarded", only_from=UNDECIDED):
        state = _state(job_id)
        raise JobError(f"Job {job_id} is {state or 'unknown'}: there is nothing to discard.")


def max_active_jobs() -> int:
    """The teacher's cap on jobs waiting or training at once (``DIGIT_ZOO_MAX_ACTIVE_JOBS``)."""
    return config.whole_number_from_env(MAX_ACTIVE_VARIABLE, DEFAULT_MAX_ACTIVE)


def queue_times(views: list[JobView], joining: TrainingSettings | None = None) -> dict[str, tuple[float, float]]:
    """When each active job starts and ends, in seconds from now (``estimates.schedule``).

    With ``joining``, also a job of those settings submitted now, under the id "".
    """
    from model_zoo import cluster

    found = cluster.capacity()
    now = time.time()
    queue = [
        estimates.QueuedJob(
            id=view.id,
            settings=view.settings,
            running_for=now - view.started_at if view.state == JobState.RUNNING and view.started_at else None,
            fraction_done=view.fraction_done,
            training_seconds=view.seconds,
        )
        for view in sorted((v for v in views if v.active), key=lambda v: v.position or 0)
    ]
    if joining is not None:
        queue.append(estimates.QueuedJob("", joining, running_for=None, fraction_done=0.0, training_seconds=0.0))
    return estimates.schedule(queue, found.slots if found is not None and found.slots else training_slots())


# ------------------------------------------------------------------ the cluster, as the page sees it


def training_slots() -> int:
    """Training slots of a local Ray instance (``DIGIT_ZOO_TRAINING_SLOTS``); SettingsError if misconfigured."""
    from model_zoo import cluster

    return cluster.training_slots()


def prepare_cluster() -> None:
    """Start Ray in the background while the learner fills in the form, so the first job need not wait."""
    from model_zoo import cluster

    cluster.connect_in_background()  # one attempt per server at a time; a failed one is retried later


def cluster_ready() -> bool:
    """Whether Ray is up in this server process."""
    from model_zoo import cluster

    return cluster.connected() is not None


def cluster_problem() -> str | None:
    """Why training is unavailable now, in a learner's words; None while Ray is up or still starting."""
    from model_zoo import cluster

    return cluster.problem()


def capacity() -> str | None:
    """The cluster's training capacity in words ("2 training slots on 1 Ray node"); None before Ray starts."""
    from model_zoo import cluster

    found = cluster.capacity()
    return str(found) if found is not None else None


# ------------------------------------------------------------------ reading rows

_VIEW_COLUMNS = [
    column
    for column in db.jobs.c
    if column.name not in ("owner_key", "result_record", "result_model", "result_tensorboard")
]


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
        id=row.id,
        owner=row.owner,
        settings=settings,
        requested_name=row.requested_name,
        state=state,
        phase=phase,
        position=position,
        worker=row.worker,
        started_at=row.started_at,
        epoch=epoch,
        epochs=settings.epochs,
        step=step,
        steps_per_epoch=steps_per_epoch,
        batch_steps=snapshot.get("batch_steps", []),
        batch_loss=snapshot.get("batch_loss", []),
        batch_loss_smoothed=snapshot.get("batch_loss_smoothed", []),
        history=snapshot.get("history", {}),
        digits_per_second=rate,
        seconds=seconds,
        seconds_left=left,
        stop_requested=row.stop_requested,
        error=row.error,
        saved_name=row.saved_name,
        test_accuracy=row.test_accuracy,
        stopped_early=row.stopped_early,
    )


def _positions(connection: sa.Connection) -> dict[str, int]:
    """0 for every training job, then 1, 2, … for the queue in the order of submission."""
    rows = connection.execute(
        sa.select(db.jobs.c.id, db.jobs.c.state).where(db.jobs.c.state.in_(ACTIVE)).order_by(db.jobs.c.submitted_at)
    ).all()
    positions = {row.id: 0 for row in rows if row.state == JobState.RUNNING.value}
    queued = [row.id for row in rows if row.state == JobState.QUEUED.value]
    return positions | {job_id: i for i, job_id in enumerate(queued, start=1)}


def _state(job_id: str) -> str | None:
    with db.reading() as connection:
        return connection.execute(sa.select(db.jobs.c.state).where(db.jobs.c.id == job_id)).scalar()


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
    with db.reading() as connection:
        rows = connection.execute(
            sa.select(
                db.jobs.c.id,
                db.jobs.c.state,
                db.jobs.c.cluster,
                db.jobs.c.heartbeat_at,
                db.jobs.c.submitted_at,
                db.jobs.c.handed_at,
            ).where(db.jobs.c.state.in_(ACTIVE))
        ).all()
    now = time.time()
    for row in rows:
        if row.state == JobState.QUEUED.value and row.handed_at is None:
            # Still being handed to Ray (the first job waits for MNIST to load): no instance knows it yet.
            if now - row.submitted_at < HANDOVER_SECONDS:
                continue
            reason = "the server that queued it stopped before handing it to Ray"
        else:
            reason = cluster.why_gone(row.id, row.cluster)
        if (
            reason is None
            and row.state == JobState.RUNNING.value
            and row.heartbeat_at is not None
            and now - row.heartbeat_at > LOST_AFTER_SECONDS
        ):
            reason = f"no word from its worker for {now - row.heartbeat_at:.0f} s: its machine or Ray instance stopped"
        if reason is not None:
            job_records.end(
                row.id, JobState.LOST, phase="lost", error=f"Lost: {reason}. Start it again.", only_from=[row.state]
            )


def _forget_undecided(learner: str | None) -> None:
    """Bound the database: a learner's oldest stopped jobs they never saved are discarded, nobody else's."""
    if learner is None:  # a script's job: its owner is at the terminal
        return
    with db.reading() as connection:
        undecided = (
            connection.execute(
                sa.select(db.jobs.c.id)
                .where(db.jobs.c.state.in_(UNDECIDED), db.jobs.c.learner_key == db.hashed_key(learner))
                .order_by(db.jobs.c.ended_at.desc())
            )
            .scalars()
            .all()
        )
    for job_id in undecided[KEEP_UNDECIDED_JOBS:]:
        job_records.end(
            job_id,
            JobState.DISCARDED,
            phase="discarded: its learner started others, not saving it",
            only_from=UNDECIDED,
        )
