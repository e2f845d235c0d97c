"""Scores for the zoo: accuracy, confusion matrix, mistakes, USPS, real pen strokes, robustness curves.

Long on purpose: every score of a record (and the cache that keeps it) in one place, so that
the Zoo page and scripts.evaluate cannot disagree.

Shared by ``scripts.evaluate`` and the Zoo page. Every function takes a model
that honours the model contract: a Keras model, or an ``inference.FastModel``
(the web server's, NumPy only). Whole test sets are predicted in batches,
never one digit at a time. The robustness curves' distortions need
TensorFlow (``model_zoo.augment``); nothing else here does.

The heavy results (USPS accuracy, robustness curves, confusion matrix and the
first mistakes) are cached in each model's record by ``ensure_evaluated``, so
a warm server draws them without running a single model.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_zoo import augment, data, inference, model_files, store, strokes

BATCH_SIZE = 1000
CHUNK = 10_000  # digits converted to float32 at a time (the distorted sets are kept as uint8)
MISTAKES_KEPT = 24  # mistakes stored in a record: the first ones in test-set order

# Robustness curves: a fixed, seeded subset of the MNIST test digits, distorted
# by a fixed amount per point of a curve. Changing any of this changes the
# numbers, so it is stored with them and a record made with another setup is
# recomputed.
ROBUSTNESS_SETUP = {
    "version": 1,
    "digits": 2_000,  # taken at random (seeded) from the 10,000 test digits
    "seed": 0,  # picks the digits and each digit's shift direction / rotation sign
    "shift_directions": 8,  # every 45°, one drawn at random per digit
    "shift": [0, 1, 2, 3, 4, 5, 6],  # pixels
    "rotation": [0, 5, 10, 15, 20, 25, 30],  # degrees, clockwise or not at random per digit
    "scale": [0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2],  # about the image centre
    "thickness": list(augment.THICKNESS_LEVELS),  # -1 thinner, +k about k px thicker
}
DISTORTIONS = ("shift", "rotation", "scale", "thickness")
DISTORTION_LABELS = {  # x-axis titles for tables and charts
    "shift": "shift (pixels)",
    "rotation": "rotation (degrees)",
    "scale": "scale (× size)",
    "thickness": "stroke thickness (−1 thinner, +k ≈ k px thicker)",
}

# Fields ensure_evaluated adds to a record.
EVALUATED_FIELDS = (
    "confusion_matrix",
    "mistakes",
    "robustness",
    "robustness_setup",
    "drawn_accuracy",
    "drawn_overshoot_accuracy",
    "drawn_set_sha256",
)

Curves = dict[str, list[list[float]]]  # distortion → [[value, accuracy], ...]


# ------------------------------------------------------------------ predicting


def _as_float(x: np.ndarray) -> np.ndarray:
    """uint8 0..255 or float in [0, 1] → float32 in [0, 1], shape kept."""
    return data.to_float(x) if x.dtype == np.uint8 else np.asarray(x, np.float32)


def probabilities(model, x: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 or float → (N, 10) softmax, in batches."""
    parts = []
    for start in range(0, len(x), CHUNK):
        chunk = _as_float(x[start : start + CHUNK])
        if hasattr(model, "predict_batch"):  # inference.FastModel
            parts.append(np.asarray(model.predict_batch(chunk)))
        else:
            parts.append(model.predict(chunk, batch_size=BATCH_SIZE, verbose=0))
    return np.concatenate(parts) if parts else np.zeros((0, 10), np.float32)


def predicted_digits(model, x: np.ndarray) -> np.ndarray:
    return np.argmax(probabilities(model, x), axis=1)


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of the digits in ``x`` that the model reads as ``y``."""
    return float(np.mean(predicted_digits(model, x) == np.asarray(y)))


def confusion_from_predictions(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(10, 10) int counts: row = true digit, column = predicted digit."""
    pairs = np.asarray(y, np.int64) * 10 + np.asarray(predicted, np.int64)
    return np.bincount(pairs, minlength=100).reshape(10, 10)


def confusion_matrix(model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(10, 10) int counts: row = true digit, column = predicted digit."""
    return confusion_from_predictions(y, predicted_digits(model, x))


@dataclass(frozen=True)
class Mistakes:
    """The first misread digits, in the order of the test set."""

    indices: np.ndarray  # (M,) positions in x
    true: np.ndarray  # (M,) the labels
    predicted: np.ndarray  # (M,) what the model said
    confidence: np.ndarray  # (M,) its probability for what it said

    def __len__(self) -> int:
        return len(self.indices)

    def to_record(self) -> list[dict]:
        return [
            {"index": int(i), "true": int(t), "predicted": int(p), "confidence": round(float(c), 4)}
            for i, t, p, c in zip(self.indices, self.true, self.predicted, self.confidence)
        ]

    @classmethod
    def from_record(cls, rows: list[dict]) -> Mistakes:
        def column(key, dtype):
            return np.array([row[key] for row in rows], dtype)

        return cls(
            column("index", np.int64),
            column("true", np.int64),
            column("predicted", np.int64),
            column("confidence", np.float32),
        )


def mistakes_from_probabilities(y: np.ndarray, probs: np.ndarray, limit: int) -> Mistakes:
    predicted = np.argmax(probs, axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(y))[:limit]
    return Mistakes(wrong, np.asarray(y)[wrong].astype(np.int64), predicted[wrong], probs[wrong, predicted[wrong]])


def mistakes(model, x: np.ndarray, y: np.ndarray, limit: int = MISTAKES_KEPT) -> Mistakes:
    """The first ``limit`` digits of ``x`` the model gets wrong."""
    return mistakes_from_probabilities(y, probabilities(model, x), limit)


def usps_accuracy(model, usps_path: str | os.PathLike | None = None) -> float | None:
    """Accuracy on the USPS test digits (real handwriting, not MNIST); None without the file.

    An explicit ``usps_path`` (or ``USPS_PATH``) that does not exist raises
    ``data.DataNotFoundError`` rather than returning None.
    """
    path = data.find_usps(usps_path)
    if path is None:
        return None
    _, (x_test, y_test) = data.load_usps(path)
    return accuracy(model, x_test, y_test)


# ------------------------------------------------------------------ the drawn set


DRAWN_SET = Path(__file__).resolve().parent / "drawn_set.npz"
OVERSHOOT_DIGITS = ("0", "6", "9")  # the loops people close in one stroke, past the start


@dataclass(frozen=True)
class DrawnSet:
    """Digits drawn with the mouse on the app's canvas (tests/browser/drawn_set.py), never trained on."""

    x: np.ndarray  # (N, 28, 28) uint8: what the app made of each drawing
    y: np.ndarray  # (N,) labels
    shape: np.ndarray  # (N,) str: the drawing's style, e.g. "0_over" or "4_closed"
    overshoot: np.ndarray  # (N,) bool: a loop drawn in one stroke that runs past its start
    sha256: str  # of the file: a record scored on another version of the set is rescored


def drawn_set(path: str | os.PathLike = DRAWN_SET) -> DrawnSet:
    """The drawn test set; a missing or damaged file raises ``data.DataError`` naming it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            x, y = archive["x"], archive["y"]
            shape, overshoot = archive["shape"], archive["overshoot"].astype(bool)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:  # absent, cut, not npz
        raise data.DataError(
            f"The drawn test set {path} is missing or damaged ({error}). Restore it "
            "from git or redraw it: python -m tests.browser.drawn_set"
        ) from error
    if x.shape[1:] != (28, 28) or x.dtype != np.uint8 or not len(x) == len(y) == len(shape) == len(overshoot):
        raise data.DataError(
            f"The drawn test set {path} holds {x.shape} {x.dtype} images and {len(y)} "
            "labels; expected (N, 28, 28) uint8 and N labels. Redraw it: "
            "python -m tests.browser.drawn_set"
        )
    return DrawnSet(x, y, shape, overshoot, data.file_sha256(path))


def drawn_scores(model, drawn: DrawnSet) -> dict:
    """Record fields: accuracy on the drawn set, and on its overshooting 0s, 6s and 9s."""
    predicted = predicted_digits(model, drawn.x)
    right = predicted == drawn.y
    overshoot = {
        digit: round(float(right[drawn.overshoot & (drawn.y == int(digit))].mean()), 4) for digit in OVERSHOOT_DIGITS
    }
    return {
        "drawn_accuracy": round(float(right.mean()), 4),
        "drawn_overshoot_accuracy": overshoot,
        "drawn_set_sha256": drawn.sha256,
    }


# ------------------------------------------------------------------ real pen strokes


# The pen test: UNIPEN's test writers' digits (data.pen_part), never trained on nor chosen by, drawn as
# written with the canvas's pen at a random (seeded) height, place and pen width, through to_mnist.
# Changing any of this changes the numbers, so it is stored with them and a record made otherwise is rescored.
PEN_SETUP = {
    "version": 1,
    "part": "test",
    "split": data.PEN_SPLIT_RULE,
    "seed": 0,
    "rendering": strokes.VERSION,
    "hand": repr(strokes.AS_WRITTEN),
}

_pen_lock = threading.Lock()
_pen_cache: dict[tuple[str, float], tuple[np.ndarray, np.ndarray, str]] = {}


def pen_test_set(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The pen test writers' digits as the app sees them: (N, 28, 28) uint8, labels, the digits' checksum.

    Rendered once per process and file (and cached in data/strokes/); ``data.DataNotFoundError``
    when the pen-stroke file is missing.
    """
    found = data.find_pen_digits(path)
    if found is None:
        data.load_pen_digits(path)  # raises the error that says where to put the file
    key = (str(found), found.stat().st_mtime)
    with _pen_lock:
        if key not in _pen_cache:
            _pen_cache.clear()
            test = data.pen_split(data.load_pen_digits(found))["test"]
            x, y = strokes.pen_digit_images(test, seed=PEN_SETUP["seed"], cache=True)
            _pen_cache[key] = (x, y, data.pen_digits_sha256(test))
        return _pen_cache[key]


def pen_scores(model, path: str | os.PathLike | None = None) -> dict:
    """Record fields: accuracy on the pen test writers' digits, and what it was measured on."""
    x, y, sha256 = pen_test_set(path)
    return {
        "pen_accuracy": round(accuracy(model, x, y), 4),
        "pen_setup": PEN_SETUP,
        "pen_test_digits": len(y),
        "pen_test_sha256": sha256,
    }


# ------------------------------------------------------------------ robustness


@dataclass(frozen=True)
class DistortedSets:
    """Every point of every robustness curve as one uint8 batch, built once per process."""

    images: np.ndarray  # (B * n, 28, 28) uint8: B distorted copies of the n digits
    labels: np.ndarray  # (n,)
    points: list[tuple[str, float]]  # the K (distortion, value) pairs, in order
    blocks: list[int]  # (K,) which copy each point uses: the undistorted one is shared

    @property
    def digits(self) -> int:
        return len(self.labels)

    def image(self, point: int, digit: int = 0) -> np.ndarray:
        """(28, 28) uint8: one digit as distorted for one point of the curves."""
        return self.images[self.blocks[point] * self.digits + digit]


_sets_lock = threading.Lock()
_sets_cache: dict[str, DistortedSets] = {}


def _fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    digest = hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16)
    digest.update(np.ascontiguousarray(y).tobytes())
    return f"{x.shape}{x.dtype}{digest.hexdigest()}"


def robustness_subset(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The seeded subset of the test digits the curves are measured on."""
    n = min(ROBUSTNESS_SETUP["digits"], len(x))
    rng = np.random.default_rng(ROBUSTNESS_SETUP["seed"])
    chosen = np.sort(rng.choice(len(x), n, replace=False))
    return x[chosen], np.asarray(y)[chosen]


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images * 255), 0, 255).astype(np.uint8)


def _build_sets(x: np.ndarray, y: np.ndarray) -> DistortedSets:
    x, y = robustness_subset(x, y)
    images = _as_float(x)  # (n, 28, 28) float32
    rng = np.random.default_rng(ROBUSTNESS_SETUP["seed"] + 1)
    directions = rng.integers(ROBUSTNESS_SETUP["shift_directions"], size=len(x))  # (n,)
    signs = rng.choice([-1.0, 1.0], size=len(x))  # (n,) rotation direction

    def shifted(pixels: float) -> np.ndarray:
        out = np.empty_like(images)
        for d in range(ROBUSTNESS_SETUP["shift_directions"]):
            angle = 2 * math.pi * d / ROBUSTNESS_SETUP["shift_directions"]
            group = directions == d
            if group.any():
                out[group] = augment.distort(images[group], shift=(pixels * math.cos(angle), pixels * math.sin(angle)))
        return out

    def rotated(degrees: float) -> np.ndarray:
        out = np.empty_like(images)
        for sign in (-1.0, 1.0):
            group = signs == sign
            out[group] = augment.distort(images[group], rotation_deg=sign * degrees)
        return out

    make = {
        "shift": shifted,
        "rotation": rotated,
        "scale": lambda s: augment.distort(images, scale=s),
        "thickness": lambda level: augment.change_thickness(images, int(level)),
    }
    undistorted = {"shift": 0, "rotation": 0, "scale": 1, "thickness": 0}
    points, blocks, batches = [], [], [np.asarray(x, np.uint8)]  # block 0: the digits as they are
    for distortion in DISTORTIONS:
        for value in ROBUSTNESS_SETUP[distortion]:
            points.append((distortion, value))
            if value == undistorted[distortion]:
                blocks.append(0)
            else:
                blocks.append(len(batches))
                batches.append(_to_uint8(make[distortion](value)))
    return DistortedSets(np.concatenate(batches), y, points, blocks)


def distorted_sets(x: np.ndarray, y: np.ndarray) -> DistortedSets:
    """The distorted copies of (x, y)'s robustness subset, built once per process."""
    key = _fingerprint(x, y)
    with _sets_lock:  # one build even when several sessions ask at once
        if key not in _sets_cache:
            _sets_cache.clear()  # MNIST is fixed: keep only the latest
            _sets_cache[key] = _build_sets(x, y)
        return _sets_cache[key]


def robustness_curves(model, x: np.ndarray, y: np.ndarray) -> Curves:
    """Accuracy on shifted, rotated, scaled and thinner/thicker digits.

    ``x, y`` are the MNIST test digits; the curves use a fixed seeded subset
    of ``ROBUSTNESS_SETUP["digits"]`` of them. Returns
    ``{"shift": [[0, acc], [1, acc], ...], "rotation": ..., "scale": ..., "thickness": ...}``.
    """
    sets = distorted_sets(x, y)
    n = sets.digits
    predicted = predicted_digits(model, sets.images).reshape(-1, n)  # (B, n)
    correct = (predicted == sets.labels[np.newaxis]).mean(axis=1)  # (B,)
    curves: Curves = {distortion: [] for distortion in DISTORTIONS}
    for (distortion, value), block in zip(sets.points, sets.blocks):
        curves[distortion].append([value, round(float(correct[block]), 4)])
    return curves


# ------------------------------------------------------------------ records as a cache


_mnist_lock = threading.Lock()
_mnist_cache: dict[tuple[str, float], tuple[np.ndarray, np.ndarray]] = {}


def mnist_test(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test digits (uint8, labels), read once per process and file."""
    found = data.find_mnist(path)
    key = (str(found), found.stat().st_mtime)
    with _mnist_lock:
        if key not in _mnist_cache:
            _mnist_cache.clear()
            _, _mnist_cache[key] = data.load_mnist(found)
        return _mnist_cache[key]


def missing_fields(entry: store.ZooEntry, *, usps: bool, pen: bool = False, recompute: bool = False) -> list[str]:
    """Which computed fields the record lacks (or has from another setup); all with ``recompute``.

    ``usps``, ``pen``: whether to score on USPS, on the pen test writers (only when their file is
    there; ~20 s of rendering the first time, so only ``scripts.evaluate`` asks for it).
    """
    record = entry.record
    missing = []
    if recompute or record.get("robustness_setup") != ROBUSTNESS_SETUP or "robustness" not in record:
        missing.append("robustness")
    if recompute or "confusion_matrix" not in record or "mistakes" not in record:
        missing.append("confusion_matrix")
    if usps and (recompute or "usps_accuracy" not in record):
        missing.append("usps_accuracy")
    if DRAWN_SET.is_file() and (recompute or record.get("drawn_set_sha256") != _drawn_sha256()):
        missing.append("drawn")
    if pen and (recompute or record.get("pen_setup") != PEN_SETUP or "pen_accuracy" not in record):
        missing.append("pen")
    return missing


_drawn_sha: dict[float, str] = {}


def _drawn_sha256() -> str:
    """The drawn set's checksum, read once per version of the file."""
    modified = DRAWN_SET.stat().st_mtime
    if modified not in _drawn_sha:
        _drawn_sha.clear()
        _drawn_sha[modified] = data.file_sha256(DRAWN_SET)
    return _drawn_sha[modified]


def evaluate_fields(
    model,
    fields: list[str],
    *,
    mnist: tuple[np.ndarray, np.ndarray] | None = None,
    usps_path: str | os.PathLike | None = None,
    pen_path: str | os.PathLike | None = None,
) -> dict:
    """Compute the named record fields for one model (see ``missing_fields``)."""
    result: dict = {}
    if {"robustness", "confusion_matrix"} & set(fields):
        x_test, y_test = mnist if mnist is not None else mnist_test()
        if "confusion_matrix" in fields:
            probs = probabilities(model, x_test)
            predicted = np.argmax(probs, axis=1)
            result["confusion_matrix"] = confusion_from_predictions(y_test, predicted).tolist()
            result["mistakes"] = mistakes_from_probabilities(y_test, probs, MISTAKES_KEPT).to_record()
        if "robustness" in fields:
            result["robustness"] = robustness_curves(model, x_test, y_test)
            result["robustness_setup"] = ROBUSTNESS_SETUP
    if "usps_accuracy" in fields:
        score = usps_accuracy(model, usps_path)
        if score is not None:
            result["usps_accuracy"] = round(score, 4)
    if "drawn" in fields:
        result.update(drawn_scores(model, drawn_set()))
    if "pen" in fields:
        result.update(pen_scores(model, pen_path))
    return result


def ensure_evaluated(
    entry: store.ZooEntry,
    *,
    model=None,
    mnist: tuple[np.ndarray, np.ndarray] | None = None,
    usps_path: str | os.PathLike | None = None,
    with_usps: bool | None = None,
    save: bool | None = None,
    recompute: bool = False,
) -> store.ZooEntry:
    """The entry with USPS accuracy, robustness curves, confusion matrix and mistakes.

    Only what the record lacks is computed (nothing, on a warm record: the
    model and MNIST are not even loaded); with ``save`` the new fields are
    written into the record with ``store.update_record``, otherwise they are
    only in the returned entry. By default a user version keeps them in its
    record, and a shipped record is left as ``scripts.train_zoo`` wrote it
    (``scripts.evaluate --update-records`` asks with ``save=True``). ``model`` defaults to
    loading ``entry.model_file()``;
    ``mnist`` to the MNIST test set (``x_test``, ``y_test``). USPS accuracy
    is computed when ``with_usps``, by default when the USPS file is found. Raises
    ``data.DataError`` when MNIST is needed but not found and
    ``model_files.ModelFileError`` for a damaged model.
    """
    if with_usps is None:
        with_usps = data.find_usps(usps_path) is not None
    fields = missing_fields(entry, usps=with_usps, recompute=recompute)
    if not fields:
        return entry
    model = model if model is not None else model_files.read_model(entry.model_file())
    computed = evaluate_fields(model, fields, mnist=mnist, usps_path=usps_path)
    if save if save is not None else not entry.shipped:
        return store.update_record(entry, **computed)
    return entry.with_record(entry.record | computed)


# ------------------------------------------------------------------ tables


def layer_table(model: inference.FastModel) -> list[dict]:
    """One row per layer: name, type, output shape (batch axis as N) and parameter count."""
    return [
        {
            "layer": layer.name,
            "type": layer.kind,
            "output shape": "(" + ", ".join(map(str, ("N", *layer.output_shape))) + ")",
            "params": layer.params,
        }
        for layer in model.layers
    ]


def stages(record: dict) -> list[dict]:
    """The training runs a model came from, in order: its first stage (scripts.train_zoo's pen
    finish starts from one) and the record's own."""
    return [record["first_stage"], record] if isinstance(record.get("first_stage"), dict) else [record]


def whole_history(record: dict) -> dict[str, list[float]]:
    """Per-epoch curves over every stage, one after the other."""
    merged: dict[str, list[float]] = {}
    for stage in stages(record):
        for metric, values in (stage.get("history") or {}).items():
            merged.setdefault(metric, []).extend(values)
    return merged


def table_row(entry: store.ZooEntry) -> dict:
    """One zoo-table row from a record: the numbers ``scripts.evaluate`` prints."""
    record = entry.record
    seconds = [s for stage in stages(record) for s in stage.get("seconds_per_epoch") or []]
    tutorial = entry.arch.tutorial_accuracy  # a user version is compared with the model it retrains
    return {
        "model": entry.name,
        "origin": entry.origin,
        "trained_on": trained_on(record.get("settings", {}), record.get("first_stage")),
        "params": record.get("params"),
        "epochs": sum(stage.get("epochs_done", 0) for stage in stages(record)) or len(seconds) or None,
        "s_per_epoch": round(sum(seconds) / len(seconds), 2) if seconds else None,
        "mnist_test": entry.test_accuracy,
        "tutorial": tutorial,
        "difference": round(entry.test_accuracy - tutorial, 4) if tutorial is not None else None,
        "usps_test": record.get("usps_accuracy"),
        "drawn": record.get("drawn_accuracy"),
        "pen": record.get("pen_accuracy"),
    }


def trained_on(settings: dict, first_stage: dict | None = None) -> str:
    """ "MNIST", "MNIST + USPS train", "... + pen strokes", "... + my class, fine-tuned": what a model learnt from.

    A model trained in two stages (scripts.train_zoo's pen finish) says both:
    "MNIST + USPS train, then MNIST + USPS train + pen strokes".
    """
    sources = (
        "MNIST"
        + (" + USPS train" if settings.get("usps") else "")
        + (" + pen strokes" if settings.get("strokes") else "")
        + (" + UNIPEN writers" if settings.get("unipen") else "")
        + (f" + {settings['class_digits']}" if settings.get("class_digits") else "")
    )
    if first_stage is not None:
        return f"{trained_on(first_stage.get('settings', {}))}, then {sources}"
    return sources + (", fine-tuned" if settings.get("fine_tune") else "")


TABLE_HEADERS = {  # row key → column title
    "model": "model",
    "origin": "origin",
    "trained_on": "trained on",
    "params": "params",
    "epochs": "epochs",
    "s_per_epoch": "train s/epoch",
    "mnist_test": "MNIST test",
    "tutorial": "tutorial",
    "difference": "difference",
    "usps_test": "USPS test",
    "drawn": "drawn",
    "pen": "pen",
}


def robustness_rows(entries: list[store.ZooEntry], distortion: str) -> list[dict]:
    """One row per model with a curve: {"model": name, <value>: accuracy, ...}."""
    rows = []
    for entry in entries:
        curve = (entry.record.get("robustness") or {}).get(distortion)
        if curve:
            rows.append({"model": entry.name} | {_value_text(v): acc for v, acc in curve})
    return rows


def _value_text(value: float) -> str:
    return f"{value:g}"
