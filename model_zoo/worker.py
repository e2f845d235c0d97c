"""The Ray side of training: the dispatcher actor, one task per job, and its progress.

``model_zoo.cluster`` (the web server's side) creates the dispatcher and hands
it a ``JobOrder`` per job: everything the job's worker needs, so the worker
never looks back at the server's environment or re-reads its own job. The
task gathers the job's digits (``training_inputs``), trains, and writes its
progress and its end to the database (``job_records``); the dispatcher relays
its live progress and its stop requests.
"""

from __future__ import annotations

import collections
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass

import ray
from ray.exceptions import RayActorError

from model_zoo import config, job_records, training, training_inputs

LOG = logging.getLogger(__name__)

CPUS_PER_SLOT = 2  # Ray CPUs a job asks for: a 2-core machine trains one job at a time
WORKER_NICENESS = 10  # training runs at this Unix priority (the web server stays at 0)
PUSH_SECONDS = 0.2  # how often a training task sends its progress to the dispatcher


@dataclass(frozen=True)
class JobOrder:
    """One job, as the web server hands it to Ray."""

    job_id: str
    settings: training.TrainingSettings
    limits: training.TrainingLimits
    database: str  # the URL of the database with the jobs table, password included
    trained_in: str
    owner: str
    requested_name: str


@ray.remote(num_cpus=0, max_concurrency=256)  # a thread per running job waits for its stop
class Dispatcher:
    """One per cluster: owns the training tasks, holds the digits, relays progress and stop.

    Detached, so the tasks it submitted outlive the web server that asked for
    them; the tasks run in Ray's worker processes, which Ray keeps for the next
    task, so TensorFlow is imported once per worker, not once per job.

    Jobs wait here, first come first served, and go to Ray only as training
    slots free up: Ray's own queue of waiting tasks is not in order (in a
    class of 30 jobs on one slot, one job started ahead of 18 older ones), and
    the queue's positions and estimates promise the order of submission.
    """

    def __init__(self, mnist, usps, pen, shipped):
        self._digits = {
            "mnist": ray.put(mnist),
            "usps": ray.put(usps) if usps is not None else None,
            "pen": ray.put(pen) if pen is not None else None,
            "shipped": {name: ray.put(content) for name, content in shipped.items()},
        }
        self._lock = threading.Lock()
        self._waiting: collections.deque[JobOrder] = collections.deque()  # not handed to Ray yet, oldest first
        self._tasks: dict[str, tuple[ray.ObjectRef, str]] = {}  # job → (its task, its database)
        self._progress: dict[str, dict] = {}
        self._stops: dict[str, threading.Event] = {}
        threading.Thread(target=self._watch, name="watch-tasks", daemon=True).start()

    def submit(self, order: JobOrder) -> None:
        with self._lock:
            self._waiting.append(order)
            self._stops[order.job_id] = threading.Event()
        self._hand_over()

    def _hand_over(self) -> None:
        """Give Ray the oldest waiting jobs, as many as the cluster has training slots not in use."""
        slots = int(ray.cluster_resources().get("CPU", 0) // CPUS_PER_SLOT)  # nodes come and go
        me = ray.get_runtime_context().current_actor
        with self._lock:
            while self._waiting and len(self._tasks) < max(1, slots):
                order = self._waiting.popleft()
                task = train_job.options(num_cpus=CPUS_PER_SLOT, name=f"job-{order.job_id}").remote(
                    order, self._digits, me
                )
                self._tasks[order.job_id] = (task, order.database)

    def report(self, job_id: str, snapshot: dict) -> None:
        """A training task's newest progress, for the page's live curve."""
        with self._lock:
            self._progress[job_id] = snapshot

    def wait_for_stop(self, job_id: str) -> bool:
        """Returns as soon as the job's owner asks it to stop (True) or the job ends (False)."""
        with self._lock:
            stop = self._stops.get(job_id)
            task = self._tasks.get(job_id)
        if stop is None:
            return False
        stop.wait()
        with self._lock:
            return self._tasks.get(job_id) is task  # not released by the job's end

    def snapshot(self, job_id: str) -> dict | None:
        with self._lock:
            return self._progress.get(job_id)

    def stop(self, job_id: str) -> None:
        with self._lock:
            stop = self._stops.get(job_id)
        if stop is not None:
            stop.set()

    def cancel(self, job_id: str) -> None:
        with self._lock:
            task = self._tasks.get(job_id)
            waiting = [order for order in self._waiting if order.job_id == job_id]
            for order in waiting:
                self._waiting.remove(order)
                self._stops.pop(job_id, None)
        if task is not None:
            ray.cancel(task[0])

    def knows(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._tasks or any(order.job_id == job_id for order in self._waiting)

    def idle(self) -> bool:
        with self._lock:
            return not self._tasks and not self._waiting

    def _watch(self) -> None:
        """Forget ended tasks; a task whose worker died makes its job lost, with Ray's reason."""
        while True:
            self._hand_over()  # also when a node has joined
            with self._lock:
                tasks = {task: (job_id, database) for job_id, (task, database) in self._tasks.items()}
            if not tasks:
                time.sleep(0.5)
                continue
            ended, _ = ray.wait(list(tasks), num_returns=1, timeout=1.0)
            for task in ended:
                job_id, database = tasks[task]
                try:
                    ray.get(task)
                except ray.exceptions.TaskCancelledError:
                    pass  # left the queue: already recorded as discarded
                except ray.exceptions.RayError as error:
                    job_records.worker_lost(job_id, _plain_reason(error), database)
                with self._lock:
                    self._tasks.pop(job_id, None)
                    self._progress.pop(job_id, None)
                    stop = self._stops.pop(job_id, None)
                if stop is not None:
                    stop.set()  # releases the job's wait_for_stop


def _plain_reason(error: ray.exceptions.RayError) -> str:
    """Why a job's worker died, in a learner's words (Ray's own text runs to a paragraph)."""
    if isinstance(error, (ray.exceptions.NodeDiedError, ray.exceptions.LocalRayletDiedError)):
        return "the Ray instance it trained on stopped (its server or machine went down)"
    if isinstance(error, ray.exceptions.OutOfMemoryError):
        return "its Ray worker died: the machine ran out of memory"
    if isinstance(error, ray.exceptions.WorkerCrashedError):
        return "its Ray worker died (killed, or out of memory)"
    first_line = str(error).strip().splitlines()[0][:200]
    return f"its Ray worker failed ({type(error).__name__}: {first_line})"


@ray.remote(max_retries=0)  # a job whose worker died is lost, not silently started again
def train_job(order: JobOrder, digits: dict, dispatcher) -> None:
    """One job, in a Ray worker process (kept by Ray for later jobs): train, report, record the end."""
    job_id, database = order.job_id, order.database
    # Below the web server in the CPU's queue: a stroke's prediction goes first on a shared machine.
    os.nice(max(0, WORKER_NICENESS - os.nice(0)))
    if not job_records.worker_started(job_id, database):
        return  # it left the queue meanwhile
    import keras

    keras.backend.clear_session()  # the previous job's graphs, in a reused worker
    progress, stop_event, done = job_records.JobProgress(order.settings), threading.Event(), threading.Event()
    reporter = _Reporter(order, progress, stop_event, dispatcher)
    threading.Thread(target=_heartbeat, args=(order, stop_event, done), daemon=True).start()
    threading.Thread(target=_listen_for_stop, args=(job_id, stop_event, dispatcher), daemon=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix=f"{config.SCRATCH_PREFIX}{job_id}_") as logs:
            try:
                shipped = digits["shipped"].get(order.settings.arch)
                inputs = training_inputs.gather(
                    order.settings,
                    mnist=ray.get(digits["mnist"]),
                    usps=ray.get(digits["usps"]) if digits["usps"] is not None else None,
                    pen=ray.get(digits["pen"]) if digits["pen"] is not None else None,
                    shipped=ray.get(shipped) if shipped is not None else None,
                    database=database,
                )
                result = training.train(
                    order.settings,
                    **inputs,
                    progress=reporter,
                    stop=stop_event,
                    limits=order.limits,
                    tensorboard_dir=logs,
                )
            except Exception as error:  # any failure is the job's: recorded, shown to its owner
                progress.ended("failed")
                job_records.worker_failed(job_id, progress, error, database)
                return
            progress.ended("saving")
            reporter.push()
            job_records.worker_finished(
                job_id,
                progress,
                result,
                logs,
                trained_in=order.trained_in,
                owner=order.owner,
                requested_name=order.requested_name,
                database=database,
            )
    finally:
        done.set()


def _listen_for_stop(job_id: str, stop_event: threading.Event, dispatcher) -> None:
    """A stop reaches training at once: the dispatcher answers this call when it is asked."""
    try:
        if ray.get(dispatcher.wait_for_stop.remote(job_id)):
            stop_event.set()
    except RayActorError:  # no dispatcher: the database's flag still reaches the heartbeat
        LOG.warning("job %s: the dispatcher is gone", job_id)


def _heartbeat(order: JobOrder, stop_event: threading.Event, done: threading.Event) -> None:
    """Say the job is alive between batches too (loading, scoring), and read the stop flag."""
    while not done.wait(job_records.HEARTBEAT_SECONDS):
        try:
            if job_records.worker_report(order.job_id, None, order.database):
                stop_event.set()
        except Exception:  # a busy database: the next beat tries again
            LOG.warning("job %s: heartbeat not written", order.job_id, exc_info=True)


class _Reporter(training.TrainingProgress):
    """Feeds the job's progress: to the dispatcher often (the live curve), to the database each second."""

    def __init__(self, order: JobOrder, progress: job_records.JobProgress, stop_event: threading.Event, dispatcher):
        self.order, self.progress, self.stop_event, self.dispatcher = order, progress, stop_event, dispatcher
        self._last_push = self._last_write = 0.0

    def on_start(self, settings, steps_per_epoch, train_digits):
        self.progress.on_start(settings, steps_per_epoch, train_digits)
        self.push()
        self._write()

    def on_batch(self, epoch, step, loss):
        self.progress.on_batch(epoch, step, loss)
        if time.monotonic() - self._last_push >= PUSH_SECONDS:
            self.push()
        if time.monotonic() - self._last_write >= job_records.FLUSH_SECONDS:
            self._write()

    def on_epoch(self, epoch, metrics, seconds):
        self.progress.on_epoch(epoch, metrics, seconds)
        self.push()
        self._write()

    def push(self) -> None:
        self._last_push = time.monotonic()
        self.dispatcher.report.remote(self.order.job_id, self.progress.snapshot())  # no reply to wait for

    def _write(self) -> None:
        self._last_write = time.monotonic()
        if job_records.worker_report(self.order.job_id, self.progress, self.order.database):
            self.stop_event.set()
