"""Any picture of one digit (canvas RGBA, photo, scan) -> a 28x28 MNIST-style image.

MNIST digits were made by fitting each digit's bounding box into 20x20 pixels
(aspect ratio kept, anti-aliased), then placing it in a 28x28 field so that its
centre of mass is at the centre (LeCun et al.). Models trained on MNIST only
recognise drawings that went through the same recipe, so this module repeats it
for canvas drawings and photos:

1. grey ink intensity (alpha composited, RGB -> luma),
2. polarity (dark ink on light paper is inverted) and background removal
   (a plane fitted to the image border absorbs uneven lighting),
3. noise threshold, then drop specks far from the digit,
4. crop to the ink and even out the stroke width: a pen far thinner or
   thicker than MNIST's writers used (relative to the digit's size) is brought
   back into their range, so a small digit drawn with a fat pen is not a blob
   and a big one drawn with a fine pen is not a faint hairline,
5. fit the longest side into 20 px, place by centre of mass, scale so the
   strongest stroke is 1 (MNIST strokes saturate).
"""

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage

MNIST_SIZE = 28  # side of the model input
DIGIT_BOX = 20  # the digit's longest side inside it, as in MNIST

# Photos are shrunk to this longest side first: a 20 px digit needs no more,
# and it bounds the time spent on a 12-megapixel phone picture.
_WORK_SIZE = 512
# Ink must differ from the background by this much (of full scale) ...
_MIN_CONTRAST = 0.05
# ... and by this many robust noise sigmas, measured on the image border,
# but never more than this: a very noisy border must not hide a real stroke.
_NOISE_SIGMAS = 6.0
_MAX_THRESHOLD = 0.3
# Pixels this fraction of the typical stroke intensity seed the ink; weaker
# pixels count only when connected to a seed (hysteresis), so paper texture
# and shadows do not become ink while anti-aliased stroke edges are kept.
_SEED_FRACTION = 0.25
# Ink blobs this fraction of the largest are digit parts wherever they are;
# smaller ones only when near those parts (the rest are specks).
_PART_FRACTION = 0.1
_NEAR_MARGIN = 0.15  # "near": within this fraction of the digit's size
_MIN_INK_FRACTION = 1e-4  # of the image area; fewer ink pixels is no digit
_MIN_INK_PIXELS = 4
_MIN_SIDE = 8  # a smaller picture cannot hold a recognisable digit
# MNIST's stroke widths once the digit fills the 20 px box: the 10th and 90th
# percentiles over its training digits are 1.8 and 3.4 px (ridge-width
# estimate below). Strokes outside that range are eroded or dilated into it.
_STROKE_RANGE = (1.8, 3.4)
# Below this crop size the pixel grid is too coarse to measure a width (and the
# picture is likely MNIST-sized already): such digits are left as they are.
_MIN_MEASURABLE = 40
# A digit spans at least this many stroke widths (MNIST's: 6 or more); less is a dot or a blob.
_MIN_PEN_WIDTHS = 2.0

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as PIL "L"
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)  # diagonal strokes stay one blob


class NoInkError(ValueError):
    """The image holds no digit: empty canvas, blank paper or only noise."""


def to_mnist(image: np.ndarray | Image.Image) -> np.ndarray:
    """Return `image` as a (28, 28) float32 image in [0, 1], white digit on black.

    `image` is a PIL image or an array shaped (H, W), (H, W, 1), (H, W, 3) or
    (H, W, 4), uint8 (0-255), uint16 or float in [0, 1]. Light ink on dark and
    dark ink on light are both accepted; transparent pixels count as background.
    Raises NoInkError when there is no digit, ValueError for a non-image.
    """
    grey = _grey(image)  # (H, W) float32 in [0, 1]
    received = _describe(image)
    height, width = grey.shape
    if max(height, width) > _WORK_SIZE:
        scale = _WORK_SIZE / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = np.asarray(Image.fromarray(grey).resize(size, Image.BOX))
    ink = _ink(grey, received)  # (h, w) float32 in [0, 1], background 0
    top, bottom, left, right = _bbox(ink > 0)
    digit = ink[top : bottom + 1, left : right + 1]
    mask = digit > 0.5
    width = stroke_width(mask)
    if max(digit.shape) < _MIN_PEN_WIDTHS * width:  # a model would read any round blob as a 0
        raise NoInkError(
            f"No digit found: the ink in the {received} is a dot, about as tall as the pen "
            "is wide. Draw the whole digit, several pen widths tall."
        )
    return _place(_fit_box(_even_out_strokes(digit, mask, width)))


def ink_coverage(rgba: np.ndarray) -> float:
    """The fraction of a canvas (light strokes on dark) that is painted."""
    return float(np.mean(_grey(rgba) > 0.5))


def canvas_has_ink(rgba: np.ndarray | None) -> bool:
    """Cheap check that a canvas image has something drawn on it.

    Accepts None (what the drawable canvas returns before the first stroke).
    A True answer does not promise a digit: `to_mnist` may still raise
    NoInkError for a lone speck.
    """
    if rgba is None:
        return False
    grey = _grey(rgba)
    return bool(grey.max() - grey.min() > _MIN_CONTRAST)


def _grey(image: np.ndarray | Image.Image) -> np.ndarray:
    """Any accepted image -> (H, W) float32 in [0, 1], alpha composited."""
    if isinstance(image, Image.Image):
        image = _pil_to_array(image)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(
            f"Expected an image shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got an array shaped {array.shape}."
        )
    if min(array.shape[:2]) < _MIN_SIDE:
        raise ValueError(
            f"Expected an image at least {_MIN_SIDE}x{_MIN_SIDE} pixels; got an array shaped {array.shape}."
        )
    if _is_opaque_grey_uint8(array):  # every canvas drawing: skip the float RGB maths
        return array[:, :, 0].astype(np.float32) / 255.0  # as _unit_range
    values = _unit_range(array)
    if values.ndim == 2:
        return values
    grey = values[:, :, :3] @ _LUMA
    if values.shape[2] == 3:
        return grey
    alpha = values[:, :, 3]
    # Composite over the colour the strokes are not: white strokes on a
    # transparent canvas go over black, a black digit on a transparent PNG over
    # white (then it is inverted like any dark-on-light picture).
    weight = float(alpha.sum())
    visible = float((grey * alpha).sum()) / weight if weight else 1.0
    backdrop = 0.0 if visible >= 0.5 else 1.0
    return (grey * alpha + backdrop * (1.0 - alpha)).astype(np.float32)


def _is_opaque_grey_uint8(array: np.ndarray) -> bool:
    """An RGBA array with red = green = blue and no transparency: its grey is its red channel."""
    if (
        array.dtype != np.uint8
        or array.ndim != 3
        or array.shape[2] != 4
        or not array.flags.c_contiguous
        or not np.little_endian
    ):
        return False
    pixels = array.view(np.uint32)  # R | G << 8 | B << 16 | A << 24: one compare per pixel, not four
    return bool((pixels == (pixels & 0xFF) * 0x010101 + 0xFF000000).all())


def _pil_to_array(image: Image.Image) -> np.ndarray:
    image = ImageOps.exif_transpose(image)  # phone photos are stored rotated
    if image.mode.startswith("I"):  # 16-bit greyscale; PIL's "L" would clip it
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    if image.mode == "F":
        return np.asarray(image)
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    image = image.convert("RGBA" if has_alpha else "L")
    factor = max(image.size) // _WORK_SIZE
    if factor > 1:  # a phone photo: box-average in C before any float work
        image = image.reduce(factor)
    return np.asarray(image)


def _unit_range(array: np.ndarray) -> np.ndarray:
    """Pixel values -> float32 in [0, 1], or a ValueError naming the problem."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype == bool:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"Expected uint8 (0-255), uint16 or float pixels in [0, 1]; got dtype {array.dtype}.")
    low, high = float(np.min(array)), float(np.max(array))
    if not (np.isfinite(low) and np.isfinite(high)) or low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(
            f"Expected float pixels in [0, 1]; got values from {low} to {high} (divide 0-255 images by 255)."
        )
    return np.clip(array, 0.0, 1.0).astype(np.float32)


def _ink(grey: np.ndarray, received: str) -> np.ndarray:
    """(H, W) grey -> ink intensity, 0 off the digit, ~1 in its strokes.

    Only the box around every pixel that stands out is returned (and worked
    on): a digit is a small part of a canvas.
    """
    plane, noise = _background(grey)
    ink = grey - plane  # > 0 lighter than the paper, < 0 darker
    # The ink lies on the side of the paper with the larger excursion (a dimly
    # lit white page is still dark ink on light paper); 2x2 means keep lone
    # noisy pixels from deciding.
    pooled = ink[:-1:2, :-1:2] + ink[1::2, :-1:2] + ink[:-1:2, 1::2] + ink[1::2, 1::2]
    if -pooled.min() > pooled.max():
        ink = -ink

    weak = min(max(_NOISE_SIGMAS * noise, _MIN_CONTRAST), _MAX_THRESHOLD)
    stands_out = ink > weak
    if not stands_out.any():
        raise _no_ink(received, "nothing stands out from the background")
    top, bottom, left, right = _bbox(stands_out)
    ink, stands_out = ink[top : bottom + 1, left : right + 1], stands_out[top : bottom + 1, left : right + 1]
    peak = float(np.percentile(ink[stands_out], 90))  # typical stroke, not one hot pixel
    strong = max(weak, _SEED_FRACTION * peak)
    keep = _digit_pixels(stands_out, ink > strong, max(_MIN_INK_PIXELS, _MIN_INK_FRACTION * grey.size))
    if keep is None:
        raise _no_ink(received, "only specks stand out from the background")
    return np.where(keep, np.clip((ink - weak) / max(peak - weak, 1e-6), 0.0, 1.0), 0.0)


def _background(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """Paper level as a plane fitted to the image border (uneven lighting), and noise sigma.

    The plane is (H, W), or (1, 1) when the border is one flat level.
    """
    height, width = grey.shape
    frame = max(1, min(height, width) // 50)
    row_of = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None] / height, grey.shape)
    col_of = np.broadcast_to(np.arange(width, dtype=np.float32)[None, :] / width, grey.shape)
    inner = np.s_[frame:-frame]
    strips = (np.s_[:frame], np.s_[-frame:], (inner, np.s_[:frame]), (inner, np.s_[-frame:]))
    rows, cols, values = (
        np.concatenate([a[s].ravel() for s in strips]).astype(np.float64) for a in (row_of, col_of, grey)
    )
    if values.min() == values.max():  # an untouched border (every canvas drawing): the paper is flat
        return np.full((1, 1), values[0], np.float32), 0.0
    design = np.column_stack([np.ones_like(rows), rows, cols])
    # Start from the border's median, not a fit to all of it: a bold digit
    # touching two edges would tilt the first plane towards its corner.
    spread = np.abs(values - np.median(values))
    inliers = spread <= max(3 * 1.4826 * float(np.median(spread)), 1e-3)
    for _ in range(2):  # refit without ink that touches the border
        coef = np.linalg.lstsq(design[inliers], values[inliers], rcond=None)[0]
        residual = values - design @ coef
        mad = float(np.median(np.abs(residual[inliers])))
        inliers = np.abs(residual) <= max(3 * 1.4826 * mad, 1e-3)
    noise = 1.4826 * float(np.median(np.abs(residual[inliers])))
    plane = coef[0] + coef[1] * row_of[:, :1] + coef[2] * col_of[:1, :]  # (H, W)
    return plane.astype(np.float32), noise


def _digit_pixels(weak: np.ndarray, strong: np.ndarray, min_size: float) -> np.ndarray | None:
    """Pixels of the blobs that form the digit, or None if only specks are found.

    Blobs are 8-connected regions of `weak`; a blob's size is its count of
    `strong` pixels. Big blobs are digit parts; small ones are kept only near
    them. Without a blob of `min_size` there is no digit.
    """
    labels, count = ndimage.label(weak, structure=_EIGHT_CONNECTED)
    sizes = np.bincount(labels[strong], minlength=count + 1)
    sizes[0] = 0  # label 0 is the background
    if sizes.max() < min_size:
        return None
    part = sizes >= _PART_FRACTION * sizes.max()
    small = (sizes > 0) & ~part
    if not small.any():
        return part[labels]
    top, bottom, left, right = _bbox(part[labels])
    margin = _NEAR_MARGIN * max(bottom - top, right - left) + 1
    r, c = np.nonzero(strong)  # centres of the blobs, from their strong pixels
    centre_r = np.bincount(labels[r, c], weights=r, minlength=count + 1) / np.maximum(sizes, 1)
    centre_c = np.bincount(labels[r, c], weights=c, minlength=count + 1) / np.maximum(sizes, 1)
    near = (
        small
        & (centre_r >= top - margin)
        & (centre_r <= bottom + margin)
        & (centre_c >= left - margin)
        & (centre_c <= right + margin)
    )
    return (part | near)[labels]


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Top, bottom, left, right (inclusive) of the True pixels."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width in pixels of a binary image (0 if it has no ink).

    The distance to the background peaks along the middle of each stroke at
    half its width; the median over those ridge pixels ignores blobs at joins.
    """
    # Padded: beyond a tight crop's edge is background too (else a bar that fills its crop has no width).
    inside = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    ridge = mask & (inside >= ndimage.maximum_filter(inside, 3))
    if not ridge.any():
        return 0.0
    # A stroke w pixels wide peaks at about (w + 1) / 2 (distances are to pixel centres).
    return 2.0 * float(np.median(inside[ridge])) - 1.0


def _even_out_strokes(digit: np.ndarray, mask: np.ndarray, width: float) -> np.ndarray:
    """Erode or dilate the cropped ink so its strokes end up MNIST-thick in the 20 px box.

    ``mask`` is ``digit > 0.5`` and ``width`` its stroke width. The change is
    a distance threshold: uniform pen strokes keep their shape, only their
    width changes (and the crop with it, which the solution for ``grow``
    accounts for).
    """
    longest = max(digit.shape)
    if longest < _MIN_MEASURABLE:
        return digit
    low, high = (w / DIGIT_BOX for w in _STROKE_RANGE)  # as fractions of the digit's size
    if width > high * longest:  # too thick: shrink by `grow` px all round
        grow = -(width - high * longest) / (2 * (1 - high))
        out = np.clip(ndimage.distance_transform_edt(mask) + grow, 0.0, 1.0)
    elif 0 < width < low * longest:  # too thin
        grow = (low * longest - width) / (2 * (1 - low))
        margin = int(np.ceil(grow)) + 1
        outside = ndimage.distance_transform_edt(~np.pad(mask, margin))
        out = np.clip(grow + 1.0 - outside, 0.0, 1.0)
    else:
        return digit
    if not out.any():  # eroded away: only possible for a speck
        return digit
    top, bottom, left, right = _bbox(out > 0)
    return out[top : bottom + 1, left : right + 1].astype(np.float32)


def _fit_box(digit: np.ndarray) -> np.ndarray:
    """Scale so the longest side is DIGIT_BOX px, keeping the aspect ratio."""
    height, width = digit.shape
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # LANCZOS on the float image: proper area anti-aliasing when shrinking a
    # 280 px stroke, so edges turn grey as in MNIST. It rings a little: clip.
    resized = Image.fromarray(digit.astype(np.float32)).resize(size, Image.LANCZOS)
    return np.clip(np.asarray(resized), 0.0, 1.0)


def _place(digit: np.ndarray) -> np.ndarray:
    """Paste into 28x28 with the centre of mass at (14, 14), strongest pixel 1."""
    height, width = digit.shape
    centre_r, centre_c = ndimage.center_of_mass(digit)
    # Whole-pixel shift as in MNIST, but never push part of the digit outside.
    top = int(np.clip(round(MNIST_SIZE / 2 - centre_r), 0, MNIST_SIZE - height))
    left = int(np.clip(round(MNIST_SIZE / 2 - centre_c), 0, MNIST_SIZE - width))
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)  # (28, 28) white on black
    out[top : top + height, left : left + width] = digit / digit.max()
    return out


def _describe(image: np.ndarray | Image.Image) -> str:
    if isinstance(image, Image.Image):
        return f"{image.width}x{image.height} {image.mode} picture"
    array = np.asarray(image)
    return f"image shaped {array.shape} ({array.dtype})"


def _no_ink(received: str, reason: str) -> NoInkError:
    return NoInkError(
        f"No digit found: the image is empty (or blank); in the {received}"
        f" {reason}. Draw a digit or upload a picture of one."
    )
