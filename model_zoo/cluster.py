"""Ray: where training jobs run, outside the web server.

By default the first job starts a local Ray instance, owned by the web server
process, with ``DIGIT_ZOO_TRAINING_SLOTS`` slots (default: one per two cores,
at least one). With ``RAY_ADDRESS`` set, the app attaches to that cluster
instead: ``ray start --head`` on one machine and ``ray start
--address=HEAD:6379`` on others adds their cores as slots, with no change to
the code. A slot is two Ray CPUs: each job asks for ``worker.CPUS_PER_SLOT``.

Each job is a Ray task: Ray queues it until a slot is free and runs it in a
worker process on any node, which it keeps for the next task (TensorFlow is
imported once per worker, not once per job). The tasks are submitted by a
detached ``Dispatcher`` actor, so they outlive the web server that asked for
them when the cluster does; it also holds MNIST and the shipped models in the
object store and relays each task's live progress and stop requests. There is
one per cluster and version of the app and its shipped models
(``dispatcher_name``): an upgraded server starts its own, and an older one is
retired once its last job has ended. The
database (``model_zoo.jobs``) gets the progress every second and the results.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from model_zoo import config, data, db, training, worker

LOG = logging.getLogger(__name__)

NAMESPACE = "digit_zoo"
SLOTS_VARIABLE = "DIGIT_ZOO_TRAINING_SLOTS"
DISPATCHER = "dispatcher"  # + "-" and a fingerprint of what it serves: dispatcher_name()
LIVE_TIMEOUT = 2.0  # seconds to wait for a worker's live progress before showing the stored one
PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Connection:
    cluster: str  # names this Ray instance in the jobs table: "ray:<address>" or "local:<host>:<pid>:…"


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
_attempt: dict | None = None  # the connecting thread's: started (monotonic), done (Event), error
_connect_lock = threading.Lock()  # guards the two above only: nobody waits for Ray while holding it
CONNECT_SECONDS = 10.0  # a page or a submit waits this long for a Ray cluster at most, then says why not
LOCAL_START_SECONDS = 60.0  # ... for a local instance to start (3–8 s on a loaded 2-core machine)
RETRY_SECONDS = 15.0  # a failed attempt is tried again after this, by the next page that asks


class RayUnavailable(ConnectionError):
    """Ray cannot be reached or started: the message says where and why, for a learner."""


def training_slots() -> int:
    """Slots of a local Ray instance: ``DIGIT_ZOO_TRAINING_SLOTS``, else one per two cores."""
    return config.whole_number_from_env(SLOTS_VARIABLE, max(1, (os.cpu_count() or 1) // worker.CPUS_PER_SLOT))


def connect(timeout: float | None = None) -> Connection:
    """Attach to ``RAY_ADDRESS`` or start a local Ray instance (once per process); RayUnavailable after ``timeout`` s.

    One thread per process connects, whoever asks; an unreachable address
    (``ray.init`` would retry for minutes, docs/facts.md) costs each caller at
    most ``timeout`` seconds, and no lock is held meanwhile.
    """
    attempt = _start_attempt()
    if attempt is None:
        return _connection
    timeout = _patience() if timeout is None else timeout
    if not attempt["done"].wait(timeout):
        raise RayUnavailable(f"{_where()} did not answer within {timeout:.0f} s")
    if attempt["error"] is not None:
        raise RayUnavailable(f"{_where()} cannot be reached: {_plain(attempt['error'])}")
    return _connection


def connect_in_background() -> None:
    """Start Ray (and shelve MNIST) while the learner fills in the form: the first job need not wait."""
    _start_attempt(shelve=True)


def problem() -> str | None:
    """Why training is unavailable now, in a learner's words; None if Ray is up or still starting in time."""
    with _connect_lock:
        attempt = _attempt
    if attempt is None or (connected() is not None and attempt["error"] is None):
        return None
    if attempt["error"] is not None:
        return f"{_where()} cannot be reached: {_plain(attempt['error'])}"
    waited = time.monotonic() - attempt["started"]
    return f"{_where()} has not answered for {waited:.0f} s" if waited > _patience() else None


def _patience() -> float:
    return CONNECT_SECONDS if os.environ.get("RAY_ADDRESS", "").strip() else LOCAL_START_SECONDS


def _start_attempt(shelve: bool = False) -> dict | None:
    """The current connecting attempt (a new one if none, or the last failed a while ago); None when connected."""
    global _attempt
    with _connect_lock:
        if connected() is not None:
            return None
        stale = (
            _attempt is not None
            and _attempt["error"] is not None
            and time.monotonic() - _attempt["started"] > RETRY_SECONDS
        )
        if _attempt is None or stale:
            _attempt = {"started": time.monotonic(), "done": threading.Event(), "error": None, "shelve": shelve}
            # Ray's local processes die with the *thread* that started them (PR_SET_PDEATHSIG), and a
            # Streamlit script thread ends with its run: start them from a thread that stays.
            threading.Thread(target=_keep_ray, args=(_attempt,), name="digit-zoo-ray", daemon=True).start()
        return _attempt


def _keep_ray(attempt: dict) -> None:
    """Start or attach to Ray, then stay alive (and with it a local Ray instance) until the process ends."""
    global _connection
    try:
        _check_reachable()
        connection = _init_ray()
    except Exception as error:  # handed to the callers of connect(), who say what failed
        attempt["error"] = error
        attempt["done"].set()
        LOG.warning("Ray is unavailable: %s", _plain(error))
        return
    with _connect_lock:
        _connection = connection
    attempt["done"].set()
    LOG.info("training on Ray: %s", capacity())
    if attempt["shelve"]:
        try:
            _dispatcher()  # MNIST shelved before the first job asks
        except Exception:  # the first submit tries again and shows the error to the learner
            LOG.exception("creating the dispatcher in the background failed")
    threading.Event().wait()


def _where() -> str:
    address = os.environ.get("RAY_ADDRESS", "").strip()
    return f"the Ray cluster at {address}" if address else "the local Ray instance"


def _plain(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _check_reachable() -> None:
    """A RAY_ADDRESS of host:port with nothing listening fails here at once, not after Ray's minutes of retries."""
    address = os.environ.get("RAY_ADDRESS", "").strip()
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # "auto", "local", ray://…: Ray's own look-up
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        raise ConnectionError(f"nothing answers at {address} ({error.strerror or error})") from None


def _init_ray() -> Connection:
    address = os.environ.get("RAY_ADDRESS", "").strip()
    # Workers import our package from Ray, on any node.
    runtime_env = {
        "py_modules": [str(PACKAGE)],
        "excludes": ["trained/", "__pycache__/"],
        "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"},
    }
    common = dict(namespace=NAMESPACE, runtime_env=runtime_env, log_to_driver=False, logging_level=logging.WARNING)
    if address:
        ray.init(address=address, **common)
        return Connection(f"ray:{ray.get_runtime_context().gcs_address}")
    ray.init(address="local", num_cpus=training_slots() * worker.CPUS_PER_SLOT, include_dashboard=False, **common)
    gcs = ray.get_runtime_context().gcs_address
    return Connection(f"local:{socket.gethostname()}:{os.getpid()}:{gcs}")


def connected() -> Connection | None:
    return _connection if _connection is not None and ray.is_initialized() else None


def capacity() -> Capacity | None:
    """The cluster's training capacity now; None before Ray is started."""
    if connected() is None:
        return None
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    slots = sum(int(node["Resources"].get("CPU", 0) // worker.CPUS_PER_SLOT) for node in nodes)
    trainers = [node for node in nodes if node["Resources"].get("CPU", 0) >= worker.CPUS_PER_SLOT]
    machines = {node.get("NodeManagerAddress") for node in trainers}
    return Capacity(slots=slots, nodes=len(trainers), machines=len(machines))


# ------------------------------------------------------------------ jobs on Ray


def start_job(
    job_id: str,
    settings: training.TrainingSettings,
    limits: training.TrainingLimits,
    *,
    trained_in: str,
    owner: str,
    requested_name: str,
) -> None:
    """Hand a queued job to Ray: it waits there for a slot, then trains."""
    connect()
    order = worker.JobOrder(
        job_id=job_id,
        settings=settings,
        limits=limits,
        trained_in=trained_in,
        owner=owner,
        requested_name=requested_name,
        database=db.url().render_as_string(hide_password=False),
    )  # the worker's way to the jobs table
    ray.get(_dispatcher().submit.remote(order))


def stop(job_id: str) -> None:
    """Ask a training job to stop after its batch (it also reads the database's flag)."""
    for dispatcher in _dispatchers().values():
        dispatcher.stop.remote(job_id)


def cancel(job_id: str) -> None:
    """Take a queued job off Ray's queue."""
    for dispatcher in _dispatchers().values():
        ray.get(dispatcher.cancel.remote(job_id))


def live_progress(job_id: str, cluster: str) -> dict | None:
    """A training job's newest progress straight from Ray; None if it cannot be asked."""
    own = connected()
    if own is None or own.cluster != cluster:
        return None
    for dispatcher in _dispatchers().values():
        try:
            if (snapshot := ray.get(dispatcher.snapshot.remote(job_id), timeout=LIVE_TIMEOUT)) is not None:
                return snapshot
        except (GetTimeoutError, RayActorError):
            continue
    return None


def why_gone(job_id: str, cluster: str) -> str | None:
    """Why a queued or training job cannot be on Ray any more; None if it may be."""
    kind, _, rest = cluster.partition(":")
    if kind == "local":
        host, pid, _ = rest.split(":", 2)
        if host == socket.gethostname() and not _process_alive(int(pid)):
            return (
                f"the Ray instance it trained on stopped (its server, pid {pid}, "
                "went down and took its local Ray instance with it)"
            )
    own = connected()
    if own is None or own.cluster != cluster:
        return None  # another Ray instance: its jobs' heartbeats tell
    if not any(ray.get(dispatcher.knows.remote(job_id)) for dispatcher in _dispatchers().values()):
        return "the Ray cluster that ran it was restarted"
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def dispatcher_name() -> str:
    """The dispatcher for this server's code and shipped models: another after an upgrade or a retraining.

    A detached dispatcher outlives the servers that made it, and holds the
    shipped models' bytes that fine-tuning starts from; named by both, an
    upgraded server gets its own instead of reusing a stale one.
    """
    files = sorted([*PACKAGE.glob("*.py"), *config.TRAINED_DIR.glob("*.keras")])
    return _fingerprinted(tuple((str(path), path.stat().st_mtime_ns, path.stat().st_size) for path in files))


@functools.lru_cache(maxsize=8)  # by name, time and size: the bytes are read again only when they change
def _fingerprinted(files: tuple) -> str:
    digest = hashlib.sha256()
    for path, _, _ in files:
        digest.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes())
    return f"{DISPATCHER}-{digest.hexdigest()[:12]}"


def _dispatchers() -> dict:
    """Every dispatcher on the cluster by name, this server's first: older ones still run the jobs they were handed."""
    if connected() is None:
        return {}
    current = dispatcher_name()
    names = sorted(
        {
            actor["name"]
            for actor in ray.util.list_named_actors(all_namespaces=True)
            if actor.get("namespace") == NAMESPACE and actor["name"].startswith(DISPATCHER)
        },
        key=lambda name: name != current,
    )
    found = {}
    for name in names:
        try:
            found[name] = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:  # gone meanwhile
            continue
    return found


def _dispatcher():
    """This server's dispatcher, created (with MNIST loaded here, once) if it is not there yet.

    Older dispatchers with no job left are retired, so a cluster does not keep
    one per upgrade.
    """
    name = dispatcher_name()
    for other_name, other in _dispatchers().items():
        try:
            if other_name != name and ray.get(other.idle.remote(), timeout=LIVE_TIMEOUT):
                ray.kill(other)
        except (AttributeError, GetTimeoutError, RayActorError):  # one made before idle() existed: left alone
            continue
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:  # not created yet, or the cluster was restarted
        pass
    mnist = data.load_mnist()
    usps = data.load_usps() if data.usps_available() else None
    pen = data.load_pen_digits() if data.pen_digits_available() else None
    # Fine-tuning starts from these; workers on other machines have no model_zoo/trained.
    shipped = {path.stem: path.read_bytes() for path in config.TRAINED_DIR.glob("*.keras")}
    return worker.Dispatcher.options(name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True).remote(
        mnist, usps, pen, shipped
    )
