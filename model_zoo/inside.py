"""Inside a model: what each layer makes of one digit, and which pixels decided.

For the Inside page and the Draw page's "why" panel; any zoo model, shipped
or retrained, as names and shapes are read from the model itself.

- Layer outputs come from the NumPy fast path (``FastModel.layer_outputs``):
  one forward pass, the same milliseconds as a prediction.
- Occlusion erases one square of the drawing at a time and sends all the
  erased copies through the fast path in one batch.
- Saliency is integrated gradients, backpropagated through the same replay
  (``FastModel.logit_gradients``): no TensorFlow.

Pictures are (H, W, 3) uint8 RGB arrays, so any UI can show them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from model_zoo.inference import FastModel

# Layers that start a stage, and what a class would call the stage.
_STAGE_KINDS = {"Conv2D": "conv", "MaxPooling2D": "pool", "Dense": "dense"}
# Layers that finish the work of the layer before them (cnn_robust's
# conv → batch norm → relu): a stage shows what comes out after them.
_FOLLOWERS = {"BatchNormalization", "Activation", "Dropout"}

INK = 0.1  # a model-input pixel this bright is ink (MNIST strokes saturate at 1)
PATCH, STRIDE = 8, 4  # occlusion: an 8 px square every 4 px, at most 6 × 6 = 36 erased copies
# Integrated gradients: points on the path from black to the drawing. The maps
# add up to the score change within ~20 % at 64 (ReLU kinks between points are
# missed), ~6 % at 128 for twice the time; at 64 cnn_robust takes ~0.25 s of CPU.
IG_STEPS = 64


@dataclass(frozen=True)
class Stage:
    """One step of a model on one digit: a layer with the layers that finish its work."""

    kind: str  # "conv", "pool" or "dense"
    layers: tuple[str, ...]  # the model's layer names, e.g. ("conv_1_1", "bn_1_1", "relu_1_1")
    output: np.ndarray  # (H, W, C) feature maps, or (units,)

    @property
    def name(self) -> str:
        return " → ".join(self.layers)

    @property
    def shape(self) -> str:
        """The output shape as Keras prints it, N being the batch."""
        return "(N, " + ", ".join(map(str, self.output.shape)) + ")"

    def strongest_first(self) -> np.ndarray:
        """Channel (or unit) indices by mean activation on this digit, strongest first."""
        strength = self.output.mean(axis=(0, 1)) if self.output.ndim == 3 else self.output
        return np.argsort(-strength, kind="stable")


def stages(model: FastModel, image: np.ndarray) -> list[Stage]:
    """The stages of ``model`` on one (28, 28) image, up to (not including) the output layer."""
    outputs = model.layer_outputs(image[np.newaxis])
    found: list[Stage] = []
    for layer, output in zip(model.layers, outputs):
        kind = layer.kind
        if kind in _STAGE_KINDS:
            found.append(Stage(_STAGE_KINDS[kind], (layer.name,), output[0]))
        elif kind in _FOLLOWERS and found:
            last = found[-1]
            found[-1] = Stage(last.kind, last.layers + (layer.name,), output[0])
    return found[:-1]  # the last stage gives the ten probabilities, shown elsewhere


def first_filters(model: FastModel) -> np.ndarray | None:
    """The first convolution's filters, (F, kh, kw) (averaged over input channels), or None."""
    for layer in model.layers:
        if layer.kind == "Conv2D":
            kernel = layer.weights[0]  # (kh, kw, C, F)
            return kernel.mean(axis=2).transpose(2, 0, 1)
    return None


def pixel_templates(model: FastModel) -> tuple[str, np.ndarray] | None:
    """The first Dense layer's name and weights as pictures (units, 28, 28), if it reads the pixels.

    That is an MLP's first hidden layer (after Flatten); a CNN's Dense layers
    read feature maps instead, and give None.
    """
    for layer in model.layers:
        if layer.kind in ("Conv2D", "MaxPooling2D"):
            return None
        if layer.kind == "Dense":
            kernel = layer.weights[0]  # (inputs, units)
            side = math.isqrt(kernel.shape[0])
            if side * side != kernel.shape[0]:
                return None
            return layer.name, kernel.T.reshape(-1, side, side)
    return None


def occlusion(model: FastModel, image: np.ndarray, digits: list[int]) -> np.ndarray:
    """How much erasing each part of the drawing lowers each digit's log-probability: (len(digits), 28, 28).

    A black square (the paper's colour) slides over the image; each pixel gets
    the mean drop over the squares that covered it. Logarithms, because a
    confident model's probability hardly moves from 0.999 when a stroke goes
    (a drop of 1 is e ≈ 2.7 times less likely). Squares with no ink (no pixel
    above ``INK``) are not computed: one small batch through the fast path.
    """
    size = image.shape[0]
    starts = range(0, size - PATCH + 1, STRIDE)
    covered = np.zeros((size, size), np.float32)  # by how many squares, empty ones included
    for r in starts:
        for c in starts:
            covered[r : r + PATCH, c : c + PATCH] += 1
    corners = [(r, c) for r in starts for c in starts if image[r : r + PATCH, c : c + PATCH].max() > INK]
    erased = np.repeat(image[np.newaxis], len(corners) + 1, axis=0)  # the first stays whole
    for i, (r, c) in enumerate(corners, start=1):
        erased[i, r : r + PATCH, c : c + PATCH] = 0
    probabilities = model.predict_batch(erased)[:, digits]  # (1 + squares, len(digits))
    log_p = np.log(np.maximum(probabilities, 1e-30))  # softmax in float32 can round to 0
    drop = np.zeros((len(digits), size, size), np.float32)
    for (r, c), p in zip(corners, log_p[1:]):
        drop[:, r : r + PATCH, c : c + PATCH] += (log_p[0] - p)[:, None, None]
    return drop / covered


class Saliency:
    """Integrated gradients of a model's scores for chosen digits (Sundararajan et al., 2017).

    The score is the logit, the output layer before its softmax: a confident
    model's probability is flat near 1, so its gradient says little, while
    the logit keeps moving. Gradient × input takes the gradient at the drawing
    alone, which only describes a tiny change of ink; integrated gradients
    average it along the way from an empty (black) canvas to the drawing, so
    the map adds up to how much the drawing raised the score above the empty
    canvas's.
    """

    def __init__(self, model: FastModel):
        model.softmax_head()  # ValueError for a model outside the contract
        self._model = model

    def scores(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) → (N, 10) logits."""
        return self._model.logits(images)

    def __call__(self, image: np.ndarray, digits: list[int], steps: int = IG_STEPS) -> np.ndarray:
        """One (28, 28) image → (len(digits), 28, 28) attributions; each map sums to about
        ``scores(image) - scores(black)`` for its digit."""
        alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps  # midpoints of the path
        path = np.tile(alphas[:, None, None] * image, (len(digits), 1, 1))  # (k·steps, 28, 28)
        wanted = np.repeat(digits, steps)  # row i scores digit wanted[i]
        gradients = self._model.logit_gradients(path, wanted)
        return image * gradients.reshape(len(digits), steps, *image.shape).mean(axis=1)


def ranked(probabilities: np.ndarray) -> tuple[int, int]:
    """The predicted digit and the runner-up."""
    first, second = np.argsort(-probabilities, kind="stable")[:2]
    return int(first), int(second)


# ------------------------------------------------------------------ pictures

# Activations: black → purple → orange → pale yellow (like matplotlib's
# "inferno"), so strong activations glow like the white ink on black.
_INFERNO = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float32)
# Weights: blue (negative) ← white → red (positive).
_BLUE_WHITE_RED = np.array([[33, 102, 172], [247, 247, 247], [178, 24, 43]], np.float32)
_RED, _BLUE = np.array([255, 80, 40], np.float32), np.array([60, 140, 255], np.float32)
_GAP = 190  # grey between tiles: stands out from black maps and from white (zero) weights
# Pictures are enlarged here with square pixels (a browser would blur them) to
# about 36 px a tile (``_tile``): big enough to see, small enough to encode fast
# (Streamlit sends each as a PNG on every stroke).


def _colour(values: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Values in [0, 1] → RGB by linear interpolation between anchor colours."""
    position = np.clip(values, 0, 1) * (len(anchors) - 1)
    low = np.minimum(position.astype(int), len(anchors) - 2)
    t = (position - low)[..., None]
    return anchors[low] * (1 - t) + anchors[low + 1] * t


def activation_colours(values: np.ndarray, top: float) -> np.ndarray:
    """Activations (≥ 0 after ReLU) → RGB, 0 black and ``top`` pale yellow."""
    return _colour(values / (top if top > 0 else 1.0), _INFERNO)


def weight_colours(values: np.ndarray, top: float) -> np.ndarray:
    """Weights → RGB, blue for negative, white for 0, red for positive (±``top`` saturates)."""
    return _colour(values / (2 * top if top > 0 else 1.0) + 0.5, _BLUE_WHITE_RED)


def grid(tiles: np.ndarray, columns: int, zoom: tuple[int, int], gap: int = 2) -> np.ndarray:
    """(n, h, w, 3) colour tiles → one picture, ``columns`` tiles a row, each enlarged by ``zoom``."""
    n, h, w, _ = tiles.shape
    tiles = tiles.astype(np.uint8).repeat(zoom[0], axis=1).repeat(zoom[1], axis=2)
    h, w = h * zoom[0], w * zoom[1]
    rows = -(-n // columns)
    picture = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), _GAP, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        picture[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return picture


def _columns(n: int, most: int = 16) -> int:
    """As few rows as possible, no more than ``most`` tiles each, rows evenly filled."""
    return -(-n // -(-n // most))


def _tile(side: int) -> int:
    """Tile size for maps ``side`` px high: enlarged a whole number of times to about 36 px."""
    return side * max(1, round(36 / side))


def maps_picture(stage: Stage) -> np.ndarray:
    """A stage's feature maps, strongest first, on one colour scale (so weak maps look weak)."""
    maps = np.moveaxis(stage.output, -1, 0)[stage.strongest_first()]  # (C, H, W)
    zoom = _tile(maps.shape[1]) // maps.shape[1]
    return grid(activation_colours(maps, float(maps.max())), _columns(len(maps)), (zoom, zoom))


def units_picture(stage: Stage, per_row: int = 50) -> np.ndarray:
    """A dense stage's units in the model's order as a strip (rows of ``per_row``): which fire."""
    units = stage.output
    tiles = activation_colours(units, float(units.max()))[:, None, None, :]
    return grid(tiles, min(per_row, len(units)), (20, 10), gap=1)


def filters_picture(filters: np.ndarray, stage: Stage) -> np.ndarray:
    """Convolution filters (F, kh, kw) blue-white-red on one scale, laid out as ``stage``'s maps
    (its filters' outputs): same order, same tile size, so each filter sits in its map's place."""
    filters = filters[stage.strongest_first()]
    tile = _tile(stage.output.shape[0])
    pixels = np.arange(tile) * filters.shape[1] // tile  # nearest neighbour: square pixels stay square
    colours = weight_colours(filters, float(np.abs(filters).max()))[:, pixels][:, :, pixels]
    return grid(colours, _columns(len(filters)), (1, 1))


def templates_picture(templates: np.ndarray, cell: int = 56) -> np.ndarray:
    """Weight pictures (k, 28, 28), blue-white-red, each on its own scale, in one row."""
    colours = np.stack([weight_colours(t, float(np.abs(t).max())) for t in templates])
    zoom = max(1, round(cell / templates.shape[1]))
    return grid(colours, len(templates), (zoom, zoom), gap=4)


def overlay(image: np.ndarray, values: np.ndarray, zoom: int = 5) -> np.ndarray:
    """The (28, 28) model input, dimmed, with ``values`` painted on: red > 0, blue < 0.

    Each map on its own scale (the largest value paints fully): erasing hardly
    moves a sure model's answer yet moves the runner-up's a lot, and a shared
    scale would leave the first map blank.
    """
    top = float(np.abs(values).max())
    strength = np.clip(np.abs(values) / (top if top > 0 else 1.0), 0, 1)[..., None]
    base = np.repeat(image[..., None] * 150, 3, axis=-1)
    colour = np.where(values[..., None] >= 0, _RED, _BLUE)
    picture = base * (1 - strength) + colour * strength
    return picture.repeat(zoom, axis=0).repeat(zoom, axis=1).astype(np.uint8)
