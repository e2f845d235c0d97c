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
import logging
import os
import re
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from model_zoo import architectures, config, db, model_files
from model_zoo.training import TrainingResult

LOG = logging.getLogger(__name__)
NAME_PATTERN = re.compile(r"[^A-Za-z0-9_.@-]+")
MAX_NAME_LENGTH = 64


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

    def model_file(self) -> Path:
        """A ``.keras`` file of this model: a version's bytes are read from the database and written out
        once, by hash, into the model cache."""
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
        """ "tutorial", "beyond the tutorial" or "your version of <arch>": where it comes from."""
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
        raise architectures.UnknownModelError(f"Unknown model {name!r}. Expected one of: {', '.join(self.names)}.")


# ------------------------------------------------------------------ listing


def scan() -> ZooListing:
    """Every usable model: shipped ones in registry order, then user versions by date.

    Raises ``db.DatabaseError`` when the database cannot be opened.
    """
    listing = scan_shipped()
    query = sa.select(db.versions.c.name, db.versions.c.record, db.versions.c.model_sha256).order_by(
        db.versions.c.created, db.versions.c.name
    )
    with db.reading() as connection:
        for name, record, sha256 in connection.execute(query):
            try:
                listing.entries.append(ZooEntry(name, model_files.checked_record(record), False, sha256=sha256))
            except model_files.ModelFileError as error:
                listing.problems.append(f"Skipped version {name}: {error}")
    return listing


def scan_shipped() -> ZooListing:
    """The shipped models, in registry order."""
    problems: list[str] = []
    shipped = []
    for model_path in sorted(config.TRAINED_DIR.glob("*.keras")):
        if model_path.name.startswith("."):  # a save in progress
            continue
        try:
            shipped.append(_shipped_entry(model_path))
        except model_files.ModelFileError as error:
            problems.append(f"Skipped {model_path.name}: {error}")
    order = {name: i for i, name in enumerate(architectures.ZOO)}
    shipped.sort(key=lambda e: order.get(e.name, len(order)))
    return ZooListing(shipped, problems)


# Shipped entries by model path, with the record file's (mtime, size) they were read at. Every page
# run lists the zoo, and parsing eight ~30 KB records each time was a fifth of a class's server CPU.
# The entries (and their records) are shared by every caller: read-only.
_shipped: dict[Path, tuple[tuple[int, int] | None, ZooEntry]] = {}


def _shipped_entry(model_path: Path) -> ZooEntry:
    record_path = model_path.with_suffix(".json")
    try:
        status = record_path.stat()
        stamp = (status.st_mtime_ns, status.st_size)
    except OSError:
        stamp = None  # read_record says what is wrong
    cached = _shipped.get(model_path)
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    record = model_files.checked_record(model_files.read_record(record_path))
    entry = ZooEntry(model_path.stem, record, True, file=model_path)
    _shipped[model_path] = (stamp, entry)
    return entry


def _materialise(name: str, sha256: str) -> Path:
    """The version's bytes as a ``.keras`` file (load_model wants a path), written once."""
    target = config.MODEL_CACHE / f"{sha256}.keras"
    if target.is_file():
        return target
    with db.engine().connect() as connection:
        content = connection.execute(sa.select(db.versions.c.model).where(db.versions.c.name == name)).scalar()
    if content is None:
        raise model_files.ModelFileError(f"Version {name} is no longer in the database (deleted?).")
    config.MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    model_files.write_atomically(target, content)
    return target


def tensorboard_zip(name: str) -> bytes | None:
    """A version's TensorBoard logs as a zip, if its run kept them."""
    with db.engine().connect() as connection:
        return connection.execute(sa.select(db.versions.c.tensorboard).where(db.versions.c.name == name)).scalar()


# ------------------------------------------------------------------ saving


def save_result(
    result: TrainingResult,
    *,
    name: str = "",
    trained_in: str,
    tensorboard_dir: str | os.PathLike | None = None,
    shipped_dir: Path | None = None,
    extra: dict | None = None,
) -> ZooEntry:
    """A training result → a zoo model: a user version, or a shipped file in ``shipped_dir``.

    The one home for saving (the Train page's jobs, ``scripts.train``,
    ``scripts.train_zoo``): every record gets the same fields.
    """
    record = result_record(result, trained_in=trained_in, extra=extra)
    if shipped_dir is not None:
        return save_shipped(result.model, record, shipped_dir, name or result.settings.arch)
    content, logs = (
        model_files.model_bytes(result.model),
        model_files.zip_folder(tensorboard_dir),
    )  # slow: before the transaction
    with db.engine().begin() as connection:
        return insert_version(connection, name, record, content, logs)


def result_record(result: TrainingResult, *, trained_in: str, extra: dict | None = None) -> dict:
    """The training record plus timings and where it was trained."""
    seconds = sum(result.seconds_per_epoch)
    return (
        result.record()
        | {
            "train_seconds": round(seconds, 2),
            "digits_per_second": round(result.digits_trained / seconds, 1) if seconds else None,
            "params": int(result.model.count_params()),
            "trained_in": trained_in,
            "trained_on": f"{socket.gethostname()} ({os.cpu_count()} cores)",
        }
        | (extra or {})
    )


def save_shipped(model, record: dict, folder: Path, name: str) -> ZooEntry:
    """Write ``<name>.keras`` and ``<name>.json`` atomically, without optimizer state."""
    folder.mkdir(parents=True, exist_ok=True)
    record = _file_facts(record, model.count_params(), name)
    target = folder / f"{name}.keras"
    model_files.write_atomically(target, model_files.model_bytes(model))
    model_files.write_record(target.with_suffix(".json"), record)
    return ZooEntry(name, record, shipped=folder.resolve() == config.TRAINED_DIR, file=target)


def insert_version(
    connection: sa.Connection,
    requested_name: str,
    record: dict,
    content: bytes,
    tensorboard: bytes | None = None,
    *,
    owner_key: str | None = None,
) -> ZooEntry:
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
                connection.execute(
                    db.versions.insert().values(
                        name=name,
                        arch=named["arch"],
                        created=named["created"],
                        record=named,
                        model=content,
                        model_sha256=sha256,
                        tensorboard=tensorboard,
                        owner_key=owner_key,
                    )
                )
            return ZooEntry(name, model_files.checked_record(named), False, sha256=sha256)
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
    taken = set(architectures.ZOO) | {p.stem for p in config.TRAINED_DIR.glob("*.keras")}
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
        owner_key = connection.execute(
            sa.select(db.versions.c.owner_key).where(db.versions.c.name == entry.name)
        ).scalar()
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
        model_files.write_record(entry.record_path, record)
    else:
        with db.engine().begin() as connection:
            connection.execute(db.versions.update().where(db.versions.c.name == entry.name).values(record=record))
    return entry.with_record(record)


def _file_facts(record: dict, params: int, name: str) -> dict:
    return record | {
        "name": name,
        "params": int(params),
        "created": record.get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # Read from the installed packages: the web server saves versions without importing them.
        "versions": {
            "python": sys.version.split()[0],
            "keras": importlib.metadata.version("keras"),
            "tensorflow": importlib.metadata.version("tensorflow-cpu"),
        },
    }
