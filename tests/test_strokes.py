"""Unit tests for model_zoo.strokes: real MNIST digits traced and redrawn with the canvas's pen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_zoo import config, data, evaluation, model_files, preprocess, strokes, training

ROOT = Path(__file__).resolve().parents[1]

PER_DIGIT = 100  # test digits of each class traced in the shape tests


def first_of(mnist, digit: int, n: int = PER_DIGIT) -> np.ndarray:
    _, (x_test, y_test) = mnist
    return x_test[np.flatnonzero(y_test == digit)[:n]]


def test_zeros_trace_to_one_closed_loop_and_ones_to_one_open_line(mnist):
    zeros = [strokes.trace(image) for image in first_of(mnist, 0)]
    ones = [strokes.trace(image) for image in first_of(mnist, 1)]
    one_loop = sum(len(s) == 1 and s[0].closed for s in zeros)
    one_line = sum(len(s) == 1 and not s[0].closed for s in ones)
    assert one_loop >= 0.7 * PER_DIGIT, f"only {one_loop} of {PER_DIGIT} zeros are one closed stroke"
    assert one_line >= 0.95 * PER_DIGIT, f"only {one_line} of {PER_DIGIT} ones are one open stroke"


def test_traced_strokes_cover_the_digit(mnist):
    """Every traced point lies on the digit's ink, and the ink is all near some traced point."""
    for image in first_of(mnist, 8, 20):
        points = np.concatenate([s.points for s in strokes.trace(image)])  # (K, 2) x, y
        ink = image > 0.4 * image.max()
        cols, rows = np.clip(np.rint(points).astype(int), 0, 27).T
        assert ink[rows, cols].mean() > 0.95
        ink_rows, ink_cols = np.nonzero(ink)
        gaps = np.hypot(ink_cols[:, None] - points[None, :, 0], ink_rows[:, None] - points[None, :, 1])
        # MNIST's boldest strokes are ~8 px wide; half of an 8's loop left out would be farther.
        assert gaps.min(axis=1).max() < 5


def test_loops_overshoot_close_or_stay_open_as_the_hand_says(mnist):
    zero = next(image for image in first_of(mnist, 0) if [s.closed for s in strokes.trace(image)] == [True])
    exact = strokes.Hand(loop_overshoot=0, loop_gap=0, wobble=0)
    past = strokes.Hand(loop_overshoot=1, loop_lead_in=0, loop_gap=0, tail=(0.15, 0.2), wobble=0)
    gap = strokes.Hand(loop_overshoot=0, loop_gap=1, wobble=0)
    for seed in range(5):
        (closed,), _ = strokes.drawn_strokes(zero, np.random.default_rng(seed), exact)
        (overshot,), _ = strokes.drawn_strokes(zero, np.random.default_rng(seed), past)
        (opened,), _ = strokes.drawn_strokes(zero, np.random.default_rng(seed), gap)
        height = np.ptp(closed[:, 1])
        assert np.linalg.norm(closed[0] - closed[-1]) < 0.01 * height
        # The end runs on past the start: a tail at least 15 % of the height long.
        assert np.linalg.norm(overshot[-1] - overshot[0]) > 0.1 * np.ptp(overshot[:, 1])
        assert np.linalg.norm(opened[-1] - opened[0]) > 0.01 * np.ptp(opened[:, 1])


def test_a_stroke_that_is_only_a_dot_is_drawn_as_a_dot(mnist):
    (x_train, _), _ = mnist
    image = x_train[623]  # its skeleton has a piece less than half a pixel long
    assert min(np.ptp(s.points, axis=0).max() for s in strokes.trace(image)) < 0.5
    for seed in range(10):  # every way of varying the other strokes
        assert strokes.pen_version(image, np.random.default_rng(seed)).max() == 1


def test_drawings_fit_the_canvas_with_a_pen_the_app_offers(mnist):
    rng = np.random.default_rng(0)
    for image in first_of(mnist, 5, 30):
        paths, pen = strokes.drawn_strokes(image, rng)
        points = np.concatenate(paths)
        assert strokes.PEN_RANGE[0] <= pen <= strokes.PEN_RANGE[1]
        assert points.min() >= pen / 2 and points.max() <= strokes.CANVAS - pen / 2
        assert 0.9 * strokes.HAND.height[0] <= np.ptp(points[:, 1]) <= strokes.HAND.height[1] + 1


def test_render_draws_a_round_pen_of_the_given_width_like_the_canvas(mnist):
    (x_train, _), _ = mnist
    big = strokes.Hand(height=(220, 230))  # a small digit's strokes would merge at pen 20
    paths, _ = strokes.drawn_strokes(x_train[1], np.random.default_rng(3), big)
    for pen in (8, 20):
        rgba = strokes.render(paths, pen)
        assert rgba.shape == (280, 280, 4) and rgba.dtype == np.uint8
        assert (rgba[..., 3] == 255).all() and rgba[0, 0, :3].tolist() == [0, 0, 0]
        assert abs(preprocess.stroke_width(rgba[..., 0] > 127) - pen) <= 1.5


def test_pen_versions_are_still_the_same_digits(mnist):
    """The tutorial's cnn never saw a pen stroke: it must still read them as their labels."""
    _, (x_test, y_test) = mnist
    pen = strokes.pen_versions(x_test[:500], cache=False)
    cnn = model_files.load_model(config.TRAINED_DIR / "cnn.keras")
    assert evaluation.accuracy(cnn, pen, y_test[:500]) >= 0.9
    # ... and they are not the scans: the pen redraws every digit.
    assert np.mean(np.abs(data.to_float(pen) - data.to_float(x_test[:500]))) > 0.05


def test_pen_versions_are_reproducible_and_cached_in_blocks(mnist, tmp_path, monkeypatch):
    _, (x_test, _) = mnist
    digits = x_test[:30]
    monkeypatch.setattr(strokes, "BLOCK", 20)
    first = strokes.pen_versions(digits, cache_dir=tmp_path)
    assert first.shape == (30, 28, 28) and first.dtype == np.uint8
    assert len(list(tmp_path.glob("pen-v*.npy"))) == 2  # blocks of 20 and 10
    assert np.array_equal(strokes.pen_versions(digits, cache_dir=tmp_path), first)  # read back
    assert np.array_equal(strokes.pen_versions(digits, cache=False), first)  # rendered again
    # A digit is drawn the same wherever it comes in a set; another seed, another hand.
    assert np.array_equal(strokes.pen_versions(digits[5:8], cache=False), first[5:8])
    assert not np.array_equal(strokes.pen_versions(digits, seed=1, cache=False), first)


def test_european_ones_get_a_flag_from_the_top_and_sometimes_a_foot(mnist):
    """A 1 written with a flag, as much of Europe writes it: the pen starts at the flag's end,
    runs up and left-to-right to the top, then down the stem."""
    ones = [image for image in first_of(mnist, 1, 30) if len(strokes.trace(image)) == 1]
    plain = strokes.Hand(wobble=0, slant=0, turn_deg=0, stretch=0, foot=0)
    footed = strokes.Hand(wobble=0, slant=0, turn_deg=0, stretch=0, foot=1)
    for seed, image in enumerate(ones[:10]):
        (path,), _ = strokes.drawn_strokes(image, np.random.default_rng(seed), plain, european_one=True)
        if path[0, 1] > path[-1, 1]:  # drawn from the stem's foot: the flag's end is higher
            path = path[::-1]
        top = int(np.argmin(path[:, 1]))
        flag, stem = path[: top + 1], path[top:]
        stem_length = np.ptp(stem[:, 1])
        flag_vector = flag[0] - path[top]
        assert flag_vector[0] < 0 and flag_vector[1] > 0, "the flag hangs down and left of the top"
        assert 0.1 * stem_length < np.linalg.norm(flag_vector) < 0.6 * stem_length
        with_foot, _ = strokes.drawn_strokes(image, np.random.default_rng(seed), footed, european_one=True)
        assert len(with_foot) == 2
        foot = with_foot[1]
        assert np.ptp(foot[:, 0]) > 3 * np.ptp(foot[:, 1]), "the foot lies flat"
        assert foot[:, 1].mean() > with_foot[0][:, 1].mean(), "... at the bottom"
    # A digit that is more than one line is left as it was written.
    four = first_of(mnist, 4, 1)[0]
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    assert len(strokes.trace(four)) > 1
    for a, b in zip(strokes.drawn_strokes(four, rng_a, european_one=True)[0], strokes.drawn_strokes(four, rng_b)[0]):
        assert np.array_equal(a, b)


def test_training_adds_the_pen_versions_of_training_and_validation_digits(mnist, tmp_path, monkeypatch):
    monkeypatch.setattr(strokes, "CACHE_DIR", tmp_path)
    settings = training.TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=300, strokes=True)
    result = training.train(settings, mnist=mnist)
    (_, y_train), (_, y_val) = training.split_train_validation(*mnist[0], settings)
    ones_train, ones_val = int((y_train == 1).sum()), int((y_val == 1).sum())
    assert ones_train > 10
    # Each digit's pen version, and each 1 once more with a European flag.
    assert (result.train_digits, result.val_digits) == (2 * 270 + ones_train, 2 * 30 + ones_val)
    assert result.record()["settings"]["strokes"] is True
    assert list(tmp_path.glob("pen-v*.npy")) and list(tmp_path.glob("pen-european-1-v*.npy"))


def test_the_app_and_training_without_strokes_never_import_scikit_image():
    code = (
        "import sys, model_zoo.training, model_zoo.preprocess, model_zoo.inference, model_zoo.store;"
        "sys.exit('skimage' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_without_scikit_image_the_error_says_how_to_install_it(mnist, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage.morphology", None)  # what a missing package raises
    with pytest.raises(ImportError, match=r"pip install -r requirements-dev\.txt"):
        strokes.trace(first_of(mnist, 3, 1)[0])


def test_grid_of_pen_versions_next_to_their_sources(mnist, usps_path):
    """docs/strokes.png: per digit, MNIST and USPS training digits, each beside its canvas drawing
    and what the model sees of it, so a person can judge the renderer; last, 1s with a flag."""
    (x_train, y_train), _ = mnist
    (x_usps, y_usps), _ = data.load_usps(usps_path)
    tile, gap = 84, 6
    rows = []
    for row in range(11):  # 0-9, then 1s with a European flag
        digit = 1 if row == 10 else row
        sources = [*x_train[np.flatnonzero(y_train == digit)[:3]], *x_usps[np.flatnonzero(y_usps == digit)[:2]]]
        cells = []
        for k, source in enumerate(sources):
            rng = np.random.default_rng(100 * row + k)
            paths, pen = strokes.drawn_strokes(source, rng, european_one=row == 10)
            canvas = strokes.render(paths, pen)
            seen = preprocess.to_mnist(canvas)
            triple = [
                np.kron(source, np.ones((3, 3), np.uint8)),
                np.asarray(Image.fromarray(canvas[..., 0]).resize((tile, tile), Image.BOX)),
                np.kron(np.rint(seen * 255).astype(np.uint8), np.ones((3, 3), np.uint8)),
            ]
            cells.append(np.concatenate([np.pad(t, ((0, 0), (0, 2)), constant_values=90) for t in triple], 1))
        rows.append(np.concatenate([np.pad(c, ((gap // 2,) * 2, (0, gap)), constant_values=255) for c in cells], 1))
    grid = np.concatenate(rows, 0)
    assert grid.shape == (11 * (tile + gap), 5 * (3 * (tile + 2) + gap))
    path = ROOT / "docs" / "strokes.png"
    Image.fromarray(grid).save(path)
    assert Image.open(path).size == (grid.shape[1], grid.shape[0])


# ------------------------------------------------------------------ real pen strokes (UNIPEN)


def test_real_pen_strokes_are_drawn_on_the_canvas_as_written(pen_digits):
    digit = pen_digits[0]
    for seed in range(20):
        paths, pen = strokes.on_canvas(list(digit.strokes), np.random.default_rng(seed), strokes.AS_WRITTEN)
        points = np.concatenate(paths)
        assert strokes.PEN_RANGE[0] <= pen <= strokes.PEN_RANGE[1]
        assert points.min() >= pen / 2 and points.max() <= strokes.CANVAS - pen / 2
        # As written: only moved and scaled, the same shape point for point.
        original = np.concatenate(digit.strokes)
        scale = np.ptp(points[:, 1]) / np.ptp(original[:, 1])
        assert np.allclose(points - points[0], (original - original[0]) * scale)


def test_real_pen_digits_render_reproducibly_and_are_read_as_their_labels(pen_digits, tmp_path):
    sample = data.pen_split(pen_digits)["validation"][::10]
    x, y = strokes.pen_digit_images(sample, seed=0)
    assert x.shape == (len(sample), 28, 28) and x.dtype == np.uint8
    assert y.tolist() == [d.label for d in sample]
    # The tutorial's cnn never saw a pen stroke: drawn as written, they must still be these digits.
    cnn = model_files.load_model(config.TRAINED_DIR / "cnn.keras")
    assert evaluation.accuracy(cnn, x, y) >= 0.9
    # A digit is drawn the same wherever it comes in a list; another seed, another hand.
    assert np.array_equal(strokes.pen_digit_images(sample[3:6], seed=0)[0], x[3:6])
    assert not np.array_equal(strokes.pen_digit_images(sample, seed=1)[0], x)
    # Renders for training: each digit several times, each time by another varied hand; cached.
    many, labels = strokes.pen_digit_images(
        sample[:10], seed=0, hand=strokes.PEN_TRAINING_HAND, renders=3, cache=True, cache_dir=tmp_path
    )
    assert many.shape == (30, 28, 28) and labels.tolist() == [d.label for d in sample[:10]] * 3
    assert not np.array_equal(many[:10], many[10:20]) and not np.array_equal(many[:10], x[:10])
    assert len(list(tmp_path.glob("unipen-v*.npy"))) == 1
    again = strokes.pen_digit_images(
        sample[:10], seed=0, hand=strokes.PEN_TRAINING_HAND, renders=3, cache=True, cache_dir=tmp_path
    )
    assert np.array_equal(again[0], many)


def test_training_adds_the_train_writers_pen_digits_and_watches_the_validation_writers(
    mnist, pen_digits, tmp_path, monkeypatch
):
    monkeypatch.setattr(strokes, "CACHE_DIR", tmp_path)
    parts = data.pen_split(pen_digits)
    few = parts["train"][:40] + parts["validation"][:30] + parts["test"][:20]
    settings = training.TrainingSettings.for_architecture("mlp_1x50", epochs=2, train_size=300, unipen=True)
    result = training.train(settings, mnist=mnist, pen=few)
    assert result.train_digits == 270 + training.PEN_RENDERS * 40
    assert len(result.history["pen_val_accuracy"]) == 2
    pen = result.record()["pen_digits"]
    assert (pen["train_digits"], pen["validation_digits"], pen["test_digits"]) == (40, 30, 20)
    assert pen["test_writers_held_out"] == sorted({d.writer for d in parts["test"][:20]})
    assert pen["validation_accuracy"] == result.history["pen_val_accuracy"][-1]
    assert evaluation.trained_on(result.record()["settings"]) == "MNIST + UNIPEN writers"
