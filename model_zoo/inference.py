"""Fast prediction: a drawing through every zoo model in a few milliseconds.

``model.predict`` costs ~100 ms a call, and Streamlit's end-of-run Keras reset
throws away TensorFlow's compiled functions after every rerun (docs/facts.md). So
each model's forward pass is replayed in NumPy from its weights: no graph to
trace, nothing a reset can clear, safe to share between sessions and threads.
The equality with ``model.predict`` is checked for every zoo model in tests.
Big batches (a whole test set) go through Keras, which is faster there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Forward = Callable[[np.ndarray], np.ndarray]


class UnsupportedLayerError(TypeError):
    """A layer the NumPy replay does not know; the caller may fall back to Keras."""


def _activation(name: str) -> Forward:
    if name == "linear":
        return lambda x: x
    if name == "relu":
        return lambda x: np.maximum(x, 0.0)
    if name == "softmax":
        def softmax(x):
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        return softmax
    raise UnsupportedLayerError(f"activation {name!r}")


def _dense(layer) -> Forward:
    kernel, *bias = [w.astype(np.float32) for w in layer.get_weights()]
    bias = bias[0] if bias else np.float32(0)
    act = _activation(layer.get_config()["activation"])
    return lambda x: act(x @ kernel + bias)


def _conv2d(layer) -> Forward:
    config = layer.get_config()
    if tuple(config["strides"]) != (1, 1) or tuple(config["dilation_rate"]) != (1, 1):
        raise UnsupportedLayerError(f"{layer.name}: only stride 1, dilation 1")
    kernel, *bias = [w.astype(np.float32) for w in layer.get_weights()]  # (kh, kw, C, F)
    bias = bias[0] if bias else np.float32(0)
    kh, kw, channels, filters = kernel.shape
    flat_kernel = kernel.reshape(kh * kw * channels, filters)
    act = _activation(config["activation"])
    same = config["padding"] == "same"

    def conv(x):  # (N, H, W, C) → (N, H', W', F)
        if same:  # Keras/TF put the odd extra pixel at the bottom/right
            top, left = (kh - 1) // 2, (kw - 1) // 2
            x = np.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
        windows = sliding_window_view(x, (kh, kw), axis=(1, 2))  # (N, H', W', C, kh, kw)
        # Channels last before copying: the copy then moves runs of C floats, ~2× faster.
        windows = windows.transpose(0, 1, 2, 4, 5, 3)
        n, h, w = windows.shape[:3]
        return act(windows.reshape(n, h, w, -1) @ flat_kernel + bias)

    return conv


def _max_pool(layer) -> Forward:
    config = layer.get_config()
    size, strides = tuple(config["pool_size"]), tuple(config["strides"])
    if size != strides or config["padding"] != "valid":
        raise UnsupportedLayerError(f"{layer.name}: only non-overlapping valid pooling")
    ph, pw = size

    def pool(x):
        n, h, w, c = x.shape
        h, w = h // ph * ph, w // pw * pw  # 'valid' drops the remainder
        return x[:, :h, :w].reshape(n, h // ph, ph, w // pw, pw, c).max(axis=(2, 4))

    return pool


def _batch_norm(layer) -> Forward:
    gamma, beta, mean, variance = [w.astype(np.float32) for w in layer.get_weights()]
    scale = gamma / np.sqrt(variance + layer.epsilon)
    shift = beta - mean * scale
    return lambda x: x * scale + shift


def _reshape(layer) -> Forward:
    target = tuple(layer.get_config()["target_shape"])
    return lambda x: x.reshape((len(x),) + target)


_BUILDERS: dict[str, Callable[..., Forward]] = {
    "Dense": _dense,
    "Conv2D": _conv2d,
    "MaxPooling2D": _max_pool,
    "BatchNormalization": _batch_norm,
    "Reshape": _reshape,
    "Flatten": lambda layer: (lambda x: x.reshape(len(x), -1)),
    "Dropout": lambda layer: (lambda x: x),  # inactive at inference
    "Activation": lambda layer: _activation(layer.get_config()["activation"]),
}


def numpy_steps(model: keras.Model) -> list[Forward]:
    """Each of ``model.layers`` as a NumPy function; raises UnsupportedLayerError."""
    steps = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in _BUILDERS:
            raise UnsupportedLayerError(f"{layer.name}: {kind}")
        steps.append(_BUILDERS[kind](layer))
    return steps


def _chain(steps: list[Forward]) -> Forward:
    def forward(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        for step in steps:
            x = step(x)
        return x

    return forward


@dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray  # (10,) softmax
    seconds: float

    @property
    def digit(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())


class FastModel:
    """A loaded zoo model with a fast single-drawing path and a Keras batch path."""

    def __init__(self, model: keras.Model):
        self.model = model
        try:
            self._steps = numpy_steps(model)
            self._forward = _chain(self._steps)
        except UnsupportedLayerError:  # a future layer type: still correct, just slower
            self._steps = None
            self._forward = lambda x: np.asarray(model.predict_on_batch(x))
        self._every_output = None  # the Keras fallback for layer_outputs, built when first needed

    def predict(self, image: np.ndarray) -> Prediction:
        """One (28, 28) image → its probabilities and the time they took."""
        started = time.perf_counter()
        probabilities = self._forward(image[np.newaxis])[0]
        return Prediction(probabilities, time.perf_counter() - started)

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) → (N, 10); many images go through Keras in chunks."""
        if len(images) <= 64:
            return self._forward(images)
        return self.model.predict(np.asarray(images, np.float32), batch_size=1000, verbose=0)

    def layer_outputs(self, images: np.ndarray) -> list[np.ndarray]:
        """(N, 28, 28) → every layer's output, one array per ``model.layers`` entry.

        The same NumPy replay as ``predict``, keeping what each layer gives
        (for the Inside page); through Keras when the replay does not know a layer.
        """
        x = np.asarray(images, np.float32)
        if self._steps is None:
            if self._every_output is None:
                self._every_output = keras.Model(self.model.inputs,
                                                 [layer.output for layer in self.model.layers])
            return [np.asarray(y) for y in self._every_output.predict_on_batch(x)]
        outputs = []
        for step in self._steps:
            x = step(x)
            outputs.append(x)
        return outputs


def predict_all(models: dict[str, FastModel], image: np.ndarray) -> dict[str, Prediction]:
    """Every model's prediction for one (28, 28) image, in the models' order."""
    return {name: model.predict(image) for name, model in models.items()}
