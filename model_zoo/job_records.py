"""A training job's record in the database: its states, its progress, and what its worker writes.

The web server's side (submit, stop, save, the queue) is ``model_zoo.jobs``;
the Ray side (the dispatcher, the training task) is ``model_zoo.cluster``.
Both change a job's row only through conditional updates ("if it is still
running…"), so a worker's last word and a page's click never overwrite each
other.
"""

from __future__ import annotations

import enum
import math
import os
import socket
import threading
import time

import sqlalchemy as sa

from model_zoo import db, estimates, model_files, store, training
from model_zoo.training import TrainingSettings

MAX_CURVE_POINTS = 600  # per-batch points kept for the live chart
FLUSH_SECONDS = 1.0  # a worker writes its progress to the database at most this often
HEARTBEAT_SECONDS = 5.0  # a worker says it is alive at least this often, even between batches


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
            # A class's held-out digits, UNIPEN's validation writers: when the job trains on them.
            for name in ("class_accuracy", "pen_val_accuracy"):
                if name in metrics:
                    self._history.setdefault(name, []).append(float(metrics[name]))
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
            return {
                "phase": self.phase,
                "epoch": self._epoch,
                "step": self._step,
                "steps_per_epoch": self._steps_per_epoch,
                "train_digits": self._train_digits,
                "batch_steps": steps,
                "batch_loss": loss,
                "batch_loss_smoothed": smoothed,
                "history": {k: list(v) for k, v in self._history.items()},
                "seconds": round(seconds, 3),
            }


def worker_started(job_id: str, database: str) -> bool:
    """Claim a queued job for this worker; False if it left the queue meanwhile."""
    now = time.time()
    with db.engine(database).begin() as connection:
        return bool(
            connection.execute(
                db.jobs.update()
                .where(db.jobs.c.id == job_id, db.jobs.c.state == JobState.QUEUED.value)
                .values(
                    state=JobState.RUNNING.value,
                    phase="loading the digits and building the model",
                    worker=f"{socket.gethostname()}:{os.getpid()}",
                    started_at=now,
                    heartbeat_at=now,
                )
            ).rowcount
        )


def worker_report(job_id: str, progress: JobProgress | None, database: str) -> bool:
    """Write progress (or only a heartbeat); True if the job's owner asked it to stop."""
    values: dict = {"heartbeat_at": time.time()}
    if progress is not None:
        snapshot = progress.snapshot()
        values |= {"progress": snapshot, "phase": snapshot["phase"]}
    with db.engine(database).begin() as connection:
        connection.execute(
            db.jobs.update().where(db.jobs.c.id == job_id, db.jobs.c.state == JobState.RUNNING.value).values(**values)
        )
        return bool(connection.execute(sa.select(db.jobs.c.stop_requested).where(db.jobs.c.id == job_id)).scalar())


def worker_finished(
    job_id: str,
    progress: JobProgress,
    result: training.TrainingResult,
    tensorboard_dir,
    *,
    trained_in: str,
    owner: str,
    requested_name: str,
    database: str,
) -> None:
    """Record the end of a run: a finished one becomes a version, a stopped one waits."""
    record = store.result_record(result, trained_in=trained_in, extra={"job": job_id, "owner": owner})
    content = model_files.model_bytes(result.model)
    logs = model_files.zip_folder(tensorboard_dir)
    common = dict(
        progress=progress.snapshot(),
        ended_at=time.time(),
        heartbeat_at=time.time(),
        test_accuracy=result.test_accuracy,
        stopped_early=result.stopped_early,
    )
    running = (db.jobs.c.id == job_id) & (db.jobs.c.state == JobState.RUNNING.value)
    if not result.stopped_early:
        try:
            with db.engine(database).begin() as connection:
                entry = store.insert_version(connection, requested_name, record, content, logs)
                _record_timing(connection, job_id, result)
                connection.execute(
                    db.jobs.update()
                    .where(running)
                    .values(state=JobState.SAVED.value, phase=f"saved as {entry.name}", saved_name=entry.name, **common)
                )
            return
        except (sa.exc.SQLAlchemyError, ValueError) as error:  # e.g. a full disk: its owner saves again
            keep = dict(
                state=JobState.FINISHED.value,
                phase="finished, not saved",
                error=f"Training finished, but saving failed: {error}",
            )
    else:
        keep = dict(state=JobState.STOPPED.value, phase="stopped: save or discard what it learned")
    with db.engine(database).begin() as connection:
        if not result.stopped_early:
            _record_timing(connection, job_id, result)
        connection.execute(
            db.jobs.update()
            .where(running)
            .values(result_record=record, result_model=content, result_tensorboard=logs, **keep, **common)
        )


def _record_timing(connection: sa.Connection, job_id: str, result: training.TrainingResult) -> None:
    """How long the job kept its training slot: what the estimates of the next ones are made of."""
    started = connection.execute(sa.select(db.jobs.c.started_at).where(db.jobs.c.id == job_id)).scalar()
    if started is None:
        return
    values = estimates.timing(result.settings, result.train_digits, result.seconds_per_epoch, time.time() - started)
    if values is not None:
        connection.execute(db.job_timings.insert().values(job_id=job_id, **values))


def worker_lost(job_id: str, reason: str, database: str) -> None:
    """The dispatcher's word that a job's worker process died."""
    with db.engine(database).begin() as connection:
        connection.execute(
            db.jobs.update()
            .where(db.jobs.c.id == job_id, db.jobs.c.state.in_(ACTIVE))
            .values(
                state=JobState.LOST.value, phase="lost", ended_at=time.time(), error=f"Lost: {reason}. Start it again."
            )
        )


def worker_failed(job_id: str, progress: JobProgress | None, error: BaseException, database: str) -> None:
    snapshot = progress.snapshot() if progress is not None else None
    end(
        job_id,
        JobState.FAILED,
        phase="failed",
        error=f"{type(error).__name__}: {error}",
        only_from=[JobState.RUNNING.value],
        progress=snapshot,
        database=database,
    )


def end(
    job_id: str,
    state: JobState,
    *,
    phase: str,
    error: str = "",
    only_from: list[str] | None = None,
    database: str | None = None,
    **values,
) -> bool:
    """Move a job to an ended state if it is still in one of ``only_from``; True if it was."""
    condition = db.jobs.c.id == job_id
    if only_from is not None:
        condition &= db.jobs.c.state.in_(only_from)
    values = {k: v for k, v in values.items() if v is not None}
    with db.engine(database).begin() as connection:
        return bool(
            connection.execute(
                db.jobs.update()
                .where(condition)
                .values(
                    state=state.value,
                    phase=phase,
                    error=error,
                    ended_at=time.time(),
                    result_model=None,
                    result_tensorboard=None,
                    **values,
                )
            ).rowcount
        )
