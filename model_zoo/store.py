"""The zoo on disk: shipped models, user versions and their records.

Each model is ``<name>.keras`` with ``<name>.json`` (its record) beside it.
Shipped models live in ``model_zoo/trained/``; versions trained in the app or
with ``scripts.train`` live in a writable folder (``DIGIT_ZOO_USER_DIR``,
default ``data/user_models/``). Files are written under a temporary name and
moved into place, the record last, and only models with a readable record are
listed, so a crash mid-save never leaves a broken model in the zoo.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import keras
import tensorflow as tf

from model_zoo import architectures
from model_zoo.data import PROJECT_ROOT

TRAINED_DIR = Path(__file__).resolve().parent / "trained"
USER_DIR_VARIABLE = "DIGIT_ZOO_USER_DIR"
NAME_PATTERN = re.compile(r"[^A-Za-z0-9_.@-]+")
MAX_NAME_LENGTH = 64


class ModelFileError(ValueError):
    """A model or record file that cannot be read."""


class VersionError(ValueError):
    """A version that cannot be saved or deleted as asked."""


@dataclass(frozen=True)
class ZooEntry:
    name: str
    path: Path  # the .keras file
    record: dict = field(compare=False, repr=False)
    shipped: bool

    @property
    def arch(self) -> architectures.Architecture:
        return architectures.get(self.record["arch"])

    @property
    def test_accuracy(self) -> float:
        return self.record["test_accuracy"]

    @property
    def record_path(self) -> Path:
        return self.path.with_suffix(".json")

    @property
    def label(self) -> str:
        """How pickers show it: name, test accuracy, and whether it is the tutorial's."""
        if not self.shipped:
            note = f" · your version of {self.arch.name}"
        elif not self.arch.in_tutorial:
            note = " · beyond the tutorial"
        else:
            note = ""
        return f"{self.name} ({self.test_accuracy:.2%}{note})"


@dataclass
class ZooListing:
    entries: list[ZooEntry]
    problems: list[str]  # files skipped, with the reason, for the page to show

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def get(self, name: str) -> ZooEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise architectures.UnknownModelError(
            f"Unknown model {name!r}. Expected one of: {', '.join(self.names)}.")


def user_dir() -> Path:
    return Path(os.environ.get(USER_DIR_VARIABLE, PROJECT_ROOT / "data" / "user_models"))


def scan() -> ZooListing:
    """Every usable model: shipped ones in registry order, then user versions by date."""
    problems: list[str] = []
    shipped = _scan_folder(TRAINED_DIR, shipped=True, problems=problems)
    order = {name: i for i, name in enumerate(architectures.ZOO)}
    shipped.sort(key=lambda e: order.get(e.name, len(order)))
    versions = _scan_folder(user_dir(), shipped=False, problems=problems)
    versions.sort(key=lambda e: (e.record.get("created", ""), e.name))
    return ZooListing(shipped + versions, problems)


def _scan_folder(folder: Path, *, shipped: bool, problems: list[str]) -> list[ZooEntry]:
    entries = []
    for model_path in sorted(folder.glob("*.keras")) if folder.is_dir() else []:
        if model_path.name.startswith("."):  # a save in progress
            continue
        try:
            record = read_record(model_path.with_suffix(".json"))
            architectures.get(record["arch"])
            record["test_accuracy"] = float(record["test_accuracy"])
        except (ModelFileError, KeyError, TypeError, ValueError) as error:
            problems.append(f"Skipped {model_path.name}: {error}")
            continue
        entries.append(ZooEntry(model_path.stem, model_path, record, shipped))
    return entries


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


def load_model(path: str | os.PathLike) -> keras.Model:
    """``keras.models.load_model`` with safe_mode on and one clear error for bad files."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Model file not found: {path}")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    # Keras reports damage as any of these (FACTS.md); all mean the same to a user.
    except (ValueError, OSError, zipfile.BadZipFile, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ModelFileError(
            f"Model file is damaged: {path} ({type(error).__name__}: {str(error)[:200]}). "
            "Delete it, or retrain it with python -m scripts.train_zoo.") from None


def save(model: keras.Model, record: dict, folder: Path, name: str) -> ZooEntry:
    """Write ``<name>.keras`` and ``<name>.json`` atomically, without optimizer state."""
    folder.mkdir(parents=True, exist_ok=True)
    record = record | {
        "name": name,
        "params": int(model.count_params()),
        "created": record.get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"python": sys.version.split()[0], "keras": keras.__version__,
                     "tensorflow": tf.__version__},
    }
    target = folder / f"{name}.keras"
    # load_model wants a name ending in .keras; a leading dot hides it from scan().
    with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}.", suffix=".keras",
                                     delete=False) as handle:
        temporary = Path(handle.name)
    try:
        _inference_copy(model).save(temporary)
        temporary.chmod(0o644)  # NamedTemporaryFile makes it private
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    write_record(target.with_suffix(".json"), record)
    return ZooEntry(name, target, record, shipped=folder.resolve() == TRAINED_DIR)


def write_record(path: Path, record: dict) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(record, indent=1))
    os.replace(temporary, path)


def update_record(entry: ZooEntry, **fields) -> ZooEntry:
    """Add computed results (USPS accuracy, robustness curves…) to a model's record."""
    record = entry.record | fields
    write_record(entry.record_path, record)
    return ZooEntry(entry.name, entry.path, record, entry.shipped)


def version_name(arch: str, requested: str = "", when: datetime | None = None) -> str:
    """A safe, new name for a user version: the requested one or ``<arch>@<time>``."""
    when = when or datetime.now()
    name = NAME_PATTERN.sub("-", requested.strip()).strip(".-")[:MAX_NAME_LENGTH]
    name = name or f"{arch}@{when:%Y-%m-%dT%H-%M}"
    taken = set(architectures.ZOO) | {p.stem for p in TRAINED_DIR.glob("*.keras")}
    taken |= {p.stem for p in user_dir().glob("*.keras")} if user_dir().is_dir() else set()
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def save_version(model: keras.Model, record: dict, requested_name: str = "") -> ZooEntry:
    """Save a trained model as a new user version; never touches shipped models."""
    name = version_name(record["arch"], requested_name)
    return save(model, record, user_dir(), name)


def delete_version(entry: ZooEntry) -> None:
    if entry.shipped:
        raise VersionError(f"{entry.name} is a shipped model and cannot be deleted.")
    entry.record_path.unlink(missing_ok=True)  # unlisted first, then the files
    entry.path.unlink(missing_ok=True)
    shutil.rmtree(tensorboard_dir(entry.name), ignore_errors=True)


def tensorboard_dir(name: str) -> Path:
    return user_dir() / "tensorboard" / name


def _inference_copy(model: keras.Model) -> keras.Model:
    """The same layers and weights, uncompiled: shipped files carry no optimizer state."""
    copy = type(model).from_config(model.get_config())  # clone_model and to_json keep the optimizer
    copy.set_weights(model.get_weights())
    return copy
