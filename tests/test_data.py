"""Tests for model_zoo.data: where MNIST is found, each reader, each bad file.

Every file is written under tmp_path; the real project data/ folder, the real
home and the network are never touched (PROJECT_ROOT, KERAS_HOME, HOME and the
Keras download are monkeypatched). Only the `real_` tests read the real
MNIST / USPS / UNIPEN, and only when found.
"""

import gzip
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_zoo import config, data
from model_zoo.data import DataError, DataNotFoundError

HEADER_TRAIN = "label," + ",".join(f"pixel{i}" for i in range(784))
HEADER_TEST = ",".join(f"pixel{i}" for i in range(784))


def digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n random (28, 28) uint8 images and labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    return x, (np.arange(n) % 10).astype(np.uint8)


def write_npz(path: Path, n: int = 12, **arrays: np.ndarray) -> Path:
    """A valid Keras-layout npz; keyword arrays replace (or, set to None, drop) keys."""
    (x_train, y_train), (x_test, y_test) = digits(n, 1), digits(n // 2, 2)
    keys = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    keys.update(arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in keys.items() if v is not None})
    return path


def write_csv(path: Path, header: str, rows: list[list[object]]) -> Path:
    lines = [header] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def kaggle_rows(x: np.ndarray, y: np.ndarray | None) -> list[list[int]]:
    flat = x.reshape(len(x), 784).tolist()
    return flat if y is None else [[int(label), *row] for label, row in zip(y, flat)]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No *_PATH variables, an empty project and an empty Keras cache under tmp_path."""
    monkeypatch.delenv("MNIST_PATH", raising=False)
    monkeypatch.delenv("USPS_PATH", raising=False)
    monkeypatch.delenv("UNIPEN_PATH", raising=False)
    (tmp_path / "keras").mkdir()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    root = tmp_path / "work" / "proj"
    root.mkdir(parents=True)
    monkeypatch.setattr(config, "PROJECT_ROOT", root)
    return tmp_path


@pytest.fixture
def offline(monkeypatch):
    """Keras download fails as it does without network (a plain Exception)."""

    def fail():
        raise Exception("URL fetch failure on https://example/mnist.npz: None -- offline")

    monkeypatch.setattr("keras.datasets.mnist.load_data", fail)


# ---------------------------------------------------------------- finding MNIST


def test_error_types():
    assert issubclass(DataError, ValueError)
    assert issubclass(DataNotFoundError, DataError)
    assert issubclass(DataNotFoundError, FileNotFoundError)
    assert config.PROJECT_ROOT == Path(data.__file__).resolve().parents[1]


def test_find_mnist_order(isolated, monkeypatch):
    """Argument > MNIST_PATH > data/mnist.npz > Keras cache: each wins over the rest."""
    arg = write_npz(isolated / "arg" / "mnist.npz")
    env = write_npz(isolated / "env" / "mnist.npz")
    project = write_npz(config.PROJECT_ROOT / "data" / "mnist.npz")
    cache = write_npz(isolated / "keras" / "datasets" / "mnist.npz")
    monkeypatch.setenv("MNIST_PATH", str(env))

    assert data.find_mnist(arg) == arg
    assert data.find_mnist(str(arg)) == arg
    assert data.find_mnist() == env
    monkeypatch.delenv("MNIST_PATH")
    assert data.find_mnist() == project
    project.unlink()
    assert data.find_mnist() == cache


def test_find_mnist_empty_env_is_unset(isolated, monkeypatch):
    project = write_npz(config.PROJECT_ROOT / "data" / "mnist.npz")
    monkeypatch.setenv("MNIST_PATH", "")
    assert data.find_mnist() == project


def test_find_mnist_default_keras_home(isolated, monkeypatch):
    """Without KERAS_HOME the cache is ~/.keras/datasets."""
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(isolated / "home"))
    cache = write_npz(isolated / "home" / ".keras" / "datasets" / "mnist.npz")
    assert data.find_mnist() == cache


@pytest.mark.parametrize("via", ["argument", "MNIST_PATH"])
def test_find_mnist_missing_explicit_path_is_an_error(isolated, monkeypatch, via):
    """A named file that is missing must not fall through to data/mnist.npz."""
    write_npz(config.PROJECT_ROOT / "data" / "mnist.npz")
    missing = isolated / "typo" / "mnist.npz"
    if via == "argument":
        with pytest.raises(DataNotFoundError, match=re.escape(str(missing))):
            data.find_mnist(missing)
    else:
        monkeypatch.setenv("MNIST_PATH", str(missing))
        with pytest.raises(DataNotFoundError, match=f"MNIST_PATH={re.escape(str(missing))}"):
            data.find_mnist()


def test_find_mnist_nothing_found(isolated, offline):
    with pytest.raises(DataNotFoundError, match="MNIST not found") as info:
        data.find_mnist()
    message = str(info.value)
    assert "MNIST_PATH" in message
    assert str(config.PROJECT_ROOT / "data") in message
    assert str(isolated / "keras" / "datasets" / "mnist.npz") in message
    assert "offline" in message  # the download's own reason is kept
    assert isinstance(info.value, FileNotFoundError)


def test_find_mnist_downloads_into_keras_cache(isolated, monkeypatch):
    cache = isolated / "keras" / "datasets" / "mnist.npz"
    monkeypatch.setattr("keras.datasets.mnist.load_data", lambda: write_npz(cache))
    assert data.find_mnist() == cache


def test_load_mnist_uses_find_order(isolated, monkeypatch):
    path = write_npz(isolated / "env" / "mnist.npz")
    monkeypatch.setenv("MNIST_PATH", str(path))
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    with np.load(path) as f:
        np.testing.assert_array_equal(x_train, f["x_train"])
        np.testing.assert_array_equal(y_test, f["y_test"])


# ---------------------------------------------------------------- finding USPS


def test_find_usps_order(isolated, monkeypatch):
    """Argument > USPS_PATH > data/usps.npz > None: nowhere else, not even beside the project."""
    assert data.find_usps() is None
    arg = write_npz(isolated / "arg" / "usps.npz")
    env = write_npz(isolated / "env" / "usps.npz")
    project = write_npz(config.PROJECT_ROOT / "data" / "usps.npz")
    monkeypatch.setenv("USPS_PATH", str(env))

    assert data.find_usps(arg) == arg
    assert data.find_usps() == env
    monkeypatch.delenv("USPS_PATH")
    assert data.find_usps() == project
    assert data.load_usps()[0][0].shape == (12, 28, 28)
    project.unlink()
    assert data.find_usps() is None


def test_usps_missing(isolated, monkeypatch):
    with pytest.raises(DataNotFoundError, match="USPS not found.*USPS_PATH"):
        data.load_usps()
    monkeypatch.setenv("USPS_PATH", str(isolated / "typo.npz"))
    with pytest.raises(DataNotFoundError, match="USPS_PATH=.*typo.npz"):
        data.find_usps()


# ---------------------------------------------------------------- UNIPEN's pen strokes


def pen_item(label=3, writer="aga/someone", strokes=None) -> dict:
    return {"label": label, "writer": writer, "strokes": strokes or [[[20.0, 20.0], [60, 90.5], [30, 180]]]}


def write_pen(path: Path, items) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        json.dump(items, f)
    return path


def test_find_pen_digits_order(isolated, monkeypatch):
    """Argument > UNIPEN_PATH > data/ > ../shared/data/ beside the project > None."""
    assert data.find_pen_digits() is None and not data.pen_digits_available()
    arg = write_pen(isolated / "arg" / "unipen_pen.json.gz", [pen_item()])
    env = write_pen(isolated / "env" / "unipen_pen.json.gz", [pen_item()])
    shared = write_pen(config.PROJECT_ROOT.parent / "shared" / "data" / "unipen_pen.json.gz", [pen_item(4)])
    project = write_pen(config.PROJECT_ROOT / "data" / "unipen_pen.json.gz", [pen_item(5)])
    monkeypatch.setenv("UNIPEN_PATH", str(env))
    assert data.find_pen_digits(arg) == arg
    assert data.find_pen_digits() == env
    monkeypatch.delenv("UNIPEN_PATH")
    assert data.find_pen_digits() == project
    project.unlink()
    assert data.find_pen_digits() == shared
    assert [d.label for d in data.load_pen_digits()] == [4] and data.pen_digits_available()


def test_pen_digits_missing(isolated, monkeypatch):
    with pytest.raises(DataNotFoundError, match="UNIPEN pen strokes not found.*UNIPEN_PATH=.*unipen_pen.json.gz"):
        data.load_pen_digits()
    monkeypatch.setenv("UNIPEN_PATH", str(isolated / "typo.json.gz"))
    with pytest.raises(DataNotFoundError, match="UNIPEN_PATH=.*typo.json.gz"):
        data.load_pen_digits()
    assert not data.pen_digits_available()


def test_pen_digits_read_back(tmp_path):
    items = [pen_item(7, "w/1", [[[20, 20], [180, 20]], [[100, 20], [100, 180]]]), pen_item(0, "w/2")]
    digits = data.load_pen_digits(write_pen(tmp_path / "p.json.gz", items))
    assert [(d.label, d.writer, len(d.strokes)) for d in digits] == [(7, "w/1", 2), (0, "w/2", 1)]
    assert digits[0].strokes[1].dtype == np.float64 and digits[0].strokes[1].tolist() == [[100, 20], [100, 180]]


@pytest.mark.parametrize(
    "item, message",
    [
        ("3", "digit 1 is not an object with label, writer and strokes"),
        ({"label": 3, "writer": "w"}, "digit 1 is not an object with label, writer and strokes"),
        (pen_item(label=10), "digit 1: label must be a whole number 0-9, found 10"),
        (pen_item(label=True), "digit 1: label must be a whole number 0-9, found True"),
        (pen_item(label=2.5), "digit 1: label must be a whole number 0-9, found 2.5"),
        (pen_item(writer=""), "digit 1: writer must be a non-empty text id"),
        (pen_item(writer=None), "digit 1: writer must be a non-empty text id"),
        ({"label": 1, "writer": "w", "strokes": []}, "digit 1: strokes must be a non-empty list"),
        (pen_item(strokes=[[]]), "digit 1: stroke 0 must be a list of 1 to 10,000 .x, y. number pairs"),
        (pen_item(strokes=[[[1, 2], [3]]]), "digit 1: stroke 0 must be"),
        (pen_item(strokes=[[[1, 2]], [["1", 2]]]), "digit 1: stroke 1 must be"),
        (pen_item(strokes=[[[1, None]]]), "digit 1: stroke 0 must be"),
        (pen_item(strokes=[[[1, 2]] * 6000] * 2), "digit 1 has more than 10,000 points"),
    ],
)
def test_malformed_pen_digit_is_named(tmp_path, item, message):
    path = write_pen(tmp_path / "p.json.gz", [pen_item(), item])
    with pytest.raises(DataError, match=message):
        data.load_pen_digits(path)


def test_malformed_pen_files(tmp_path):
    not_gzip = tmp_path / "plain.json.gz"
    not_gzip.write_text(json.dumps([pen_item()]))
    with pytest.raises(DataError, match="plain.json.gz is damaged or truncated.*UNIPEN_PATH"):
        data.load_pen_digits(not_gzip)
    whole = gzip.compress(json.dumps([pen_item()] * 50).encode())
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="cut.json.gz is damaged or truncated"):
        data.load_pen_digits(cut)
    bad_json = tmp_path / "bad.json.gz"
    bad_json.write_bytes(gzip.compress(b'[{"label": 3,'))
    with pytest.raises(DataError, match="bad.json.gz is not JSON"):
        data.load_pen_digits(bad_json)
    for value, found in (({"label": 3}, "dict"), ([], "nothing")):
        with pytest.raises(DataError, match=f"must hold a non-empty JSON list of digits, found {found}"):
            data.load_pen_digits(write_pen(tmp_path / f"{found}.json.gz", value))
    with pytest.raises(DataNotFoundError, match="UNIPEN file not found.*an existing unipen_pen.json.gz"):
        data.load_pen_digits(tmp_path)  # a folder


def test_pen_file_size_is_bounded_before_decoding(tmp_path, monkeypatch):
    """A small gzip that unpacks to far more is refused after reading only the allowed bytes."""
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b"[" + b" " * 3_000_000 + b"]"))
    assert bomb.stat().st_size < 10_000
    monkeypatch.setattr(data, "PEN_MAX_JSON_BYTES", 1_000_000)
    with pytest.raises(DataError, match="unpacks to more than 0 MB of JSON; refusing"):
        data.load_pen_digits(bomb)
    monkeypatch.setattr(data, "PEN_MAX_FILE_BYTES", 100)
    with pytest.raises(DataError, match="a pen-stroke file is at most 0 MB"):
        data.load_pen_digits(bomb)


def test_pen_split_keeps_each_writer_in_one_part():
    writers = [f"lab{i % 7}/writer{i}" for i in range(500)]
    digits = [data.PenDigit(i % 10, writer, (np.zeros((1, 2)),)) for i, writer in enumerate(writers * 3)]
    parts = data.pen_split(digits)
    assert sum(len(p) for p in parts.values()) == len(digits)
    seen = {name: {d.writer for d in part} for name, part in parts.items()}
    assert not (seen["train"] & seen["validation"] or seen["train"] & seen["test"] or seen["validation"] & seen["test"])
    assert all(data.pen_part(d.writer) == name for name, part in parts.items() for d in part)
    # The parts' shares of writers follow the rule: a fifth for test, 15 % for validation.
    assert 0.15 < len(seen["test"]) / 500 < 0.25 and 0.10 < len(seen["validation"]) / 500 < 0.20


# ---------------------------------------------------------------- real data sets


def test_real_mnist(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8
    for y in (y_train, y_test):
        assert set(np.unique(y)) == set(range(10))


def test_real_pen_digits_split_by_writer(pen_digits):
    assert len(pen_digits) == 9_631 and len({d.writer for d in pen_digits}) == 136
    assert {d.label for d in pen_digits} == set(range(10))
    every = np.concatenate([s for d in pen_digits for s in d.strokes])
    assert every.min() >= 0 and every.max() <= data.PEN_BOX
    parts = data.pen_split(pen_digits)
    writers = {name: {d.writer for d in part} for name, part in parts.items()}
    assert sum(map(len, writers.values())) == 136  # no writer in two parts
    assert 0.15 < len(writers["test"]) / 136 < 0.25  # about a fifth of the writers are the test
    assert all({d.label for d in part} == set(range(10)) for part in parts.values())


def test_real_usps(usps_path):
    (x_train, y_train), (x_test, y_test) = data.load_usps(usps_path)
    assert x_train.shape == (7291, 28, 28) and x_test.shape == (2007, 28, 28)
    assert set(np.unique(y_test)) == set(range(10))


def test_usps_validation_split_holds_out_a_fixed_fifth():
    x = np.arange(100, dtype=np.uint8).repeat(28 * 28).reshape(100, 28, 28)
    y = np.arange(100, dtype=np.uint8) % 10
    (x_train, y_train), (x_val, y_val) = data.usps_validation_split((x, y))
    assert len(x_val) == 20 and len(x_train) == 80
    kept, held = set(x_train[:, 0, 0]), set(x_val[:, 0, 0])
    assert not kept & held and kept | held == set(range(100))  # every digit in exactly one part
    assert list(x_val[:, 0, 0]) == sorted(held) and np.array_equal(y_val, x_val[:, 0, 0] % 10)
    again = data.usps_validation_split((x, y))  # the same fifth every time
    assert np.array_equal(again[1][0], x_val)


# ---------------------------------------------------------------- readers


def test_load_npz_digits_round_trip(tmp_path):
    path = write_npz(tmp_path / "d.npz")
    (x_train, y_train), (x_test, y_test) = data.load_npz_digits(path)
    with np.load(path) as f:
        for key, got in zip(data.NPZ_KEYS, (x_train, y_train, x_test, y_test)):
            np.testing.assert_array_equal(got, f[key])
            assert got.dtype == np.uint8


def test_load_npz_digits_converts_whole_number_floats_and_ints(tmp_path):
    x, y = digits(4)
    path = write_npz(tmp_path / "d.npz", x_test=x.astype(np.float64), y_test=y.astype(np.int64))
    _, (x_test, y_test) = data.load_npz_digits(path)
    assert x_test.dtype == np.uint8 and y_test.dtype == np.uint8
    np.testing.assert_array_equal(x_test, x)
    np.testing.assert_array_equal(y_test, y)


@pytest.mark.parametrize("with_labels", [True, False], ids=["train", "test"])
def test_load_kaggle_csv_round_trip(tmp_path, with_labels):
    x, y = digits(5)
    header = HEADER_TRAIN if with_labels else HEADER_TEST
    path = write_csv(tmp_path / "k.csv", header, kaggle_rows(x, y if with_labels else None))
    got_x, got_y = data.load_kaggle_csv(path)
    assert got_x.dtype == np.uint8 and got_x.shape == (5, 28, 28)
    np.testing.assert_array_equal(got_x, x)
    if with_labels:
        np.testing.assert_array_equal(got_y, y)
        assert got_y.dtype == np.uint8
    else:
        assert got_y is None


def ink(seed: int) -> np.ndarray:
    """A (28, 28) uint8 'digit' with a black background."""
    a = np.zeros((28, 28), np.uint8)
    a[4:24, 10:18] = np.random.default_rng(seed).integers(1, 256, (20, 8), dtype=np.uint8)
    return a


def av_pngs(folder: Path) -> dict[str, np.ndarray]:
    """One PNG in each mode AV readers meet; returns the expected white-on-black pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    grey, rgb, rgba, alpha_only, white_alpha = (ink(i) for i in range(5))
    zeros, full = np.zeros_like(grey), np.full_like(grey, 255)
    images = {
        "0.png": Image.fromarray(grey, "L"),
        "1.png": Image.fromarray(np.dstack([rgb, zeros, zeros]), "RGB"),  # ink in red only
        "2.png": Image.fromarray(np.dstack([rgba, rgba, rgba, full]), "RGBA"),  # opaque
        "3.png": Image.fromarray(np.dstack([zeros, zeros, zeros, alpha_only]), "RGBA"),
        "4.png": Image.fromarray(np.dstack([full, full, full, white_alpha]), "RGBA"),
    }
    for name, image in images.items():
        image.save(folder / name)
    return dict(zip(images, (grey, rgb, rgba, alpha_only, white_alpha)))


@pytest.mark.parametrize(
    "folder, images_dir",
    [("Images/train", None), ("Images", None), (".", None), ("pngs", "pngs")],
    ids=["Images-train", "Images", "csv-dir", "images_dir"],
)
def test_load_analytics_vidhya_round_trip(tmp_path, folder, images_dir):
    expected = av_pngs(tmp_path / folder)
    labels = [7, 0, 9, 3, 5]
    csv_path = write_csv(tmp_path / "train.csv", "filename,label", list(zip(expected, labels)))
    x, y = data.load_analytics_vidhya(csv_path, images_dir and tmp_path / images_dir)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    np.testing.assert_array_equal(x, np.stack(list(expected.values())))
    np.testing.assert_array_equal(y, labels)


def test_load_analytics_vidhya_test_csv(tmp_path):
    """test.csv has no labels; its PNGs default to Images/test."""
    expected = av_pngs(tmp_path / "Images" / "test")
    csv_path = write_csv(tmp_path / "test.csv", "filename", [[name] for name in expected])
    x, y = data.load_analytics_vidhya(csv_path)
    assert y is None
    np.testing.assert_array_equal(x, np.stack(list(expected.values())))


# ---------------------------------------------------------------- bad npz files

y_ok = digits(6)[1]  # write_npz(n=12) makes 6 test digits
BAD_NPZ = {  # case: (arrays replacing x_test / y_test, expected message)
    "shape-32x32": (
        dict(x_test=np.zeros((3, 32, 32), np.uint8), y_test=y_ok[:3]),
        r"images must be 28x28.*found \(3, 32, 32\)",
    ),
    "flat-784": (dict(x_test=np.zeros((6, 784), np.uint8)), r"found \(6, 784\)"),
    "empty": (
        dict(x_test=np.zeros((0, 28, 28), np.uint8), y_test=np.zeros(0, np.uint8)),
        "has no images",
    ),
    "dtype-str": (dict(x_test=np.full((6, 28, 28), "a")), "found dtype <U1"),
    "pixel-300": (dict(x_test=np.full((6, 28, 28), 300, np.int16)), r"0-255, found 300"),
    "pixel-negative": (dict(x_test=np.full((6, 28, 28), -1, np.int16)), r"0-255, found -1"),
    "pixel-nan": (dict(x_test=np.full((6, 28, 28), np.nan)), r"0-255, found nan \(row 0\)"),
    "pixels-0-to-1": (
        dict(x_test=np.full((6, 28, 28), 0.5)),
        r"found 0.5 .*multiplied by 255",
    ),
    "label-12": (
        dict(y_test=np.array([0, 1, 2, 3, 4, 12], np.uint8)),
        r"labels must be 0-9, found 12 \(row 5\)",
    ),
    "label-fraction": (dict(y_test=y_ok + 0.5), r"labels must be 0-9, found 0.5"),
    "label-count": (dict(y_test=y_ok[:5]), r"one label per image.*found labels of shape \(5,\)"),
    "missing-key": (
        dict(y_test=None),
        r"has no 'y_test' array; expected keys x_train, y_train, x_test, y_test",
    ),
}


@pytest.mark.parametrize("arrays, message", BAD_NPZ.values(), ids=BAD_NPZ.keys())
def test_bad_npz_is_rejected(tmp_path, arrays, message):
    path = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as info:
        data.load_npz_digits(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("keep", [0, 100, 0.5, -10], ids=["empty", "100-bytes", "half", "tail"])
def test_truncated_npz_is_rejected(isolated, keep):
    path = write_npz(isolated / "mnist.npz")
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(DataError, match="damaged or truncated") as info:
        data.load_mnist(path)
    assert str(path) in str(info.value)
    assert "MNIST_PATH" in str(info.value)  # says what to do


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_corrupt_npz_member_is_rejected(tmp_path, save):
    """A flipped byte inside an array is caught when it is read (CRC or inflate)."""
    path = tmp_path / "d.npz"
    save(path, **dict(zip(data.NPZ_KEYS, (*digits(12, 1), *digits(6, 2)))))
    raw = bytearray(path.read_bytes())
    raw[300] ^= 0xFF  # inside x_train
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"damaged or truncated \((BadZipFile|error)"):
        data.load_npz_digits(path)


def test_npy_instead_of_npz_is_rejected(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, digits(2)[0])
    with pytest.raises(DataError, match=r"single \.npy array"):
        data.load_npz_digits(path)


@pytest.mark.parametrize(
    "reader",
    [data.load_npz_digits, data.load_kaggle_csv, data.load_analytics_vidhya, data.file_sha256],
)
def test_missing_file_is_rejected(tmp_path, reader):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataNotFoundError, match=re.escape(str(missing))):
        reader(missing)


# ---------------------------------------------------------------- bad CSV files


def kaggle_train_with(edit) -> list[list[object]]:
    """Three valid Kaggle train rows (lines 2-4), then `edit(rows)` applied."""
    rows = kaggle_rows(*digits(3))
    edit(rows)
    return rows


BAD_KAGGLE = {  # case: (header, edit on rows, expected message)
    "short-row": (HEADER_TRAIN, lambda r: r[1].pop(), r"line 3 has 784 values, expected 785"),
    "all-rows-short": (
        HEADER_TRAIN,
        lambda r: [row.pop() for row in r],
        r"line 2 has 784 values, expected 785",
    ),
    "not-a-number": (
        HEADER_TRAIN,
        lambda r: r[2].__setitem__(5, "abc"),
        r"line 4 column 6: 'abc' is not a whole number",
    ),
    "pixel-256": (
        HEADER_TRAIN,
        lambda r: r[1].__setitem__(9, 256),
        r"0-255, found 256 \(line 3\)",
    ),
    "label-12": (
        HEADER_TRAIN,
        lambda r: r[0].__setitem__(0, 12),
        r"labels must be 0-9, found 12 \(line 2\)",
    ),
    "bad-header": (
        HEADER_TRAIN.replace("label", "digit"),
        lambda r: None,
        r"expected 'label,pixel0,...,pixel783'",
    ),
    "no-rows": (HEADER_TRAIN, lambda r: r.clear(), "has a header but no rows"),
}


@pytest.mark.parametrize("header, edit, message", BAD_KAGGLE.values(), ids=BAD_KAGGLE.keys())
def test_bad_kaggle_csv_is_rejected(tmp_path, header, edit, message):
    path = write_csv(tmp_path / "train.csv", header, kaggle_train_with(edit))
    with pytest.raises(DataError, match=message) as info:
        data.load_kaggle_csv(path)
    assert str(path) in str(info.value)


def test_empty_kaggle_csv_is_rejected(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("")
    with pytest.raises(DataError, match="is empty"):
        data.load_kaggle_csv(path)


# ---------------------------------------------------------------- bad AV files


def bad_av(tmp_path: Path, case: str) -> Path:
    """An AV train.csv + Images/train with one thing wrong; returns the CSV path."""
    folder = tmp_path / "Images" / "train"
    names = list(av_pngs(folder))
    labels: list[object] = [1, 2, 3, 4, 5]
    if case == "missing-png":
        (folder / names[2]).unlink()
    elif case == "png-32x32":
        Image.new("L", (32, 32)).save(folder / names[1])
    elif case == "not-an-image":
        (folder / names[1]).write_text("not a png")
    elif case == "label-12":
        labels[1] = 12
    elif case == "label-text":
        labels[3] = "four"
    return write_csv(tmp_path / "train.csv", "filename,label", list(zip(names, labels)))


BAD_AV = {  # case: (expected error type, expected message)
    "missing-png": (DataNotFoundError, r"Images/train/2\.png not found \(train\.csv line 4\)"),
    "png-32x32": (DataError, r"1\.png is 32x32 pixels, expected 28x28 \(train\.csv line 3\)"),
    "not-an-image": (DataError, r"1\.png is not a readable image"),
    "label-12": (DataError, r"labels must be 0-9, found 12 \(line 3\)"),
    "label-text": (DataError, r"line 5: label 'four' is not a whole number"),
}


@pytest.mark.parametrize("case", BAD_AV)
def test_bad_analytics_vidhya_is_rejected(tmp_path, case):
    error, message = BAD_AV[case]
    with pytest.raises(error, match=message):
        data.load_analytics_vidhya(bad_av(tmp_path, case))


def test_analytics_vidhya_no_png_folder(tmp_path):
    path = write_csv(tmp_path / "train.csv", "filename,label", [["0.png", 1]])
    message = r"0\.png \(train\.csv line 2\) not found in any of: .*Images/train"
    with pytest.raises(DataNotFoundError, match=message):
        data.load_analytics_vidhya(path)


def test_analytics_vidhya_bad_header_is_rejected(tmp_path):
    path = write_csv(tmp_path / "train.csv", "file,digit", [["0.png", 1]])
    with pytest.raises(DataError, match=r"expected 'filename,label'"):
        data.load_analytics_vidhya(path)


# ---------------------------------------------------------------- helpers


def test_to_float():
    x = np.zeros((2, 28, 28), np.uint8)
    x[0, 3, 4], x[1, 5, 6] = 255, 128
    f = data.to_float(x)
    assert f.dtype == np.float32 and f.shape == (2, 28, 28)
    assert f.min() == 0.0 and f.max() == 1.0
    assert f[1, 5, 6] == np.float32(128 / 255)
    with pytest.raises(ValueError, match="expects uint8.*float32"):
        data.to_float(f)


def test_file_sha256(tmp_path):
    path = tmp_path / "blob.bin"
    blob = os.urandom(3 * 1024 * 1024 + 7)  # several read chunks
    path.write_bytes(blob)
    assert data.file_sha256(path) == hashlib.sha256(blob).hexdigest()
    assert data.file_sha256(str(path)) == hashlib.sha256(blob).hexdigest()


def test_training_csv_reads_either_tutorial_format_and_refuses_unlabelled_ones(tmp_path):
    x, y = digits(5)
    kaggle = write_csv(tmp_path / "kaggle.csv", HEADER_TRAIN, kaggle_rows(x, y))
    np.testing.assert_array_equal(data.load_training_digits(kaggle)[1], y)
    expected = av_pngs(tmp_path / "Images" / "train")
    av = write_csv(tmp_path / "train.csv", "filename,label", list(zip(expected, [1, 2, 3, 4, 5])))
    np.testing.assert_array_equal(data.load_training_digits(av)[0], np.stack(list(expected.values())))
    unlabelled = write_csv(tmp_path / "test.csv", HEADER_TEST, kaggle_rows(x, None))
    with pytest.raises(DataError, match=r"has no labels \(a test\.csv\?\): training needs the train\.csv"):
        data.load_training_digits(unlabelled)
    npz = write_npz(tmp_path / "class.npz")
    with np.load(npz) as archive:
        np.testing.assert_array_equal(data.load_training_digits(npz)[1], archive["y_train"])
    other = write_csv(tmp_path / "other.csv", "a,b", [[1, 2]])
    with pytest.raises(DataError, match="expected a Kaggle Digit Recognizer CSV"):
        data.load_training_digits(other)
