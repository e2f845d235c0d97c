"""The zoo: shipped model files, user versions in the database, and their records.

Shipped models are ``model_zoo/trained/<name>.keras`` with ``<name>.json``
(their record) beside them, written by ``scripts.train_zoo``. Versions trained
in the app or with ``scripts.train`` live in the database (``model_zoo.db``):
the ``.keras`` file's bytes, its record and its TensorBoard logs in one row,
written in one transaction, so a crash mid-save leaves no half version and a
version saved through one server is listed at once by every server on the
same database. Both kinds are saved by one function, ``save_result``, and
their records carry the same fields.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import io
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from model_zoo import architectures, data, db, inference
from model_zoo.training import TrainingResult

LOG = logging.getLogger(__name__)
TRAINED_DIR = Path(__file__).resolve().parent / "trained"
NAME_PATTERN = re.compile(r"[^A-Za-z0-9_.@-]+")
MAX_NAME_LENGTH = 64
MODEL_CACHE = Path(tempfile.gettempdir()) / "digit_zoo_models"  # versions' bytes as files, by hash


class ModelFileError(ValueError):
    """A model or record that cannot be read."""


class VersionError(ValueError):
    """A version that cannot be saved or deleted as asked."""


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo: a shipped file or a user version, with its record."""

    name: str
    record: dict = field(compare=False, repr=False)
    shipped: bool
    file: Path | None = None  # shipped: the .keras file
    sha256: str = ""  # versions: the hash of the .keras bytes in the database

    @property
    def arch(self) -> architectures.Architecture:
        return architectures.get(self.record["arch"])

    @property
    def test_accuracy(self) -> float:
        return self.record["test_accuracy"]

    @property
    def path(self) -> Path:
        """A ``.keras`` file of this model (a version's bytes are written out once, by hash)."""
        return self.file if self.file is not None else _materialise(self.name, self.sha256)

    @property
    def record_path(self) -> Path | None:
        """The record's JSON file (shipped models); a version keeps its record in the database."""
        return self.file.with_suffix(".json") if self.file is not None else None

    @property
    def cache_key(self) -> str:
        """Changes whenever the model does: for caches of loaded models."""
        if self.file is not None:
            return f"{self.file}@{self.file.stat().st_mtime_ns}"
        return self.sha256

    @property
    def origin(self) -> str:
        """"tutorial", "beyond the tutorial" or "your version of <arch>": where it comes from."""
        if not self.shipped:
            return f"your version of {self.arch.name}"
        return "tutorial" if self.arch.in_tutorial else "beyond the tutorial"

    def with_record(self, record: dict) -> ZooEntry:
        return ZooEntry(self.name, record, self.shipped, self.file, self.sha256)


@dataclass
class ZooListing:
    entries: list[ZooEntry]
    problems: list[str]  # models skipped, with the reason, for the page to show
    # Listed models that no page may run (name → why): the Zoo page shows them, pickers leave them out.
    unusable: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def get(self, name: str) -> ZooEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise architectures.UnknownModelError(
            f"Unknown model {name!r}. Expected one of: {', '.join(self.names)}.")


# ------------------------------------------------------------------ listing


def scan() -> ZooListing:
    """Every usable model: shipped ones in registry order, then user versions by date.

    Raises ``db.DatabaseError`` when the database cannot be opened.
    """
    listing = scan_shipped()
    query = sa.select(db.versions.c.name, db.versions.c.record, db.versions.c.model_sha256) \
        .order_by(db.versions.c.created, db.versions.c.name)
    with db.engine().connect() as connection:
        for name, record, sha256 in connection.execute(query):
            try:
                listing.entries.append(ZooEntry(name, _checked_record(record), False, sha256=sha256))
            except ModelFileError as error:
                listing.problems.append(f"Skipped version {name}: {error}")
    return listing


def scan_shipped() -> ZooListing:
    """The shipped models, in registry order."""
    problems: list[str] = []
    shipped = []
    for model_path in sorted(TRAINED_DIR.glob("*.keras")):
        if model_path.name.startswith("."):  # a save in progress
            continue
        try:
            record = _checked_record(read_record(model_path.with_suffix(".json")))
        except ModelFileError as error:
            problems.append(f"Skipped {model_path.name}: {error}")
            continue
        shipped.append(ZooEntry(model_path.stem, record, True, file=model_path))
    order = {name: i for i, name in enumerate(architectures.ZOO)}
    shipped.sort(key=lambda e: order.get(e.name, len(order)))
    return ZooListing(shipped, problems)


def _checked_record(record) -> dict:
    """The record if the zoo can list it, else ModelFileError saying what is wrong."""
    if not isinstance(record, dict):
        raise ModelFileError("its record is not a JSON object")
    try:
        architectures.get(record.get("arch"))
    except architectures.UnknownModelError as error:
        raise ModelFileError(f"its record names no known architecture ({error})") from None
    try:
        accuracy = float(record.get("test_accuracy"))
    except (TypeError, ValueError):
        raise ModelFileError("its record has no test accuracy") from None
    return record | {"test_accuracy": accuracy}


def read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"no record {path.name} beside the model") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"record {path} is damaged ({error})") from None
    if not isinstance(record, dict):
        raise ModelFileError(f"record {path} is damaged (expected a JSON object)")
    return record


# ------------------------------------------------------------------ loading


def read_model(path: str | os.PathLike) -> inference.FastModel:
    """The model for the pages: read straight from its ``.keras`` archive, no TensorFlow, contract checked.

    Refuses layers the app does not run (a Lambda's code, custom or unknown
    layers) as Keras's safe_mode does, and names the file, never its folder
    (users read the message).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Model file not found: {path.name}")
    try:
        model = inference.read_archive(path)
    except inference.UnsupportedLayerError as error:
        raise ModelFileError(f"{path.name} is refused: {error}.") from None
    except inference.ArchiveError as error:
        raise ModelFileError(f"Model file is damaged: {path.name} ({error}). Delete it, or train it again.") \
            from None
    if problem := _contract(model.input_shape, model.output_shape):
        raise ModelFileError(f"{path.name} {problem}.")
    return model


def load_model(path: str | os.PathLike):
    """The Keras model (for training and scripts): ``keras.models.load_model`` with safe_mode on,
    one clear error for bad files, the contract checked. Imports TensorFlow: pages use ``read_model``."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Model file not found: {path.name}")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    # Keras reports damage as any of these (docs/facts.md); all mean the same to a user.
    except (ValueError, OSError, zipfile.BadZipFile, json.JSONDecodeError, KeyError, TypeError) as error:
        if "Lambda" in str(error):  # safe_mode's refusal to deserialise Python code
            raise ModelFileError(f"{path.name} is refused: {inference.CONTAINS_CODE}.") from None
        reason = str(error).replace(str(path.parent), "…")[:200]
        raise ModelFileError(f"Model file is damaged: {path.name} ({type(error).__name__}: {reason}). "
                             "Delete it, or train it again.") from None
    if problem := _contract(tuple(model.input_shape[1:]), tuple(model.output_shape[1:])):
        raise ModelFileError(f"{path.name} {problem}.")
    return model


def contract_problem(path: str | os.PathLike) -> str | None:
    """Why a model file cannot serve the zoo, read from its config without its weights; None if it may.

    Milliseconds, so every listed model is checked before a picker offers it;
    ``read_model`` checks the weights too.
    """
    try:
        model_plan = inference.plan(inference.read_config(path))
    except inference.UnsupportedLayerError as error:
        return f"refused: {error}"
    except inference.ArchiveError as error:
        return f"damaged: {error}"
    return _contract(model_plan.input_shape, model_plan.output_shape)


def _contract(takes: tuple, gives: tuple) -> str | None:
    """Every zoo model takes (N, 28, 28) and gives (N, 10): anything else would be misread."""
    if takes != architectures.INPUT_SHAPE or gives != (architectures.NUM_CLASSES,):
        return (f"does not fit the zoo: it takes {takes} and gives {gives}, where every zoo model takes "
                f"{architectures.INPUT_SHAPE} digits and gives {architectures.NUM_CLASSES} probabilities")
    return None


def _materialise(name: str, sha256: str) -> Path:
    """The version's bytes as a ``.keras`` file (load_model wants a path), written once."""
    target = MODEL_CACHE / f"{sha256}.keras"
    if target.is_file():
        return target
    with db.engine().connect() as connection:
        content = connection.execute(sa.select(db.versions.c.model)
                                     .where(db.versions.c.name == name)).scalar()
    if content is None:
        raise ModelFileError(f"Version {name} is no longer in the database (deleted?).")
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, content)
    return target


def tensorboard_zip(name: str) -> bytes | None:
    """A version's TensorBoard logs as a zip, if its run kept them."""
    with db.engine().connect() as connection:
        return connection.execute(sa.select(db.versions.c.tensorboard)
                                  .where(db.versions.c.name == name)).scalar()


# ------------------------------------------------------------------ saving


def save_result(result: TrainingResult, *, name: str = "", trained_in: str,
                tensorboard_dir: str | os.PathLike | None = None, shipped_dir: Path | None = None,
                extra: dict | None = None) -> ZooEntry:
    """A training result → a zoo model: a user version, or a shipped file in ``shipped_dir``.

    The one home for saving (the Train page's jobs, ``scripts.train``,
    ``scripts.train_zoo``): every record gets the same fields.
    """
    record = result_record(result, trained_in=trained_in, extra=extra)
    if shipped_dir is not None:
        return save_shipped(result.model, record, shipped_dir, name or result.settings.arch)
    content, logs = model_bytes(result.model), zip_folder(tensorboard_dir)  # slow: before the transaction
    with db.engine().begin() as connection:
        return insert_version(connection, name, record, content, logs)


def result_record(result: TrainingResult, *, trained_in: str, extra: dict | None = None) -> dict:
    """The training record plus timings and where it was trained."""
    seconds = sum(result.seconds_per_epoch)
    return result.record() | {
        "train_seconds": round(seconds, 2),
        "digits_per_second": round(result.digits_trained / seconds, 1) if seconds else None,
        "params": int(result.model.count_params()),
        "trained_in": trained_in,
        "trained_on": f"{socket.gethostname()} ({os.cpu_count()} cores)",
    } | (extra or {})


def save_shipped(model, record: dict, folder: Path, name: str) -> ZooEntry:
    """Write ``<name>.keras`` and ``<name>.json`` atomically, without optimizer state."""
    folder.mkdir(parents=True, exist_ok=True)
    record = _file_facts(record, model.count_params(), name)
    target = folder / f"{name}.keras"
    _write_atomically(target, model_bytes(model))
    write_record(target.with_suffix(".json"), record)
    return ZooEntry(name, record, shipped=folder.resolve() == TRAINED_DIR, file=target)


def insert_version(connection: sa.Connection, requested_name: str, record: dict, content: bytes,
                   tensorboard: bytes | None = None, *, owner_key: str | None = None) -> ZooEntry:
    """Add a user version inside the caller's transaction, under a name nobody has.

    The name is claimed by the insert itself (the primary key), so two
    learners saving under the same name at once get two versions, never one.
    ``owner_key`` (hashed, as ``db.hashed_key`` gives it) lets its learner delete it.
    """
    base = _base_name(record["arch"], requested_name)
    taken = _taken_names(connection, base)
    sha256 = hashlib.sha256(content).hexdigest()
    for name in _candidates(base):
        if name in taken:
            continue
        named = _file_facts(record, record["params"], name)
        try:
            with connection.begin_nested():  # a savepoint: a taken name leaves the transaction usable
                connection.execute(db.versions.insert().values(
                    name=name, arch=named["arch"], created=named["created"], record=named,
                    model=content, model_sha256=sha256, tensorboard=tensorboard, owner_key=owner_key))
            return ZooEntry(name, _checked_record(named), False, sha256=sha256)
        except sa.exc.IntegrityError:  # saved by someone else a moment ago
            taken.add(name)
    raise VersionError(f"No free name near {base!r}: choose another version name.")


def _base_name(arch: str, requested: str, when: datetime | None = None) -> str:
    name = NAME_PATTERN.sub("-", requested.strip()).strip(".-")[:MAX_NAME_LENGTH]
    return name or f"{arch}@{(when or datetime.now()):%Y-%m-%dT%H-%M}"


def _candidates(base: str):
    yield base
    yield from (f"{base}-{n}" for n in range(2, 1000))


def _taken_names(connection: sa.Connection, base: str) -> set[str]:
    """Names a new version cannot have: the registry's, shipped files', and versions like ``base``."""
    taken = set(architectures.ZOO) | {p.stem for p in TRAINED_DIR.glob("*.keras")}
    like = base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    query = sa.select(db.versions.c.name).where(db.versions.c.name.like(like, escape="\\"))
    return taken | set(connection.execute(query).scalars())


def may_delete(entry: ZooEntry, keys: Iterable[str] = (), *, teacher: bool = False) -> bool:
    """The teacher may delete any version; a learner theirs, by a key of the job that trained it."""
    if entry.shipped:
        return False
    if teacher:
        return True
    with db.engine().connect() as connection:
        owner_key = connection.execute(sa.select(db.versions.c.owner_key)
                                       .where(db.versions.c.name == entry.name)).scalar()
    return owner_key is not None and any(hmac.compare_digest(owner_key, db.hashed_key(key)) for key in keys)


def delete_version(entry: ZooEntry, keys: Iterable[str] = (), *, teacher: bool = False) -> None:
    if entry.shipped:
        raise VersionError(f"{entry.name} is a shipped model and cannot be deleted.")
    if not may_delete(entry, keys, teacher=teacher):
        raise VersionError(f"Only the learner who trained {entry.name}, or the teacher, can delete it.")
    with db.engine().begin() as connection:
        connection.execute(db.versions.delete().where(db.versions.c.name == entry.name))


def update_record(entry: ZooEntry, **fields) -> ZooEntry:
    """Add computed results (USPS accuracy, robustness curves…) to a model's record."""
    record = entry.record | fields
    if entry.record_path is not None:
        write_record(entry.record_path, record)
    else:
        with db.engine().begin() as connection:
            connection.execute(db.versions.update().where(db.versions.c.name == entry.name)
                               .values(record=record))
    return entry.with_record(record)


def write_record(path: Path, record: dict) -> None:
    _write_atomically(path, json.dumps(record, indent=1).encode())


# ------------------------------------------------------------------ bytes


def model_bytes(model) -> bytes:
    """The ``.keras`` file of an inference copy: the same layers and weights, no optimizer."""
    copy = type(model).from_config(model.get_config())  # clone_model and to_json keep the optimizer
    copy.set_weights(model.get_weights())
    with tempfile.TemporaryDirectory(prefix=f"{data.SCRATCH_PREFIX}save_") as folder:
        path = Path(folder) / "model.keras"  # save wants a name ending in .keras
        copy.save(path)
        return path.read_bytes()


def zip_folder(folder: str | os.PathLike | None) -> bytes | None:
    """A folder (TensorBoard logs) as zip bytes; None when there is none."""
    if folder is None or not Path(folder).is_dir():
        return None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return buffer.getvalue()


def _file_facts(record: dict, params: int, name: str) -> dict:
    return record | {
        "name": name,
        "params": int(params),
        "created": record.get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # Read from the installed packages: the web server saves versions without importing them.
        "versions": {"python": sys.version.split()[0], "keras": importlib.metadata.version("keras"),
                     "tensorflow": importlib.metadata.version("tensorflow-cpu")},
    }


MIN_FREE_BYTES = 200 * 2**20  # a job's logs and a version's bytes take a few MB; less room is a full disk


def storage_problem() -> str | None:
    """Why a job could not keep what it makes here (no room, nothing writable); None if it can.

    Checked before a job is queued, so a full or read-only disk is one clear
    message instead of a job failing with TensorFlow's words at its end. The
    reason names no folder (learners read it); the log does.
    """
    places = {"the server's temporary folder": Path(tempfile.gettempdir())}
    if (database := db.sqlite_file()) is not None:
        places["the database's folder"] = database.parent
    for what, folder in places.items():
        try:
            with tempfile.TemporaryDirectory(prefix=data.SCRATCH_PREFIX, dir=folder):
                pass
            free = shutil.disk_usage(folder).free
        except OSError as error:
            LOG.error("Cannot write in %s: %s", folder, error)
            return f"nothing can be written in {what} (read-only?)"
        if free < MIN_FREE_BYTES:
            LOG.error("%s has %d MB free", folder, free // 2**20)
            return f"{what} has {free // 2**20} MB free, and a job needs {MIN_FREE_BYTES // 2**20} MB"
    return None


LEFTOVER_SECONDS = 24 * 3600  # longer than any job runs: older scratch is from a killed process


def remove_leftovers() -> list[Path]:
    """Delete what a killed process left: half-written hidden files, jobs' and saves' scratch folders.

    Only things older than ``LEFTOVER_SECONDS``, so another process's work in
    progress is never touched. Returns what was removed.
    """
    now = time.time()
    candidates = [*TRAINED_DIR.glob(".*"), *MODEL_CACHE.glob(".*"),
                  *Path(tempfile.gettempdir()).glob(f"{data.SCRATCH_PREFIX}*")]
    removed = []
    for path in candidates:
        try:
            if now - path.lstat().st_mtime < LEFTOVER_SECONDS:
                continue
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        except OSError:  # gone meanwhile, or not ours to delete
            continue
        removed.append(path)
    return removed


def _write_atomically(target: Path, content: bytes) -> None:
    """Write beside the target under a hidden name, then rename: readers see old or new, never half."""
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.stem}.", suffix=target.suffix,
                                     delete=False) as handle:
        temporary = Path(handle.name)
    try:
        temporary.write_bytes(content)
        temporary.chmod(0o644)  # NamedTemporaryFile makes it private
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
