"""A class's digits as files: the ``.npz`` and ``.zip`` a Class page exports, read back bounded.

Both are read from bytes a user uploaded, so every size is checked before
anything is unpacked: the file, each array's declared shape, the zip's
unpacked total. Errors are ``data.DataError``s that name the file and say
what was expected. The ``.zip`` is the tutorial's Analytics Vidhya layout,
which ``data.load_analytics_vidhya`` reads from a folder.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile

import numpy as np
from PIL import Image, UnidentifiedImageError

from model_zoo import data

MAX_IMPORT_BYTES = 20_000_000
CSV_NAME = "train.csv"  # the zip's layout is Analytics Vidhya's: train.csv + Images/train/*.png
PNG_FOLDER = "Images/train"


def read(filename: str, content: bytes) -> data.Split:
    """An uploaded ``.npz`` or ``.zip`` → (x, y), checked as every reader's digits are."""
    if len(content) > MAX_IMPORT_BYTES:
        raise data.DataError(
            f"{filename} is {len(content) / 1e6:.1f} MB; at most {MAX_IMPORT_BYTES // 10**6} MB are imported."
        )
    lower = filename.lower()
    if lower.endswith(".npz"):
        return read_npz(filename, content)
    if lower.endswith(".zip"):
        return read_zip(filename, content)
    raise data.DataError(f"{filename} is neither .npz nor .zip: import a file exported from a Class page.")


def write_npz(x, y) -> bytes:
    """A Keras-style ``.npz``: ``x`` (N, 28, 28) uint8 white on black, ``y`` (N,) uint8."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=x, y=y)
    return buffer.getvalue()


def write_zip(x, y) -> bytes:
    """``train.csv`` (filename,label) and ``Images/train/<n>.png`` 28 × 28."""
    buffer = io.BytesIO()
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["filename", "label"])
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number, (image, label) in enumerate(zip(x, y), start=1):
            name = f"{number:05d}.png"
            png = io.BytesIO()
            Image.fromarray(image, "L").save(png, format="PNG")
            archive.writestr(f"{PNG_FOLDER}/{name}", png.getvalue())
            writer.writerow([name, int(label)])
        archive.writestr(CSV_NAME, rows.getvalue())
    return buffer.getvalue()


def read_npz(filename: str, content: bytes) -> data.Split:
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as archive:
            missing = [key for key in ("x", "y") if key not in archive.files]
            if missing:
                raise data.DataError(
                    f"{filename} has no {missing[0]!r} array: expected x (N, 28, 28) and "
                    f"y (N,) (found: {', '.join(archive.files) or 'none'})."
                )
            with zipfile.ZipFile(io.BytesIO(content)) as members:
                for key in ("x", "y"):
                    _check_npy_header(filename, key, members)
            x, y = archive["x"], archive["y"]
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError) as error:
        if isinstance(error, data.DataError):
            raise
        raise data.DataError(f"{filename} is not a readable .npz ({type(error).__name__}).") from None
    return data.check_digits(x, y, filename)


def _check_npy_header(filename: str, key: str, members: zipfile.ZipFile) -> None:
    """Refuse an array whose header declares more than MAX_IMPORT_BYTES, before a byte of it is unpacked.

    A few KB of zeros compress to a header that declares hundreds of MB (docs/facts.md).
    """
    with members.open(f"{key}.npy") as stream:
        version = np.lib.format.read_magic(stream)
        shape, _, dtype = (
            np.lib.format.read_array_header_1_0(stream)
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0(stream)
        )
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_IMPORT_BYTES:
        raise data.DataError(
            f"{filename}: its {key} array is {' × '.join(map(str, shape))} {dtype}, "
            f"{size / 1e6:,.0f} MB unpacked; at most {MAX_IMPORT_BYTES // 10**6} MB are "
            "imported. Split it, or import the class's own export."
        )


def read_zip(filename: str, content: bytes) -> data.Split:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise data.DataError(f"{filename} is not a readable .zip.") from None
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        if sum(info.file_size for info in members.values()) > MAX_IMPORT_BYTES:
            raise data.DataError(f"{filename} unpacks to more than {MAX_IMPORT_BYTES // 10**6} MB.")
        table = [name for name in members if name.rsplit("/", 1)[-1] == CSV_NAME]
        if not table:
            raise data.DataError(
                f"{filename} has no {CSV_NAME}: expected {CSV_NAME} (filename,label) and the PNGs in {PNG_FOLDER}/."
            )
        try:
            text = archive.read(table[0]).decode("utf-8-sig")
        except (UnicodeDecodeError, zipfile.BadZipFile, OSError) as error:
            raise data.DataError(f"{filename}: {CSV_NAME} cannot be read ({type(error).__name__}).") from None
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or [cell.strip() for cell in rows[0][:2]] != ["filename", "label"]:
            raise data.DataError(f"{filename}: {CSV_NAME} must start with the header filename,label.")
        rows = [row for row in rows[1:] if row]
        if not rows:
            raise data.DataError(f"{filename}: {CSV_NAME} lists no digits.")
        folder = table[0].rsplit("/", 1)[0] + "/" if "/" in table[0] else ""
        x = np.zeros((len(rows), 28, 28), np.uint8)
        y = np.zeros(len(rows), np.int64)
        for i, row in enumerate(rows):
            line = i + 2
            if len(row) < 2:
                raise data.DataError(f"{filename}: {CSV_NAME} line {line} has no label.")
            try:
                y[i] = int(row[1])
            except ValueError:
                raise data.DataError(
                    f"{filename}: {CSV_NAME} line {line}: label {row[1][:10]!r} is not a digit 0–9."
                ) from None
            x[i] = _zip_png(archive, members, folder, row[0], f"{filename}: {CSV_NAME} line {line}")
    return data.check_digits(x, y, filename)


def _zip_png(archive: zipfile.ZipFile, members: dict, folder: str, name: str, where: str) -> np.ndarray:
    path = next((p for p in (f"{folder}{PNG_FOLDER}/{name}", f"{folder}{name}") if p in members), None)
    if path is None:
        raise data.DataError(f"{where}: {name[:60]!r} is not in the zip (expected it in {PNG_FOLDER}/).")
    try:
        with Image.open(io.BytesIO(archive.read(path))) as picture:
            if picture.size != (28, 28):
                raise data.DataError(
                    f"{where}: {name[:60]} is {picture.width} × {picture.height} pixels; expected 28 × 28."
                )
            return data.png_to_grey(picture)
    except (UnidentifiedImageError, OSError, zipfile.BadZipFile) as error:
        raise data.DataError(f"{where}: {name[:60]} is not a readable image ({type(error).__name__}).") from None
