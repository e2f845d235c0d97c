"""Training jobs in the background: one at a time per server, the rest in a queue.

A ``JobRunner`` owns one worker thread and a FIFO queue. The Train page
submits jobs and polls ``view()`` snapshots; the training thread writes
progress into a lock-protected ``Job``. Nothing here lives in a browser
session, so reruns, navigation and closed tabs neither block nor kill a job
(FACTS.md: a thread without a script context loses session-state writes).

A job that finishes becomes a new zoo version at once; a stopped one keeps
what it learned until its owner saves or discards it; a failed one keeps its
error text, and the runner goes on with the next job.

    runner = JobRunner()
    job = runner.submit(TrainingSettings.for_architecture("mlp_1x50", epochs=3), owner="otter-17")
    runner.view(job).epoch, runner.queue_position(job)
    runner.stop(job)                      # after the current batch
    runner.save(job, "my-mlp")            # a stopped job: keep it …
    runner.discard(job)                   # … or drop it
"""

from __future__ import annotations

import atexit
import collections
import logging
import math
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from model_zoo import data, store, training
from model_zoo.training import TrainingLimits, TrainingResult, TrainingSettings

LOG = logging.getLogger(__name__)

QUEUED, RUNNING, FINISHED, STOPPED, FAILED, SAVING, SAVED, DISCARDED = (
    "queued", "running", "finished", "stopped", "failed", "saving", "saved", "discarded")
ACTIVE = (QUEUED, RUNNING, SAVING)  # the page polls while a job is in one of these
UNDECIDED = (FINISHED, STOPPED)  # holds a model nobody has saved or discarded yet
MAX_CURVE_POINTS = 600  # per-batch points kept for the live chart
SMOOTHING = 0.9  # exponential moving average of the per-batch loss, as TensorBoard's slider
KEEP_DONE_JOBS = 20  # saved, discarded and failed jobs remembered for the queue table
KEEP_UNDECIDED_JOBS = 10  # stopped jobs whose learner left: the oldest are discarded


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's state and progress, safe to read anywhere."""

    id: str
    owner: str
    settings: TrainingSettings
    requested_name: str
    state: str
    phase: str  # what the job is doing now, in words
    position: int | None  # 0 running, 1 next in the queue, …; None when done
    epoch: int  # epochs completed
    epochs: int
    step: int  # batches done in the current epoch
    steps_per_epoch: int
    batch_steps: list[int]  # global step of each kept per-batch point
    batch_loss: list[float]  # the loss of that batch
    batch_loss_smoothed: list[float]
    history: dict[str, list[float]]  # loss, accuracy, val_loss, val_accuracy per epoch
    digits_per_second: float | None
    seconds: float  # since training started (0 while queued)
    seconds_left: float | None
    stop_requested: bool
    error: str
    saved_name: str
    test_accuracy: float | None
    stopped_early: bool

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def undecided(self) -> bool:
        return self.state in UNDECIDED

    @property
    def fraction_done(self) -> float:
        total = self.epochs * self.steps_per_epoch
        if self.state in (FINISHED, SAVING, SAVED) and not self.stopped_early:
            return 1.0
        return min(1.0, (self.epoch * self.steps_per_epoch + self.step) / total) if total else 0.0


class _Curve:
    """Per-batch loss, thinned to at most MAX_CURVE_POINTS by doubling the stride."""

    def __init__(self):
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.smoothed: list[float] = []
        self.stride, self._seen, self._average, self._weight = 1, 0, 0.0, 0.0

    def add(self, step: int, loss: float) -> None:
        # Debiased moving average, so the first points are not pulled towards 0.
        self._average = SMOOTHING * self._average + (1 - SMOOTHING) * loss
        self._weight = SMOOTHING * self._weight + (1 - SMOOTHING)
        self._seen += 1
        if (self._seen - 1) % self.stride:
            return
        self.steps.append(step)
        self.loss.append(loss)
        self.smoothed.append(self._average / self._weight)
        if len(self.steps) > MAX_CURVE_POINTS:
            self.steps, self.loss, self.smoothed = self.steps[::2], self.loss[::2], self.smoothed[::2]
            self.stride *= 2


class Job(training.TrainingProgress):
    """One training run. The training thread writes; everyone else reads ``view()``."""

    def __init__(self, settings: TrainingSettings, owner: str, requested_name: str = "",
                 limits: TrainingLimits | None = None):
        self.id = uuid.uuid4().hex[:8]
        self.owner = owner
        self.settings = settings
        self.requested_name = requested_name
        self.limits = limits
        self.submitted = time.time()
        self.stop_event = threading.Event()
        self.result: TrainingResult | None = None
        self.log_dir: Path | None = None  # TensorBoard logs while unsaved
        self._lock = threading.Lock()
        self._state = QUEUED
        self._phase = "waiting for the job before it"
        self._epoch = self._step = self._steps_per_epoch = self._train_digits = 0
        self._previous_running_loss = 0.0
        self._curve = _Curve()
        self._history: dict[str, list[float]] = collections.defaultdict(list)
        self._started: float | None = None  # perf_counter when the first batch began
        self._ended: float | None = None
        self._error = ""
        self._saved_name = ""

    # -- read by anyone ----------------------------------------------------

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def view(self, position: int | None = None) -> JobView:
        with self._lock:
            seconds = 0.0
            if self._started is not None:
                seconds = (self._ended or time.perf_counter()) - self._started
            done = self._epoch * self._steps_per_epoch + self._step
            total = self.settings.epochs * self._steps_per_epoch
            rate = left = None
            if done and seconds > 0:
                digits = self._epoch * self._train_digits + min(self._step * self.settings.batch_size,
                                                               self._train_digits)
                rate = digits / seconds
                if self._state == RUNNING:
                    left = seconds * (total - done) / done
            return JobView(
                id=self.id, owner=self.owner, settings=self.settings,
                requested_name=self.requested_name, state=self._state, phase=self._phase,
                position=position, epoch=self._epoch, epochs=self.settings.epochs, step=self._step,
                steps_per_epoch=self._steps_per_epoch, batch_steps=list(self._curve.steps),
                batch_loss=list(self._curve.loss), batch_loss_smoothed=list(self._curve.smoothed),
                history={k: list(v) for k, v in self._history.items()},
                digits_per_second=rate, seconds=seconds, seconds_left=left,
                stop_requested=self.stop_event.is_set(), error=self._error,
                saved_name=self._saved_name,
                test_accuracy=self.result.test_accuracy if self.result else None,
                stopped_early=bool(self.result and self.result.stopped_early))

    # -- TrainingProgress: called from the training thread -----------------

    def on_start(self, settings: TrainingSettings, steps_per_epoch: int) -> None:
        with self._lock:
            self._steps_per_epoch = steps_per_epoch
            self._train_digits = _train_digits(settings)
            self._phase = "starting: the first batch builds the model"
            self._started = time.perf_counter()

    def on_batch(self, epoch: int, step: int, loss: float) -> None:
        # Keras reports the running mean over the epoch so far: recover this batch's loss.
        batch_loss = loss if step == 1 else step * loss - (step - 1) * self._previous_running_loss
        self._previous_running_loss = loss
        with self._lock:
            self._epoch, self._step = epoch, step
            self._curve.add(epoch * self._steps_per_epoch + step, max(0.0, batch_loss))
            self._phase = "checking the validation digits" if step == self._steps_per_epoch else "training"

    def on_epoch(self, epoch: int, metrics: dict[str, float], seconds: float) -> None:
        with self._lock:
            for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
                self._history[name].append(float(metrics.get(name, math.nan)))
            self._epoch, self._step = epoch, 0
            self._phase = "training" if epoch < self.settings.epochs else "scoring the 10,000 test digits"

    # -- state changes, by the runner --------------------------------------

    def _set(self, **changes) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self, f"_{name}", value)

    def _training_ended(self) -> None:
        with self._lock:
            if self._started is not None:
                self._ended = time.perf_counter()


def _train_digits(settings: TrainingSettings) -> int:
    """How many digits one epoch sees, as ``training._split`` takes them."""
    total = min(settings.train_size, 60_000)
    return total - max(1, round(total * settings.val_fraction))


class JobLimitError(ValueError):
    """A learner who already has a job waiting or training asked for another."""


class JobRunner:
    """One worker thread training queued jobs in order. Thread-safe; share one per process."""

    def __init__(self, *, limits: TrainingLimits | None = None, mnist=None):
        self._limits = limits  # None: read the environment at each submit
        self._mnist = mnist  # loaded once, by the worker, on the first job
        self._condition = threading.Condition()
        self._queue: collections.deque[Job] = collections.deque()  # the head is the running job
        self._jobs: list[Job] = []
        self._worker: threading.Thread | None = None
        self._closed = False

    # -- the page's API ----------------------------------------------------

    def submit(self, settings: TrainingSettings, owner: str, name: str = "") -> Job:
        """Queue a job; raises ``SettingsError`` (nothing queued) if a setting is out of range."""
        limits = self._limits or TrainingLimits.from_env()
        settings.validate(limits)
        job = Job(settings, owner, name, limits)
        with self._condition:
            if self._closed:
                raise RuntimeError("This job runner is closed.")
            mine = [other for other in self._jobs if other.owner == owner and other.state in ACTIVE]
            if mine:
                raise JobLimitError(
                    f"{owner} already has a job {mine[0].state} ({mine[0].settings.arch}): one job per "
                    "learner at a time, so the queue stays fair. Stop it or wait for it to end.")
            self._jobs.append(job)
            self._queue.append(job)
            if len(self._queue) == 1:
                job._set(state=RUNNING, phase="starting")
            self._forget_old_jobs()
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="digit-zoo-training", daemon=True)
                self._worker.start()
            self._condition.notify_all()
        return job

    def stop(self, job: Job) -> None:
        """A running job ends after its current batch; a queued one leaves the queue."""
        with self._condition:
            if job in self._queue and job is not self._queue[0]:
                self._queue.remove(job)
                job._set(state=DISCARDED, phase="left the queue before it started")
                return
        job.stop_event.set()

    def save(self, job: Job, name: str = "") -> store.ZooEntry:
        """Save a finished or stopped job as a new user version (its TensorBoard logs move along)."""
        with job._lock:
            if job._state not in UNDECIDED or job.result is None:
                raise store.VersionError(f"Job {job.id} is {job._state}: there is no model to save.")
            job._state, job._phase = SAVING, "saving"  # claims it: a second click saves nothing
        try:
            entry = save_result(job.result, name or job.requested_name, job.log_dir,
                                extra={"trained_in": "app", "job": job.id, "owner": job.owner})
        except BaseException:
            job._set(state=STOPPED if job.result.stopped_early else FINISHED, phase="not saved")
            raise
        job.log_dir = None
        job._set(state=SAVED, saved_name=entry.name, phase=f"saved as {entry.name}", error="")
        return entry

    def discard(self, job: Job) -> None:
        """Drop a finished or stopped job's model and logs."""
        with job._lock:
            if job._state not in UNDECIDED:
                raise store.VersionError(f"Job {job.id} is {job._state}: there is nothing to discard.")
            job._state, job._phase = DISCARDED, "discarded"
            job.result = None
        if job.log_dir is not None:
            shutil.rmtree(job.log_dir, ignore_errors=True)
            job.log_dir = None

    def get(self, job_id: str) -> Job | None:
        with self._condition:
            return next((job for job in self._jobs if job.id == job_id), None)

    def jobs(self) -> list[Job]:
        """Every job this server remembers, in the order they were submitted."""
        with self._condition:
            return list(self._jobs)

    def queue_position(self, job: Job) -> int | None:
        """0 for the running job, 1 for the next, …; None once it is done."""
        with self._condition:
            return self._queue.index(job) if job in self._queue else None

    def view(self, job: Job) -> JobView:
        return job.view(self.queue_position(job))

    def views(self) -> list[JobView]:
        return [self.view(job) for job in self.jobs()]

    def wait(self, job: Job, timeout: float | None = None) -> JobView:
        """Block until the job is no longer queued or running (for scripts and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while job in self._queue:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"Job {job.id} still {job.state} after {timeout} s.")
                self._condition.wait(remaining)
        return self.view(job)

    def close(self, timeout: float | None = None) -> None:
        """Stop the running job, cancel the queue and end the worker thread."""
        with self._condition:
            self._closed = True
            running = self._queue[0] if self._queue else None
            queued = list(self._queue)[1:]
            self._queue = collections.deque([running] if running else [])
            self._condition.notify_all()
        for job in queued:
            job._set(state=DISCARDED, phase="cancelled: the server stopped")
        if running is not None:
            running.stop_event.set()
        if self._worker is not None:
            self._worker.join(timeout)

    # -- the worker thread -------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._closed:
                    self._condition.wait()
                if self._closed:
                    return
                job = self._queue[0]  # RUNNING since it reached the head
            try:
                self._run(job)
            finally:
                with self._condition:
                    self._queue.popleft()
                    if self._queue:
                        self._queue[0]._set(state=RUNNING, phase="starting")
                    self._condition.notify_all()

    def _run(self, job: Job) -> None:
        if job.stop_event.is_set():  # stopped while it was starting
            job._set(state=DISCARDED, phase="stopped before it started")
            return
        job._set(phase="loading MNIST and building the model")
        job.log_dir = store.user_dir() / ".running" / job.id
        try:
            if self._mnist is None:
                self._mnist = data.load_mnist()
            result = training.train(job.settings, mnist=self._mnist, progress=job, stop=job.stop_event,
                                    limits=job.limits, tensorboard_dir=job.log_dir)
        except Exception as error:  # any failure is the job's, never the server's: show it, go on
            LOG.exception("training job %s failed", job.id)
            job._training_ended()
            job._set(state=FAILED, phase="failed", error=f"{type(error).__name__}: {error}")
            shutil.rmtree(job.log_dir, ignore_errors=True)
            job.log_dir = None
            return
        job.result = result
        job._training_ended()
        if result.stopped_early:
            job._set(state=STOPPED, phase="stopped: save or discard what it learned")
            return
        job._set(state=FINISHED, phase="saving")
        try:
            self.save(job)
        except (OSError, ValueError) as error:  # e.g. a full disk: the page offers Save again
            LOG.exception("saving job %s failed", job.id)
            job._set(phase="finished, not saved", error=f"Training finished, but saving failed: {error}")

    def _forget_old_jobs(self) -> None:
        """Bound memory and the queue table: drop the oldest unsaved models and finished jobs."""
        undecided = [job for job in self._jobs if job.state in UNDECIDED]
        for job in undecided[:max(0, len(undecided) - KEEP_UNDECIDED_JOBS)]:
            try:
                self.discard(job)
            except store.VersionError:  # its learner saved or discarded it just now
                pass
        done = [job for job in self._jobs if job.state in (SAVED, DISCARDED, FAILED)]
        for job in done[:max(0, len(done) - KEEP_DONE_JOBS)]:
            self._jobs.remove(job)


_shared: JobRunner | None = None
_shared_lock = threading.Lock()


def shared_runner() -> JobRunner:
    """The one runner of this process: one training at a time per server."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = JobRunner()
            # A training thread still inside TensorFlow when Python exits aborts the
            # process ("terminate called…"): stop it after its batch first.
            atexit.register(_shared.close, timeout=30)
        return _shared


def save_result(result: TrainingResult, name: str = "", log_dir: Path | None = None,
                extra: dict | None = None) -> store.ZooEntry:
    """A training result → a new user version, with its TensorBoard logs beside the others.

    Shared by the Train page and ``scripts.train``, so both write the same record.
    """
    timings = {"train_seconds": round(sum(result.seconds_per_epoch), 2),
               "digits_per_second": _digits_per_second(result)}
    record = result.record() | timings | (extra or {})
    entry = store.save_version(result.model, record, name)
    if log_dir is not None and Path(log_dir).is_dir():
        target = store.tensorboard_dir(entry.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(log_dir), target)
    return entry


def _digits_per_second(result: TrainingResult) -> float | None:
    seconds = sum(result.seconds_per_epoch)
    batches = result.batch_loss[-1][0] if result.batch_loss else 0  # the last point is always kept
    digits = min(batches * result.settings.batch_size, result.epochs_done * result.train_digits)
    return round(digits / seconds, 1) if seconds else None
