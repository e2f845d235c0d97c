"""Digit data sets → arrays, with errors that say which file is wrong and how.

Long on purpose: every format (MNIST, USPS, UNIPEN, a picture, the class's files) is read
through the same bounds and checks, and they stay safe by staying in one place.

Every reader returns images as `(N, 28, 28)` uint8, white digit on black (the
MNIST convention), and labels as `(N,)` uint8 in 0..9, checked by one helper,
`check_digits`. `to_float` turns images into the model contract's input.

MNIST is found in this order: an explicit path (argument or `MNIST_PATH`),
`data/mnist.npz` in the project, the Keras cache, then a Keras download.

UNIPEN's pen strokes (`load_pen_digits`) are not images but pen paths, each
digit with its writer; `pen_part` splits them by writer into train,
validation and test, and `model_zoo.strokes` draws them as the canvas would.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from model_zoo import config

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")  # the Keras mnist.npz layout
SIDE = 28  # images are SIDE x SIDE
PIXELS = SIDE * SIDE  # 784 columns in a Kaggle CSV

Split = tuple[np.ndarray, np.ndarray]  # x (N, 28, 28) uint8, y (N,) uint8 0..9


class DataError(ValueError):
    """A data file is missing, unreadable or not digits in the expected layout."""


class DataNotFoundError(DataError, FileNotFoundError):
    """Nothing was found where we looked."""


# ---------------------------------------------------------------- locating


def _explicit_file(name: str, path: str | os.PathLike | None, env: str, file_name: str = "") -> Path | None:
    """The file named by `path`, else by `$env`; None if neither names one.

    A named file that does not exist is an error: a typo must not silently fall
    through to other data.
    """
    given = path if path is not None else os.environ.get(env)
    if not given:
        return None
    p = Path(given).expanduser().absolute()
    if p.is_file():
        return p
    file_name = file_name or f"{name.lower()}.npz"
    if path is not None:
        raise DataNotFoundError(f"{name} file not found: {p}. Pass the path of an existing {file_name}.")
    raise DataNotFoundError(f"{env}={given} but there is no such file ({p}). Point {env} at {file_name} or unset it.")


def _keras_cache_files() -> list[Path]:
    """Where `keras.datasets.mnist.load_data()` keeps mnist.npz.

    `$KERAS_HOME` or `~/.keras`; Keras itself falls back to `/tmp/.keras` when
    that folder is not writable, so we look there too in that case only.
    """
    base = Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()
    bases = [base] if os.access(base, os.W_OK) else [base, Path("/tmp/.keras")]
    return [b / "datasets" / "mnist.npz" for b in bases]


def _download_mnist() -> Path:
    """Let Keras download mnist.npz into its cache and return where it landed."""
    import keras  # slow to import, so only on this last resort

    keras.datasets.mnist.load_data()
    for p in _keras_cache_files():
        if p.is_file():
            return p
    raise FileNotFoundError("Keras downloaded MNIST but not into the cache we read")


def find_mnist(path: str | os.PathLike | None = None) -> Path:
    """Path of mnist.npz: `path`, `$MNIST_PATH`, data/, the Keras cache, or a download."""
    explicit = _explicit_file("MNIST", path, "MNIST_PATH")
    if explicit is not None:
        return explicit
    candidates = [config.PROJECT_ROOT / "data" / "mnist.npz", *_keras_cache_files()]
    for p in candidates:
        if p.is_file():
            return p
    try:
        return _download_mnist()
    # Keras reports a failed fetch as a plain Exception (URL errors included), so
    # nothing narrower catches it; the cause is kept in the message and the chain.
    except Exception as err:  # noqa: BLE001
        looked = ", ".join(str(p) for p in candidates)
        raise DataNotFoundError(
            f"MNIST not found. Put mnist.npz in {config.PROJECT_ROOT / 'data'}/ or set "
            f"MNIST_PATH=/path/to/mnist.npz (looked in: {looked}; "
            f"Keras download failed: {type(err).__name__}: {err})"
        ) from err


def find_usps(path: str | os.PathLike | None = None) -> Path | None:
    """Path of usps.npz, or None when it is in none of the default places.

    An explicit `path` or `$USPS_PATH` that does not exist is an error, not None.
    """
    explicit = _explicit_file("USPS", path, "USPS_PATH")
    if explicit is not None:
        return explicit
    for p in _usps_defaults():
        if p.is_file():
            return p
    return None


def usps_available() -> bool:
    """Whether USPS can be used here (a USPS_PATH naming a missing file counts as no)."""
    try:
        return find_usps() is not None
    except DataError:
        return False


def _usps_defaults() -> list[Path]:
    return [
        config.PROJECT_ROOT / "data" / "usps.npz",
    ]


PEN_FILE = "unipen_pen.json.gz"


def _pen_defaults() -> list[Path]:
    return [config.PROJECT_ROOT / "data" / PEN_FILE, config.PROJECT_ROOT.parent / "shared" / "data" / PEN_FILE]


def find_pen_digits(path: str | os.PathLike | None = None) -> Path | None:
    """Path of unipen_pen.json.gz: `path`, `$UNIPEN_PATH`, data/, ../shared/data/; None if in none.

    An explicit `path` or `$UNIPEN_PATH` that does not exist is an error, not None.
    """
    explicit = _explicit_file("UNIPEN", path, "UNIPEN_PATH", PEN_FILE)
    if explicit is not None:
        return explicit
    return next((p for p in _pen_defaults() if p.is_file()), None)


def pen_digits_available() -> bool:
    """Whether UNIPEN's pen strokes can be used here (an UNIPEN_PATH naming a missing file counts as no)."""
    try:
        return find_pen_digits() is not None
    except DataError:
        return False


# ---------------------------------------------------------------- validation


def _whole_0_to(a: np.ndarray, top: int) -> int | None:
    """Flat index of the first value that is not a whole number in 0..top, else None."""
    if a.dtype == np.uint8 and top >= 255:
        return None  # fast path: every uint8 fits
    bad = (a < 0) | (a > top)
    if a.dtype.kind == "f":
        bad |= np.isnan(a) | (a != np.round(a))
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


def check_digits(
    x: np.ndarray, y: np.ndarray | None, source: str, first_line: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate images (and labels, if any) and return them as uint8.

    `source` names the file (and array) in messages; with `first_line`, rows are
    reported as line numbers of a text file whose first data row is on that line.
    """

    def where(row: int) -> str:
        return f"line {row + first_line}" if first_line is not None else f"row {row}"

    x = np.asarray(x)
    if x.ndim != 3 or x.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{source}: images must be 28x28, an array of shape (N, 28, 28); found {x.shape}")
    if len(x) == 0:
        raise DataError(f"{source}: has no images; expected at least one digit")
    if x.dtype.kind not in "uif":
        raise DataError(f"{source}: images must be numbers 0-255 (uint8), found dtype {x.dtype}")
    bad = _whole_0_to(x, 255)
    if bad is not None:
        row = bad // PIXELS
        raise DataError(
            f"{source}: pixels must be whole numbers 0-255, found "
            f"{x.flat[bad].item()} ({where(row)}). Pixels scaled to [0, 1] must be "
            "multiplied by 255 first."
        )
    if y is None:
        return x.astype(np.uint8, copy=False), None

    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(
            f"{source}: expected one label per image, {len(x)} labels of shape "
            f"({len(x)},); found labels of shape {y.shape}"
        )
    if y.dtype.kind not in "uif":
        raise DataError(f"{source}: labels must be integers 0-9, found dtype {y.dtype}")
    bad = _whole_0_to(y, 9)
    if bad is not None:
        raise DataError(f"{source}: labels must be 0-9, found {y[bad].item()} ({where(bad)})")
    return x.astype(np.uint8, copy=False), y.astype(np.uint8, copy=False)


def _require_file(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser().absolute()
    if not p.exists():
        raise DataNotFoundError(f"{p} not found. Check the path.")
    if not p.is_file():
        raise DataError(f"{p} is a folder; expected a file.")
    return p


# ---------------------------------------------------------------- readers


def _damaged(p: Path, err: Exception, fix: str) -> DataError:
    return DataError(f"{p} is damaged or truncated ({type(err).__name__}: {err}). {fix}")


# What numpy and zipfile raise on a truncated, corrupt or non-npz file.
_NPZ_ERRORS = (zipfile.BadZipFile, EOFError, ValueError, zlib.error)


def _read_npz(path: str | os.PathLike, fix: str) -> tuple[Split, Split]:
    """Read and validate a Keras-layout npz; `fix` ends messages with what to do."""
    p = _require_file(path)
    try:
        archive = np.load(p, allow_pickle=False)
    except _NPZ_ERRORS as err:
        raise _damaged(p, err, fix) from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{p} is a single .npy array, not an .npz archive with keys {', '.join(NPZ_KEYS)}. {fix}")
    with archive:
        missing = [k for k in NPZ_KEYS if k not in archive.files]
        if missing:
            raise DataError(
                f"{p} has no {missing[0]!r} array; expected keys {', '.join(NPZ_KEYS)} "
                f"(found: {', '.join(archive.files) or 'none'}). {fix}"
            )
        try:  # members are read (and CRC-checked) only here
            a = {k: archive[k] for k in NPZ_KEYS}
        except _NPZ_ERRORS as err:
            raise _damaged(p, err, fix) from err
    train = check_digits(a["x_train"], a["y_train"], f"{p} (x_train, y_train)")
    test = check_digits(a["x_test"], a["y_test"], f"{p} (x_test, y_test)")
    return train, test  # type: ignore[return-value]  # npz always has labels


def load_npz_digits(path: str | os.PathLike) -> tuple[Split, Split]:
    """((x_train, y_train), (x_test, y_test)) from a Keras-layout .npz, validated."""
    return _read_npz(path, "Replace it with a good copy.")


def load_mnist(path: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """MNIST as ((x_train, y_train), (x_test, y_test)), found by `find_mnist`."""
    return _read_npz(find_mnist(path), "Download it again or point MNIST_PATH at a good copy.")


def load_usps(path: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """USPS as ((x_train, y_train), (x_test, y_test)); DataNotFoundError if absent."""
    found = find_usps(path)
    if found is None:
        looked = ", ".join(str(p) for p in _usps_defaults())
        raise DataNotFoundError(
            f"USPS not found. Put usps.npz in {config.PROJECT_ROOT / 'data'}/ or set "
            f"USPS_PATH=/path/to/usps.npz (looked in: {looked})"
        )
    return _read_npz(found, "Point USPS_PATH at a good copy.")


# USPS's training digits, split for choosing a recipe: a fixed seeded fifth is held out as validation
# (USPS's test digits never choose anything). USPS files name no writer, so the split is by digit.
USPS_VALIDATION_FRACTION = 0.2
USPS_VALIDATION_SEED = 0
USPS_SPLIT_RULE = (
    f"by digit: numpy.random.default_rng({USPS_VALIDATION_SEED}).permutation(len(x_train)); "
    f"the first round({USPS_VALIDATION_FRACTION} × len) → validation, the rest → train "
    "(each part in file order)"
)


def usps_validation_split(usps_train: Split) -> tuple[Split, Split]:
    """USPS's training digits as (train, validation): the seeded fifth of USPS_SPLIT_RULE held out."""
    x, y = usps_train
    order = np.random.default_rng(USPS_VALIDATION_SEED).permutation(len(x))
    n_val = round(len(x) * USPS_VALIDATION_FRACTION)
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return (x[train], y[train]), (x[val], y[val])


def _csv_header(p: Path, f: TextIO) -> list[str]:
    header = next(csv.reader([f.readline()]), None)
    if not header:
        raise DataError(f"{p} is empty; expected a header line and rows of digits")
    return [h.strip() for h in header]


def _find_bad_csv_line(p: Path, f: TextIO, width: int) -> str | None:
    """Why the CSV body (after its header) failed to parse, or None if we cannot tell."""
    f.seek(0)
    reader = csv.reader(f)
    next(reader)
    for row in reader:
        if not row:
            continue  # blank lines are skipped by np.loadtxt too
        if len(row) != width:
            return f"{p} line {reader.line_num} has {len(row)} values, expected {width}"
        for column, value in enumerate(row, start=1):
            try:
                int(value)
            except ValueError:
                return f"{p} line {reader.line_num} column {column}: {value!r} is not a whole number"
    return None


def load_kaggle_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Kaggle Digit Recognizer CSV → (x, y); `y` is None for test.csv (no label column).

    train.csv: header `label,pixel0,...,pixel783`; test.csv: `pixel0,...,pixel783`.
    """
    p = _require_file(path)
    with open(p, newline="") as f:
        header = _csv_header(p, f)
        first_pixel = 1 if header[0] == "label" else 0  # test.csv has no label column
        width = first_pixel + PIXELS
        if len(header) != width or not header[first_pixel].startswith("pixel"):
            raise DataError(
                f"{p}: header has {len(header)} columns starting {','.join(header[:2])!r}; "
                "expected 'label,pixel0,...,pixel783' (train) or 'pixel0,...,pixel783' (test)"
            )
        # np.loadtxt parses in C (fast for Kaggle's 42000 rows); only when it
        # fails do we walk the file in Python to name the bad line.
        try:
            with warnings.catch_warnings():
                # A header with no rows is reported below, naming the file.
                warnings.simplefilter("ignore", UserWarning)
                rows = np.loadtxt(f, delimiter=",", dtype=np.int32, ndmin=2)
        except ValueError as err:
            raise DataError(_find_bad_csv_line(p, f, width) or f"{p} could not be read: {err}") from err
        if rows.size and rows.shape[1] != width:  # every row short by the same amount
            raise DataError(
                _find_bad_csv_line(p, f, width) or f"{p} rows have {rows.shape[1]} values, expected {width}"
            )
    if rows.size == 0:
        raise DataError(f"{p} has a header but no rows; expected one digit per line")
    x = rows[:, first_pixel:].reshape(-1, SIDE, SIDE)  # (N, 28, 28)
    y = rows[:, 0] if first_pixel else None
    return check_digits(x, y, str(p), first_line=2)


def load_training_digits(path: str | os.PathLike) -> Split:
    """Labelled digits to train on: a Keras-layout .npz's training split, or either tutorial CSV.

    A CSV is told apart by its header: a Kaggle Digit Recognizer ``train.csv``
    (label, pixel0…pixel783) or an Analytics Vidhya ``train.csv`` (filename,label,
    PNGs beside it). A file without labels (either format's test.csv) cannot
    train: DataError.
    """
    p = _require_file(path)
    if p.suffix == ".npz":
        return load_npz_digits(p)[0]
    with open(p, newline="") as f:
        header = _csv_header(p, f)
    if header[:1] == ["filename"]:
        x, y = load_analytics_vidhya(p)
    elif header[:1] in (["label"], ["pixel0"]):
        x, y = load_kaggle_csv(p)
    else:
        raise DataError(
            f"{p}: header starts {','.join(header[:3])!r}; expected a Kaggle Digit Recognizer "
            "CSV (label,pixel0,…) or an Analytics Vidhya CSV (filename,label)"
        )
    if y is None:
        raise DataError(f"{p} has no labels (a test.csv?): training needs the train.csv with labels")
    return x, y


def png_to_grey(img: Image.Image) -> np.ndarray:
    """Any PNG mode → (28, 28) uint8 white on black.

    Ink may be in the colours (white on black, or on transparent) or only in the
    alpha channel (black strokes on transparent): composite over black, and use
    alpha alone when the colours leave nothing.
    """
    rgba = np.asarray(img.convert("RGBA"), dtype=np.uint16)  # (28, 28, 4)
    alpha = rgba[..., 3]
    grey = (rgba[..., :3].max(axis=2) * alpha + 127) // 255
    if not grey.any() and img.has_transparency_data:
        grey = alpha
    return grey.astype(np.uint8)


def _read_png(png: Path, where: str) -> np.ndarray:
    """One 28x28 PNG → (28, 28) uint8; `where` says which CSV line listed it."""
    try:
        with Image.open(png) as img:
            if img.size != (SIDE, SIDE):
                raise DataError(f"{png} is {img.width}x{img.height} pixels, expected 28x28 ({where})")
            return png_to_grey(img)
    except FileNotFoundError:
        raise DataNotFoundError(
            f"{png} not found ({where}). Put the PNGs in {png.parent} or pass images_dir."
        ) from None
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{png} is not a readable image ({type(err).__name__}: {err}; {where})") from err


def load_analytics_vidhya(
    csv_path: str | os.PathLike, images_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Analytics Vidhya layout → (x, y): a CSV `filename,label` plus a folder of PNGs.

    `y` is None for test.csv (only `filename`). Without `images_dir`, the PNGs are
    in the first of <csv dir>/Images/<csv name> (Images/test for test.csv),
    Images/train, Images, or <csv dir> itself that holds the first listed file.
    """
    p = _require_file(csv_path)
    with open(p, newline="") as f:
        header = _csv_header(p, f)
        if header not in (["filename", "label"], ["filename"]):
            raise DataError(
                f"{p}: header is {','.join(header)!r}; expected 'filename,label' (train) or 'filename' (test)"
            )
        # (line number, fields), the header being line 1
        rows = [(line, row) for line, row in enumerate(csv.reader(f), start=2) if row]
    if not rows:
        raise DataError(f"{p} has a header but no rows; expected one file name per line")
    for line, row in rows:
        if len(row) != len(header):
            raise DataError(f"{p} line {line} has {len(row)} values, expected {len(header)}")

    y = None
    if len(header) == 2:  # labels first: a typo should not wait for 49000 PNGs
        y = np.empty(len(rows), np.int64)
        for i, (line, row) in enumerate(rows):
            try:
                y[i] = int(row[1])
            except (ValueError, OverflowError):  # not a number / beyond int64
                raise DataError(f"{p} line {line}: label {row[1]!r} is not a whole number 0-9") from None

    if images_dir is not None:
        folder = Path(images_dir).expanduser().absolute()
    else:
        here = p.parent
        options = list(
            dict.fromkeys(  # ordered, without repeats (for train.csv)
                [here / "Images" / p.stem, here / "Images" / "train", here / "Images", here]
            )
        )
        line, row = rows[0]
        found = [d for d in options if (d / row[0]).is_file()]
        if not found:
            raise DataNotFoundError(
                f"{row[0]} ({p.name} line {line}) not found in any of: "
                f"{', '.join(map(str, options))}. Put the PNGs in {options[0]} "
                "or pass images_dir."
            )
        folder = found[0]

    x = np.empty((len(rows), SIDE, SIDE), np.uint8)  # (N, 28, 28) white on black
    for i, (line, row) in enumerate(rows):
        x[i] = _read_png(folder / row[0], f"{p.name} line {line}")
    return check_digits(x, y, str(p), first_line=2)


# ---------------------------------------------------------------- pen strokes

PEN_MAX_FILE_BYTES = 64 * 2**20  # the real file is 2.3 MB gzipped
PEN_MAX_JSON_BYTES = 256 * 2**20  # ... and 7.7 MB of JSON: a gzip bomb stops here, not in memory
PEN_MAX_DIGITS = 200_000
PEN_MAX_POINTS = 10_000  # per digit; the real file's longest has 453
PEN_BOX = 200.0  # points lie in a 200 x 200 box (20 px margin), y down


@dataclass(frozen=True)
class PenDigit:
    """One digit as a pen wrote it: its strokes in the order written, (K, 2) float64 x, y each."""

    label: int
    writer: str
    strokes: tuple[np.ndarray, ...]


PenPart = Literal["train", "validation", "test"]
# A writer's part, from a hash of their id: the same on every machine, whatever else is in the file.
# The salt was picked among two for the sizes of the parts it gives (UNIPEN's writers wrote 10 to
# 200 digits each), never for any model's score: 29 test writers (1,471 digits), 19 validation
# (1,088), 88 train (7,072).
PEN_SALT = "unipen:"
PEN_SPLIT = {"test": 20, "validation": 35}  # bucket below 20: test, below 35: validation, else train
PEN_SPLIT_RULE = (
    f"by writer: bucket = int(sha256({PEN_SALT!r} + writer id).hexdigest(), 16) % 100; "
    "bucket < 20 → test, < 35 → validation, else train"
)


def pen_part(writer: str) -> PenPart:
    """Which part a writer's digits are in: a writer is never in two."""
    bucket = int(hashlib.sha256((PEN_SALT + writer).encode()).hexdigest(), 16) % 100
    if bucket < PEN_SPLIT["test"]:
        return "test"
    return "validation" if bucket < PEN_SPLIT["validation"] else "train"


def pen_split(digits: list[PenDigit]) -> dict[PenPart, list[PenDigit]]:
    """The digits of the train, validation and test writers, in file order."""
    parts: dict[PenPart, list[PenDigit]] = {"train": [], "validation": [], "test": []}
    for digit in digits:
        parts[pen_part(digit.writer)].append(digit)
    return parts


def _pen_digit(item, where: str) -> PenDigit:
    """One JSON entry → a PenDigit; DataError says what is wrong with it."""
    if not isinstance(item, dict) or not {"label", "writer", "strokes"} <= item.keys():
        raise DataError(f"{where} is not an object with label, writer and strokes")
    label, writer, strokes = item["label"], item["writer"], item["strokes"]
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label <= 9:
        raise DataError(f"{where}: label must be a whole number 0-9, found {label!r}")
    if not isinstance(writer, str) or not writer:
        raise DataError(f"{where}: writer must be a non-empty text id, found {writer!r}")
    if not isinstance(strokes, list) or not strokes:
        raise DataError(f"{where}: strokes must be a non-empty list of strokes")
    arrays = []
    for k, stroke in enumerate(strokes):
        ok = (
            isinstance(stroke, list)
            and 0 < len(stroke) <= PEN_MAX_POINTS
            and all(isinstance(p, list) and len(p) == 2 for p in stroke)
        )
        if ok:
            points = np.array(stroke, dtype=object)
            ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in points.ravel())
        if ok:
            points = points.astype(np.float64)
            ok = bool(np.isfinite(points).all())
        if not ok:
            raise DataError(f"{where}: stroke {k} must be a list of 1 to {PEN_MAX_POINTS:,} [x, y] number pairs")
        arrays.append(points)
    if sum(len(a) for a in arrays) > PEN_MAX_POINTS:
        raise DataError(f"{where} has more than {PEN_MAX_POINTS:,} points")
    return PenDigit(label, writer, tuple(arrays))


def load_pen_digits(path: str | os.PathLike | None = None) -> list[PenDigit]:
    """UNIPEN's pen-stroke digits, found by `find_pen_digits`; DataNotFoundError if absent.

    The file is a gzipped JSON list of {"label", "writer", "strokes": [[[x, y], ...], ...]}
    (../shared/data/README.md). Sizes are bounded before anything is decoded.
    """
    found = find_pen_digits(path)
    if found is None:
        looked = ", ".join(str(p) for p in _pen_defaults())
        raise DataNotFoundError(
            f"UNIPEN pen strokes not found. Put {PEN_FILE} in {config.PROJECT_ROOT / 'data'}/ or set "
            f"UNIPEN_PATH=/path/to/{PEN_FILE} (looked in: {looked})"
        )
    p = _require_file(found)
    fix = f"Point UNIPEN_PATH at a good copy of {PEN_FILE}."
    if p.stat().st_size > PEN_MAX_FILE_BYTES:
        raise DataError(
            f"{p} is {p.stat().st_size / 2**20:.0f} MB; a pen-stroke file is at most "
            f"{PEN_MAX_FILE_BYTES // 2**20} MB. {fix}"
        )
    try:
        with gzip.open(p, "rb") as f:
            text = f.read(PEN_MAX_JSON_BYTES + 1)
        if len(text) > PEN_MAX_JSON_BYTES:
            raise DataError(
                f"{p} unpacks to more than {PEN_MAX_JSON_BYTES // 2**20} MB of JSON; refusing to read it. {fix}"
            )
        items = json.loads(text)
    except (OSError, EOFError, zlib.error) as err:  # not gzip, or cut short
        raise _damaged(p, err, fix) from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{p} is not JSON ({type(err).__name__}: {err}). {fix}") from err
    if not isinstance(items, list) or not items:
        raise DataError(
            f"{p} must hold a non-empty JSON list of digits, found "
            f"{type(items).__name__ if items else 'nothing'}. {fix}"
        )
    if len(items) > PEN_MAX_DIGITS:
        raise DataError(f"{p} holds {len(items):,} digits; at most {PEN_MAX_DIGITS:,} are read. {fix}")
    return [_pen_digit(item, f"{p} digit {i}") for i, item in enumerate(items)]


def pen_digits_sha256(digits: list[PenDigit]) -> str:
    """Identifies a list of pen digits, whatever file they came from."""
    digest = hashlib.sha256()
    for digit in digits:
        digest.update(f"{digit.label}|{digit.writer}|{len(digit.strokes)}".encode())
        for stroke in digit.strokes:
            digest.update(np.ascontiguousarray(stroke).tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- helpers


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..255 → float32 in [0, 1], the zoo models' input."""
    if x.dtype != np.uint8:
        raise ValueError(f"to_float expects uint8 pixels 0-255, received dtype {x.dtype}")
    return x.astype(np.float32) / np.float32(255)  # same shape, float32 in [0, 1]


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks (for training records)."""
    with open(_require_file(path), "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
