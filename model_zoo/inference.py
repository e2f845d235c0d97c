"""Fast prediction without TensorFlow: a model's layers replayed in NumPy, read from its ``.keras`` file.

``model.predict`` costs ~100 ms a call, and importing TensorFlow to load a
model costs seconds and hundreds of MB in the web server. A ``.keras`` file is
a zip of ``config.json`` (the layers) and ``model.weights.h5`` (their weights):
``read_archive`` reads both with ``json`` and ``h5py`` and builds each layer's
forward pass (and its backward pass, for saliency) in NumPy. Only the layer
types the zoo uses are accepted; anything else (a Lambda, a custom or unknown
layer, options the replay does not implement) is refused with the reason, as
Keras's ``safe_mode`` refuses code. Equality with ``keras.models.load_model``
is checked for every architecture in tests.
"""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Forward = Callable[[np.ndarray], np.ndarray]
Backward = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (x, y, dL/dy) → dL/dx

# Bounds checked on the zip's directory before anything is decompressed. The largest model the
# Train page allows (8 × Dense 1024) has ~8.2 M weights, 33 MB of float32.
MAX_CONFIG_BYTES = 2**20
MAX_WEIGHTS_BYTES = 128 * 2**20
MEMBERS = {"config.json", "model.weights.h5", "metadata.json"}
CHUNK = 64  # images per NumPy pass in big batches: cnn_robust's copied windows stay under ~60 MB
CONTAINS_CODE = "it contains code (a Lambda layer), which this app never runs"


class ArchiveError(ValueError):
    """A ``.keras`` file the fast path cannot read: damaged, too big, or not what it says."""


class UnsupportedLayerError(ArchiveError):
    """A layer (or layer option) this app does not run; the message says which and why."""


@dataclass(frozen=True)
class Layer:
    """One layer of a model: what Keras calls it, its shapes (no batch axis) and weights, its replay."""

    name: str
    kind: str  # the Keras class name: "Dense", "Conv2D", ...
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    config: dict = field(repr=False)  # as in config.json
    weights: tuple[np.ndarray, ...] = field(repr=False)
    forward: Forward = field(repr=False)
    backward: Backward = field(repr=False)

    @property
    def params(self) -> int:
        """Every weight, trainable or not (as Keras's ``count_params``)."""
        return sum(w.size for w in self.weights)


# ------------------------------------------------------------------ the layer types

# Each kind: (config, input shape) → output shape and the shapes of its weights, in the order Keras
# saves them; and (config, weights) → (forward, backward). Anything unexpected raises
# UnsupportedLayerError, so a model is refused before a page offers it.


def _activation(name) -> tuple[Forward, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """An activation and its backward (y, dL/dy) → dL/dz."""
    if name == "linear":
        return (lambda z: z), (lambda y, g: g)
    if name == "relu":
        return (lambda z: np.maximum(z, 0.0)), (lambda y, g: g * (y > 0))
    if name == "softmax":

        def softmax(z):
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)

        def no_gradient(y, g):
            raise UnsupportedLayerError("a softmax inside the model: saliency reads logits before the last one")

        return softmax, no_gradient
    raise UnsupportedLayerError(f"activation {name!r} (the zoo uses linear, relu and softmax)")


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise UnsupportedLayerError(what)


def _dense_shapes(config, shape):
    _check(len(shape) == 1, f"a Dense layer on {len(shape)}-d input (the zoo flattens first)")
    _activation(config.get("activation"))
    units = int(config["units"])
    return (units,), [(shape[0], units)] + ([(units,)] if config.get("use_bias", True) else [])


def _dense(config, weights):
    kernel = weights[0]
    bias = weights[1] if len(weights) > 1 else np.float32(0)
    act, act_backward = _activation(config["activation"])
    return (lambda x: act(x @ kernel + bias), lambda x, y, g: act_backward(y, g) @ kernel.T)


def _conv_shapes(config, shape):
    _check(len(shape) == 3, f"a Conv2D layer on {len(shape)}-d input")
    _check(
        tuple(config.get("strides", (1, 1))) == (1, 1)
        and tuple(config.get("dilation_rate", (1, 1))) == (1, 1)
        and config.get("groups", 1) == 1
        and config.get("data_format", "channels_last") == "channels_last"
        and config.get("padding") in ("valid", "same"),
        "a Conv2D other than stride 1, dilation 1, one group, channels last, valid or same padding",
    )
    _activation(config.get("activation"))
    kh, kw = config["kernel_size"]
    filters = int(config["filters"])
    h, w, channels = shape
    if config["padding"] == "valid":
        h, w = h - kh + 1, w - kw + 1
    _check(h > 0 and w > 0, f"a {kh}×{kw} convolution on {shape[0]}×{shape[1]} maps")
    return (h, w, filters), [(kh, kw, channels, filters)] + ([(filters,)] if config.get("use_bias", True) else [])


def _conv2d(config, weights):
    kernel = weights[0]  # (kh, kw, C, F)
    bias = weights[1] if len(weights) > 1 else np.float32(0)
    kh, kw, channels, filters = kernel.shape
    flat_kernel = kernel.reshape(kh * kw * channels, filters)
    act, act_backward = _activation(config["activation"])
    # Keras/TF put the odd extra pixel of 'same' padding at the bottom/right.
    top, left = ((kh - 1) // 2, (kw - 1) // 2) if config["padding"] == "same" else (0, 0)
    bottom, right = (kh - 1 - top, kw - 1 - left) if config["padding"] == "same" else (0, 0)

    def forward(x):  # (N, H, W, C) → (N, H', W', F)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))) if top or bottom or left or right else x
        windows = sliding_window_view(x, (kh, kw), axis=(1, 2))  # (N, H', W', C, kh, kw)
        # Channels last before copying: the copy then moves runs of C floats, ~2× faster.
        windows = windows.transpose(0, 1, 2, 4, 5, 3)
        n, h, w = windows.shape[:3]
        return act(windows.reshape(n, h, w, -1) @ flat_kernel + bias)

    def backward(x, y, g):  # each kernel offset's share of the gradient, added back where it read
        n, h, w, _ = y.shape
        g = act_backward(y, g)
        padded = np.zeros((n, x.shape[1] + top + bottom, x.shape[2] + left + right, channels), np.float32)
        for i in range(kh):
            for j in range(kw):  # one offset at a time: ~2× faster than all windows' shares at once
                padded[:, i : i + h, j : j + w] += g @ kernel[i, j].T
        return padded[:, top : top + x.shape[1], left : left + x.shape[2]]

    return forward, backward


def _pool_shapes(config, shape):
    _check(len(shape) == 3, f"a MaxPooling2D layer on {len(shape)}-d input")
    size = tuple(config["pool_size"])
    strides = tuple(config.get("strides") or size)
    _check(
        size == strides
        and config.get("padding") == "valid"
        and config.get("data_format", "channels_last") == "channels_last",
        "a MaxPooling2D other than non-overlapping, valid, channels last",
    )
    return (shape[0] // size[0], shape[1] // size[1], shape[2]), []


def _max_pool(config, weights):
    ph, pw = config["pool_size"]

    def windows(x):  # (N, H, W, C) → (N, H/ph, W/pw, C, ph·pw); 'valid' drops the remainder
        n, h, w, c = x.shape
        h, w = h // ph * ph, w // pw * pw
        return (
            x[:, :h, :w]
            .reshape(n, h // ph, ph, w // pw, pw, c)
            .transpose(0, 1, 3, 5, 2, 4)
            .reshape(n, h // ph, w // pw, c, ph * pw)
        )

    def backward(x, y, g):  # to the first maximum of each window, as TensorFlow does
        pooled = windows(x)
        first = pooled.argmax(axis=-1)[..., np.newaxis]
        routed = np.zeros_like(pooled)
        np.put_along_axis(routed, first, g[..., np.newaxis], axis=-1)
        n, hp, wp, c, _ = routed.shape
        out = np.zeros_like(x)
        out[:, : hp * ph, : wp * pw] = (
            routed.reshape(n, hp, wp, c, ph, pw).transpose(0, 1, 4, 2, 5, 3).reshape(n, hp * ph, wp * pw, c)
        )
        return out

    def forward(x):  # no copy, unlike windows(): the fast path's pooling
        n, h, w, c = x.shape
        h, w = h // ph * ph, w // pw * pw
        return x[:, :h, :w].reshape(n, h // ph, ph, w // pw, pw, c).max(axis=(2, 4))

    return forward, backward


def _batch_norm_shapes(config, shape):
    _check(config.get("axis", -1) in (-1, len(shape)), "a BatchNormalization over another axis than the last")
    channels = (shape[-1],)
    return shape, [channels] * (config.get("scale", True) + config.get("center", True) + 2)


def _batch_norm(config, weights):
    weights = list(weights)
    gamma = weights.pop(0) if config.get("scale", True) else np.float32(1)
    beta = weights.pop(0) if config.get("center", True) else np.float32(0)
    mean, variance = weights
    scale = (gamma / np.sqrt(variance + np.float32(config["epsilon"]))).astype(np.float32)
    shift = (beta - mean * scale).astype(np.float32)
    return (lambda x: x * scale + shift), (lambda x, y, g: g * scale)


def _reshape_shapes(config, shape):
    target = tuple(config["target_shape"])
    _check(-1 not in target and math.prod(target) == math.prod(shape), f"a Reshape of {shape} into {target}")
    return target, []


def _flatten_shapes(config, shape):
    return (math.prod(shape),), []


def _reshape(config, weights):
    return (lambda x: x.reshape((len(x), *config["target_shape"]))), (lambda x, y, g: g.reshape(x.shape))


def _flatten(config, weights):
    return (lambda x: x.reshape(len(x), -1)), (lambda x, y, g: g.reshape(x.shape))


def _identity(config, weights):  # Dropout: inactive at inference
    return (lambda x: x), (lambda x, y, g: g)


def _activation_layer(config, weights):
    act, act_backward = _activation(config["activation"])
    return act, (lambda x, y, g: act_backward(y, g))


def _same_shape(config, shape):
    if "activation" in config:
        _activation(config["activation"])
    return shape, []


_KINDS = {  # Keras class name → (shapes, replay)
    "Dense": (_dense_shapes, _dense),
    "Conv2D": (_conv_shapes, _conv2d),
    "MaxPooling2D": (_pool_shapes, _max_pool),
    "BatchNormalization": (_batch_norm_shapes, _batch_norm),
    "Reshape": (_reshape_shapes, _reshape),
    "Flatten": (_flatten_shapes, _flatten),
    "Dropout": (_same_shape, _identity),
    "Activation": (_same_shape, _activation_layer),
}


# ------------------------------------------------------------------ reading a .keras file


class LayerPlan(NamedTuple):
    """One layer as the config describes it: the shapes its weights must have."""

    name: str
    kind: str
    config: dict
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight_shapes: list[tuple[int, ...]]


@dataclass(frozen=True)
class Plan:
    """A model's layers as its config describes them, before any weight is read."""

    name: str
    input_shape: tuple[int, ...]
    layers: list[LayerPlan]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape if self.layers else self.input_shape


def plan(config: dict) -> Plan:
    """What a ``config.json`` builds, checked layer by layer; ArchiveError says what is not accepted."""
    if any(node.get("class_name") in ("Lambda", "__lambda__") for node in _dicts_in(config)):
        raise UnsupportedLayerError(CONTAINS_CODE)
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise UnsupportedLayerError(f"it is a {kind} model; the zoo's are Sequential")
    try:
        nodes = list(config["config"]["layers"])
        if not nodes or nodes[0].get("class_name") != "InputLayer":
            raise UnsupportedLayerError("it declares no input (the zoo's models start with keras.Input)")
        input_shape = shape = tuple(int(d) for d in nodes[0]["config"]["batch_shape"][1:])
        layers = []
        for node in nodes[1:]:
            kind, layer_config = node.get("class_name"), node.get("config") or {}
            name = str(layer_config.get("name", kind))
            if kind not in _KINDS or node.get("module") != "keras.layers":
                where = "" if node.get("module") == "keras.layers" else f" from {node.get('module')!r}"
                raise UnsupportedLayerError(
                    f"layer {name!r} is a {kind}{where}, which this app does not run (it runs {', '.join(_KINDS)})"
                )
            try:
                out, weight_shapes = _KINDS[kind][0](layer_config, shape)
            except UnsupportedLayerError as error:
                raise UnsupportedLayerError(f"layer {name!r}: {error}") from None
            layers.append(LayerPlan(name, kind, layer_config, shape, tuple(out), [tuple(s) for s in weight_shapes]))
            shape = tuple(out)
        # HDF5 can compress: the weights file's size does not bound what the config makes us unpack.
        declared = 4 * sum(math.prod(s) for step in layers for s in step.weight_shapes)  # float32 bytes
        if declared > MAX_WEIGHTS_BYTES:
            raise ArchiveError(
                f"its layers declare {declared // 2**20} MB of weights; at most "
                f"{MAX_WEIGHTS_BYTES // 2**20} MB are read"
            )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, ArchiveError):
            raise
        raise ArchiveError(f"its config.json is not a Keras model's ({type(error).__name__}: {error})") from None
    return Plan(str(config["config"].get("name", "model")), input_shape, layers)


def _dicts_in(node):
    """Every dict nested anywhere in a JSON value."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _dicts_in(value)


def _member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ArchiveError(f"it has no {name}") from None
    if info.file_size > limit:
        raise ArchiveError(f"its {name} unpacks to {info.file_size // 2**20} MB; at most {limit // 2**20} MB are read")
    return archive.read(info)


def read_config(path: str | Path) -> dict:
    """The archive's config.json, read without its weights (milliseconds)."""
    with _open(path) as archive:
        return _json(_member(archive, "config.json", MAX_CONFIG_BYTES))


def _open(path) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise ArchiveError(f"it is not a Keras model file ({type(error).__name__})") from None
    unknown = {info.filename for info in archive.infolist()} - MEMBERS
    if unknown:
        archive.close()
        raise ArchiveError(f"it holds files a zoo model has not: {', '.join(sorted(unknown)[:3])}")
    return archive


def _json(content: bytes) -> dict:
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArchiveError(f"its config.json is damaged ({error})") from None


def read_archive(path: str | Path) -> FastModel:
    """A ``.keras`` file → its fast model, without TensorFlow; ArchiveError says why not."""
    import h5py  # only here: the rest of the replay needs NumPy alone

    try:
        with _open(path) as archive:
            model_plan = plan(_json(_member(archive, "config.json", MAX_CONFIG_BYTES)))
            content = _member(archive, "model.weights.h5", MAX_WEIGHTS_BYTES)
    except (OSError, zipfile.BadZipFile, EOFError) as error:  # a member cut short or corrupt
        raise ArchiveError(f"it is damaged ({type(error).__name__}: {error})") from None
    try:
        with h5py.File(io.BytesIO(content), "r") as weights_file:
            # Keras names the groups after the layer classes (dense, dense_1...) and keeps the layer's
            # own name in the attribute "name" of each group's "vars".
            stored = {}
            for group in weights_file["layers"].values():
                variables = group.get("vars")
                if variables is not None and "name" in variables.attrs:
                    stored[str(variables.attrs["name"])] = variables
            layers = []
            for step in model_plan.layers:
                variables = stored.get(step.name)
                found = [variables[str(i)] for i in range(len(variables))] if variables is not None else []
                if [tuple(v.shape) for v in found] != step.weight_shapes:
                    raise ArchiveError(
                        f"the weights of layer {step.name!r} are {[tuple(v.shape) for v in found]}, "
                        f"where its config needs {step.weight_shapes}"
                    )
                weights = tuple(np.asarray(v[()], np.float32) for v in found)
                forward, backward = _KINDS[step.kind][1](step.config, weights)
                layers.append(
                    Layer(
                        step.name,
                        step.kind,
                        step.input_shape,
                        step.output_shape,
                        step.config,
                        weights,
                        forward,
                        backward,
                    )
                )
    except (OSError, KeyError, TypeError, ValueError) as error:
        if isinstance(error, ArchiveError):
            raise
        raise ArchiveError(f"its model.weights.h5 is damaged ({type(error).__name__}: {error})") from None
    return FastModel(model_plan.name, model_plan.input_shape, layers)


# ------------------------------------------------------------------ running it


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
    """A zoo model replayed in NumPy: safe to share between sessions and threads (nothing mutates)."""

    def __init__(self, name: str, input_shape: tuple[int, ...], layers: list[Layer]):
        self.name, self.input_shape, self.layers = name, input_shape, layers

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    def count_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def predict(self, image: np.ndarray) -> Prediction:
        """One (28, 28) image → its probabilities and the time they took."""
        started = time.perf_counter()
        probabilities = self._forward(image[np.newaxis])[0]
        return Prediction(probabilities, time.perf_counter() - started)

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) → (N, 10), ``CHUNK`` images at a time."""
        if len(images) <= CHUNK:
            return self._forward(images)
        return np.concatenate([self._forward(images[start : start + CHUNK]) for start in range(0, len(images), CHUNK)])

    def layer_outputs(self, images: np.ndarray) -> list[np.ndarray]:
        """(N, 28, 28) → every layer's output, one array per entry of ``layers`` (for the Inside page)."""
        x = np.asarray(images, np.float32)
        outputs = []
        for layer in self.layers:
            x = layer.forward(x)
            outputs.append(x)
        return outputs

    def softmax_head(self) -> Layer:
        """The last layer, a softmax Dense (the zoo's contract); ValueError for any other model."""
        last = self.layers[-1] if self.layers else None
        if last is None or last.kind != "Dense" or last.config.get("activation") != "softmax":
            ends = f"{last.kind} {last.name!r}" if last else "no layer"
            raise ValueError(
                f"Saliency needs a model ending in a softmax Dense layer (the zoo's contract); "
                f"{self.name} ends in {ends}."
            )
        return last

    def _features(self, images: np.ndarray) -> list[np.ndarray]:
        """The input of every layer, then the input of the softmax head."""
        inputs = [np.asarray(images, np.float32)]
        for layer in self.layers[:-1]:
            inputs.append(layer.forward(inputs[-1]))
        return inputs

    def logits(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) → (N, 10): the scores the softmax head turns into probabilities."""
        head = self.softmax_head()
        return self._features(images)[-1] @ head.weights[0] + (head.weights[1] if len(head.weights) > 1 else 0)

    def logit_gradients(self, images: np.ndarray, digits) -> np.ndarray:
        """(N, 28, 28) and one digit per image → d logit[digit] / d image, (N, 28, 28), backpropagated
        through the replay (for saliency; equal to TensorFlow's gradients, checked in tests)."""
        kernel = self.softmax_head().weights[0]
        inputs = self._features(images)
        gradient = kernel.T[np.asarray(digits)]  # rows are independent: each its own digit's gradient
        for layer, x, y in zip(reversed(self.layers[:-1]), reversed(inputs[:-1]), reversed(inputs[1:])):
            gradient = layer.backward(x, y, gradient)
        return gradient


def predict_all(models: dict[str, FastModel], image: np.ndarray) -> dict[str, Prediction]:
    """Every model's prediction for one (28, 28) image, in the models' order."""
    return {name: model.predict(image) for name, model in models.items()}
