"""Unit tests for model_zoo.preprocess: any picture of a digit -> MNIST-style 28x28."""

import re

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from model_zoo.preprocess import DIGIT_BOX, MNIST_SIZE, NoInkError, canvas_has_ink, ink_coverage, stroke_width, to_mnist

# A seven as polylines of (x, y) points in [0, 1].
SEVEN = [[(0.2, 0.15), (0.8, 0.15), (0.45, 0.9)], [(0.35, 0.5), (0.7, 0.5)]]


def draw(strokes, size=(280, 280), box=(0, 0, 280, 280), width=20) -> np.ndarray:
    """White strokes on black, (H, W) uint8, scaled into `box` (left, top, right, bottom)."""
    image = Image.new("L", size, 0)
    pen = ImageDraw.Draw(image)
    left, top, right, bottom = box
    for line in strokes:
        points = [(left + x * (right - left), top + y * (bottom - top)) for x, y in line]
        pen.line(points, fill=255, width=width, joint="curve")
    return np.asarray(image)


def transparent_canvas(ink: np.ndarray) -> np.ndarray:
    """What streamlit-drawable-canvas returns: white strokes, alpha 0 elsewhere."""
    rgba = np.zeros(ink.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = np.where(ink[..., None] > 0, 255, 0)
    rgba[..., 3] = ink
    return rgba


def photo(ink: np.ndarray, seed: int = 0) -> np.ndarray:
    """Dark ink on unevenly lit, noisy cream paper, (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    height, width = ink.shape
    rows, cols = np.mgrid[:height, :width]
    paper = 0.6 + 0.25 * cols / width + 0.1 * rows / height + rng.normal(0, 0.03, ink.shape)
    grey = paper * (1 - 0.8 * ink / 255.0)
    return np.clip(grey[..., None] * [1.0, 0.96, 0.88] * 255, 0, 255).astype(np.uint8)


def bbox_sides(image: np.ndarray, level: float = 0.1) -> tuple[int, int]:
    rows = np.flatnonzero((image > level).any(axis=1))
    cols = np.flatnonzero((image > level).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


SEVEN_INK = draw(SEVEN, box=(60, 40, 220, 240))  # (280, 280) uint8
INPUT_KINDS = {
    "canvas_transparent": lambda: transparent_canvas(SEVEN_INK),
    "canvas_opaque_black": lambda: np.dstack([SEVEN_INK] * 3 + [np.full_like(SEVEN_INK, 255)]),
    "rgb": lambda: np.dstack([SEVEN_INK] * 3),
    "grey_uint8": lambda: SEVEN_INK,
    "grey_float": lambda: SEVEN_INK / 255.0,
    "grey_hw1": lambda: SEVEN_INK[..., None],
    "pil_rgba": lambda: Image.fromarray(transparent_canvas(SEVEN_INK)),
    "pil_grey": lambda: Image.fromarray(SEVEN_INK),
    "pil_black_on_transparent": lambda: Image.fromarray(np.dstack([np.zeros_like(SEVEN_INK)] * 3 + [SEVEN_INK])),
    "photo_dark_on_light": lambda: photo(draw(SEVEN, size=(640, 480), box=(220, 100, 444, 380), width=28)),
}


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_output_is_mnist_shaped(kind):
    out = to_mnist(INPUT_KINDS[kind]())
    assert out.shape == (MNIST_SIZE, MNIST_SIZE)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() == pytest.approx(1.0)
    assert correlation(out, to_mnist(SEVEN_INK)) > 0.9  # every kind sees the same seven


def test_small_stroke_in_a_corner_ends_up_centred():
    ink = draw(SEVEN, size=(400, 300), box=(330, 230, 380, 290), width=6)
    out = to_mnist(transparent_canvas(ink))
    centre = ndimage.center_of_mass(out)
    assert np.allclose(centre, (MNIST_SIZE / 2, MNIST_SIZE / 2), atol=1.0), centre
    assert 18 <= max(bbox_sides(out)) <= DIGIT_BOX


def test_thin_one_keeps_its_aspect_ratio():
    one = draw([[(0.5, 0.1), (0.5, 0.9)]], width=12)  # a bar 12 px wide, ~236 px tall
    height, width = bbox_sides(to_mnist(one))
    assert height >= 18
    assert width <= 4  # not stretched to fill the 20 px box


def test_separate_strokes_are_kept_and_far_specks_dropped():
    body = [[(0.3, 0.1), (0.25, 0.45), (0.6, 0.4), (0.8, 0.6), (0.7, 0.85), (0.3, 0.9)]]
    five = draw(body + [[(0.5, 0.1), (0.85, 0.1)]], box=(60, 40, 200, 200), width=16)
    ticked = five.copy()
    ticked[176:184, 190:198] = 255  # a small mark just beside the digit
    specked = five.copy()
    specked[265:268, 270:273] = 255  # a 3x3 speck in the far corner

    def blobs(image: np.ndarray) -> int:
        return ndimage.label(image > 0.3)[1]

    assert blobs(to_mnist(five)) == 2  # the detached top bar is part of the five
    assert blobs(to_mnist(ticked)) == 3  # small, but near: kept
    assert correlation(to_mnist(specked), to_mnist(five)) > 0.99  # far speck: ignored


def test_dark_on_light_noisy_photo_matches_the_clean_drawing():
    ink = draw(SEVEN, size=(640, 480), box=(100, 60, 300, 420), width=24)
    assert correlation(to_mnist(photo(ink)), to_mnist(ink)) > 0.9


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((280, 280, 4), dtype=np.uint8),  # empty canvas, transparent
        np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)]),
        np.full((480, 640, 3), 255, dtype=np.uint8),  # blank white paper
        np.random.default_rng(0).normal(0.5, 0.05, (300, 300)).clip(0, 1),  # grey noise
        np.random.default_rng(1).integers(110, 150, (200, 200), dtype=np.uint8),
    ],
    ids=["empty_canvas", "opaque_black_canvas", "white_paper", "gaussian_noise", "uniform_noise"],
)
def test_no_digit_raises_no_ink_error(image):
    with pytest.raises(NoInkError, match="No digit found") as error:
        to_mnist(image)
    assert str(image.shape) in str(error.value)
    assert "Draw a digit" in str(error.value)


@pytest.mark.parametrize("shape", [(28,), (5, 5, 2), (1, 28, 28), (28, 28, 3, 1), (0, 28)])
def test_non_image_raises_value_error_naming_the_shape(shape):
    with pytest.raises(ValueError, match=re.escape(f"got an array shaped {shape}")):
        to_mnist(np.zeros(shape, dtype=np.uint8))


def test_float_image_in_0_255_is_rejected():
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        to_mnist(SEVEN_INK.astype(np.float32))


def test_canvas_has_ink():
    assert not canvas_has_ink(None)  # the canvas before its first stroke
    assert not canvas_has_ink(np.zeros((280, 280, 4), dtype=np.uint8))
    assert canvas_has_ink(transparent_canvas(SEVEN_INK))


def test_mnist_digits_are_nearly_fixed_points(mnist):
    digits = mnist[1][0][:200]
    scores = [correlation(to_mnist(x), x) for x in digits]
    # Mostly ~1; a digit whose centre of mass sits on a half pixel moves by one.
    assert np.mean(scores) > 0.9


def test_a_bold_digit_touching_two_canvas_edges_is_still_a_digit():
    # A thick 3 pushed into the bottom-right corner inks much of the border;
    # the paper level must still come from the empty rest of it.
    three = [[(0.1, 0.1), (0.9, 0.15), (0.4, 0.5), (0.95, 0.75), (0.1, 0.98)]]
    ink = draw(three, box=(170, 170, 280, 280), width=40)
    out = to_mnist(transparent_canvas(ink))
    assert out.max() == pytest.approx(1.0) and max(bbox_sides(out)) >= 18


# A zero as a closed polygon of (x, y) points in [0, 1]: its hole is what a fat pen fills in.
ZERO = [[(0.5 + 0.4 * np.sin(t), 0.5 - 0.48 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]]


def width_in_the_box(image: np.ndarray) -> float:
    """Stroke width of a 28x28 output, in its own pixels (measured at 8x for precision)."""
    big = np.asarray(Image.fromarray((image * 255).astype(np.uint8)).resize((224, 224), Image.BILINEAR))
    return stroke_width(big > 127) / 8


@pytest.mark.parametrize("width", [6, 12, 24])
def test_stroke_width_measures_a_drawn_bar(width):
    bar = draw([[(0.5, 0.1), (0.5, 0.9)]], width=width) > 127
    assert stroke_width(bar) == pytest.approx(width, abs=1.5)


def test_fat_pen_on_a_small_digit_is_thinned_and_keeps_its_hole():
    # A 0 about 84 px tall drawn with a 24 px pen: 5.9 px wide strokes in the box, as it was.
    small_fat = to_mnist(draw(ZERO, box=(110, 100, 160, 160), width=24))
    assert width_in_the_box(small_fat) <= 3.6  # MNIST's 90th percentile, 3.4 px, plus rounding
    assert small_fat[13:16, 13:16].max() < 0.2  # the middle is still empty: a 0, not a blob


def test_fine_pen_on_a_big_digit_is_thickened():
    hairline = to_mnist(draw(SEVEN, box=(20, 10, 260, 270), width=3))
    assert width_in_the_box(hairline) >= 1.6  # MNIST's 10th percentile, 1.8 px, minus rounding
    assert correlation(hairline, to_mnist(SEVEN_INK)) > 0.85


def test_a_natural_pen_is_left_alone():
    natural = SEVEN_INK / 255.0  # ~200 px tall, 20 px pen: 2 px in the box
    assert 1.8 <= width_in_the_box(to_mnist(natural)) <= 3.4


def round_pen(points, width) -> np.ndarray:
    """A canvas stroke: a round pen (PIL's own lines have square ends), white on black."""
    image = Image.new("L", (280, 280), 0)
    pen = ImageDraw.Draw(image)
    pen.line(points, fill=255, width=width)
    for x, y in points:
        pen.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)
    return np.asarray(image)


@pytest.mark.parametrize("pen", [6, 12, 22, 50])
def test_a_dot_is_no_digit_at_any_pen_width(pen):
    for dot in ([(140, 140)], [(140, 140), (143, 141)]):  # a click, or a tiny wiggle
        with pytest.raises(NoInkError, match="is a dot|only specks"):
            to_mnist(transparent_canvas(round_pen(dot, pen)))


@pytest.mark.parametrize("pen", [12, 50])
def test_a_short_one_is_still_a_digit(pen):
    """A one drawn small with a fat pen is two or three pen widths tall: not a dot."""
    one = round_pen([(140, 110), (140, 170)], pen)
    assert to_mnist(transparent_canvas(one)).max() == 1.0


def test_ink_coverage_tells_a_painted_square_from_a_digit():
    painted = draw([[(0.0, y / 10), (1.0, y / 10)] for y in range(11)], width=40)
    assert ink_coverage(transparent_canvas(painted)) > 0.9
    assert ink_coverage(transparent_canvas(draw(SEVEN))) < 0.2
