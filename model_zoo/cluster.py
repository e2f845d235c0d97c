"""Ray: where training jobs run, outside the web server.

By default the first job starts a local Ray instance in the web server's
process group with ``DIGIT_ZOO_TRAINING_SLOTS`` slots (default: one per two
cores, at least one). With ``RAY_ADDRESS`` set, the app attaches to that
cluster instead: ``ray start --head`` on one machine and ``ray start
--address=HEAD:6379`` on others adds their cores as slots, with no change to
the code. A slot is two Ray CPUs: each job asks for ``CPUS_PER_SLOT``.

Each job is a detached, named Ray actor (``TrainingWorker``): Ray keeps it
queued until a slot is free, runs it in a worker process on any node, and it
outlives the web server that started it when the cluster does. MNIST goes
into Ray's object store once per cluster, held by a detached ``DigitShelf``
actor, so a queued job never depends on the server that submitted it.
Progress goes to the database (``model_zoo.jobs``) and, for the live curve,
straight to the page through the actor; stop travels the same way.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from model_zoo import data, db, jobs, training

LOG = logging.getLogger(__name__)

NAMESPACE = "digit_zoo"
SLOTS_VARIABLE = "DIGIT_ZOO_TRAINING_SLOTS"
CPUS_PER_SLOT = 2  # Ray CPUs a job asks for: a 2-core machine trains one job at a time
SHELF = "digit_shelf"
LIVE_TIMEOUT = 2.0  # seconds to wait for a worker's live progress before showing the stored one
PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Connection:
    cluster: str  # names this Ray instance in the jobs table: "ray:<address>" or "local:<host>:<pid>:…"
    local: bool  # started by this process (it ends with it)


@dataclass(frozen=True)
class Capacity:
    slots: int
    nodes: int
    machines: int

    def __str__(self) -> str:
        slots = f"{self.slots} training slot{'s' * (self.slots != 1)}"
        nodes = f"{self.nodes} Ray node{'s' * (self.nodes != 1)}"
        if self.machines != self.nodes:
            nodes += f" ({self.machines} machine{'s' * (self.machines != 1)})"
        return f"{slots} on {nodes}"


_connection: Connection | None = None
_connect_lock = threading.Lock()
_keeper: threading.Thread | None = None  # the thread that started Ray, alive as long as Ray is
_release = threading.Event()  # tells it to end


def training_slots() -> int:
    text = os.environ.get(SLOTS_VARIABLE, "")
    if not text:
        return max(1, (os.cpu_count() or 1) // CPUS_PER_SLOT)
    try:
        slots = int(text)
    except ValueError:
        raise training.SettingsError(f"{SLOTS_VARIABLE}={text!r} is not a whole number.") from None
    if slots < 1:
        raise training.SettingsError(f"{SLOTS_VARIABLE} must be at least 1, got {slots}.")
    return slots


def connect() -> Connection:
    """Attach to ``RAY_ADDRESS`` or start a local Ray instance: once per process."""
    global _connection, _keeper
    with _connect_lock:
        if _connection is not None and ray.is_initialized():
            return _connection
        # Ray's local processes die with the *thread* that started them (PR_SET_PDEATHSIG),
        # and a Streamlit script thread ends with its run: start them from a thread that stays.
        started, outcome = threading.Event(), {}
        _release.clear()
        _keeper = threading.Thread(target=_keep_ray, args=(started, outcome), name="digit-zoo-ray",
                                   daemon=True)
        _keeper.start()
        started.wait()
        if "error" in outcome:
            raise outcome["error"]
        _connection = outcome["connection"]
        LOG.info("training on Ray: %s", capacity())
        return _connection


def _keep_ray(started: threading.Event, outcome: dict) -> None:
    """Start or attach to Ray, then stay alive (and with it a local Ray instance) until disconnect."""
    try:
        outcome["connection"] = _init_ray()
    except Exception as error:  # handed to the caller of connect(), who says what failed
        outcome["error"] = error
        started.set()
        return
    started.set()
    _release.wait()


def _init_ray() -> Connection:
    address = os.environ.get("RAY_ADDRESS", "").strip()
    # Workers import our package from Ray, on any node.
    runtime_env = {"py_modules": [str(PACKAGE)], "excludes": ["trained/", "__pycache__/"],
                   "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}}
    common = dict(namespace=NAMESPACE, runtime_env=runtime_env, log_to_driver=False,
                  logging_level=logging.WARNING)
    if address:
        ray.init(address=address, **common)
        return Connection(f"ray:{ray.get_runtime_context().gcs_address}", local=False)
    ray.init(num_cpus=training_slots() * CPUS_PER_SLOT, include_dashboard=False, **common)
    gcs = ray.get_runtime_context().gcs_address
    return Connection(f"local:{socket.gethostname()}:{os.getpid()}:{gcs}", local=True)


def disconnect() -> None:
    """Leave Ray (a local instance stops with it); the next job connects again."""
    global _connection
    with _connect_lock:
        ray.shutdown()
        _connection = None
        _release.set()
        if _keeper is not None:
            _keeper.join()


def connect_in_background() -> None:
    """Start Ray (and shelve MNIST) while the learner fills in the form: the first job need not wait."""
    if _connection is None:
        threading.Thread(target=_connect_quietly, name="digit-zoo-ray", daemon=True).start()


def _connect_quietly() -> None:
    try:
        connect()
        _shelf()
    except Exception:  # the first submit tries again and shows the error to the learner
        LOG.exception("starting Ray in the background failed")


def connected() -> Connection | None:
    return _connection if _connection is not None and ray.is_initialized() else None


def capacity() -> Capacity | None:
    """The cluster's training capacity now; None before Ray is started."""
    if connected() is None:
        return None
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    slots = sum(int(node["Resources"].get("CPU", 0) // CPUS_PER_SLOT) for node in nodes)
    trainers = [node for node in nodes if node["Resources"].get("CPU", 0) >= CPUS_PER_SLOT]
    machines = {node.get("NodeManagerAddress") for node in trainers}
    return Capacity(slots=slots, nodes=len(trainers), machines=len(machines))


# ------------------------------------------------------------------ jobs on Ray


def start_job(job_id: str, settings: training.TrainingSettings, limits: training.TrainingLimits,
              trained_in: str) -> None:
    """Hand a queued job to Ray: it waits there for a slot, then trains."""
    connect()
    _shelf()  # MNIST in the object store before the worker asks for it
    database = db.url().render_as_string(hide_password=False)  # the worker's way to the jobs table
    TrainingWorker.options(name=_actor_name(job_id), namespace=NAMESPACE, lifetime="detached",
                           num_cpus=CPUS_PER_SLOT).remote(job_id, settings, limits, database, trained_in)


def stop(job_id: str) -> None:
    """Ask a training worker to stop after its batch (it also reads the database's flag)."""
    actor = _actor(job_id)
    if actor is not None:
        actor.stop.remote()


def cancel(job_id: str) -> None:
    """Take a queued job off Ray's queue."""
    actor = _actor(job_id)
    if actor is not None:
        ray.kill(actor, no_restart=True)


def live_progress(job_id: str, cluster: str) -> dict | None:
    """A training job's newest progress straight from its worker; None if it cannot be asked."""
    own = connected()
    if own is None or own.cluster != cluster:
        return None
    actor = _actor(job_id)
    if actor is None:
        return None
    try:
        return ray.get(actor.snapshot.remote(), timeout=LIVE_TIMEOUT)
    except (GetTimeoutError, RayActorError):
        return None


def why_gone(job_id: str, cluster: str) -> str | None:
    """Why a queued or training job's worker cannot exist any more; None if it may."""
    kind, _, rest = cluster.partition(":")
    if kind == "local":
        host, pid, _ = rest.split(":", 2)
        if host == socket.gethostname() and not _process_alive(int(pid)):
            return (f"the server process that ran its Ray instance (pid {pid}) stopped, "
                    "and its local Ray instance with it")
    own = connected()
    if own is not None and own.cluster == cluster and _actor(job_id) is None:
        return "its Ray worker ended without a word (killed, out of memory, or its node left)"
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _actor_name(job_id: str) -> str:
    return f"job-{job_id}"


def _actor(job_id: str):
    try:
        return ray.get_actor(_actor_name(job_id), namespace=NAMESPACE)
    except ValueError:  # no such actor: ended, killed, or never started
        return None


@ray.remote(num_cpus=0)
class DigitShelf:
    """Holds MNIST (and USPS) in the object store for every job of the cluster."""

    def __init__(self, mnist, usps):
        self._refs = {"mnist": ray.put(mnist), "usps": ray.put(usps) if usps is not None else None}

    def refs(self) -> dict:
        return self._refs  # ObjectRefs inside a dict travel as refs: no copy per job


def _shelf():
    """The cluster's shelf, created (MNIST loaded here, once) if it is not there yet."""
    try:
        return ray.get_actor(SHELF, namespace=NAMESPACE)
    except ValueError:
        pass
    mnist = data.load_mnist()
    usps = data.load_usps() if data.find_usps() is not None else None
    return DigitShelf.options(name=SHELF, namespace=NAMESPACE, lifetime="detached",
                              get_if_exists=True).remote(mnist, usps)


@ray.remote(max_concurrency=4)  # run in a thread; snapshot and stop answer meanwhile
class TrainingWorker:
    """One job: trains in a thread from the moment Ray places it, then ends itself."""

    def __init__(self, job_id: str, settings: training.TrainingSettings, limits: training.TrainingLimits,
                 database: str, trained_in: str):
        os.environ[db.URL_VARIABLE] = database  # this process serves this one job
        self.job_id, self.settings, self.limits, self.trained_in = job_id, settings, limits, trained_in
        self.progress = jobs.JobProgress(settings)
        self.stop_event = threading.Event()
        self.done = threading.Event()
        # Started here, not by a later call: a call queued by a server that died would never come.
        threading.Thread(target=self._run, name=f"job-{job_id}", daemon=True).start()

    def snapshot(self) -> dict:
        return self.progress.snapshot()

    def stop(self) -> None:
        self.stop_event.set()

    def _run(self) -> None:
        try:
            if jobs.worker_started(self.job_id):
                threading.Thread(target=self._heartbeat, daemon=True).start()
                self._train()
        except Exception:  # the database itself failed: nothing more to record
            LOG.exception("job %s could not record its end", self.job_id)
        finally:
            self.done.set()
            ray.kill(ray.get_runtime_context().current_actor, no_restart=True)  # frees the slot

    def _train(self) -> None:
        reporter = _Reporter(self.job_id, self.progress, self.stop_event)
        with tempfile.TemporaryDirectory(prefix=f"digit_zoo_{self.job_id}_") as logs:
            try:
                refs = ray.get(_shelf_handle().refs.remote())
                mnist = ray.get(refs["mnist"])
                usps = ray.get(refs["usps"]) if refs["usps"] is not None else None
                result = training.train(self.settings, mnist=mnist, usps=usps, progress=reporter,
                                        stop=self.stop_event, limits=self.limits, tensorboard_dir=logs)
            except Exception as error:  # any failure is the job's: recorded, shown to its owner
                self.progress.ended("failed")
                jobs.worker_failed(self.job_id, self.progress, error)
                return
            self.progress.ended("saving")
            jobs.worker_finished(self.job_id, self.progress, result, logs, self.trained_in)

    def _heartbeat(self) -> None:
        while not self.done.wait(jobs.HEARTBEAT_SECONDS):
            try:
                if jobs.worker_report(self.job_id, None):
                    self.stop_event.set()
            except Exception:  # a busy database: the next beat tries again
                LOG.warning("job %s: heartbeat not written", self.job_id, exc_info=True)


def _shelf_handle():
    return ray.get_actor(SHELF, namespace=NAMESPACE)


class _Reporter(training.TrainingProgress):
    """Feeds the job's progress and writes it to the database about once a second."""

    def __init__(self, job_id: str, progress: jobs.JobProgress, stop_event: threading.Event):
        self.job_id, self.progress, self.stop_event = job_id, progress, stop_event
        self._last_write = 0.0

    def on_start(self, settings, steps_per_epoch, train_digits):
        self.progress.on_start(settings, steps_per_epoch, train_digits)
        self._write()

    def on_batch(self, epoch, step, loss):
        self.progress.on_batch(epoch, step, loss)
        if time.monotonic() - self._last_write >= jobs.FLUSH_SECONDS:
            self._write()

    def on_epoch(self, epoch, metrics, seconds):
        self.progress.on_epoch(epoch, metrics, seconds)
        self._write()

    def _write(self) -> None:
        self._last_write = time.monotonic()
        if jobs.worker_report(self.job_id, self.progress):
            self.stop_event.set()
