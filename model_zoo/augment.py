"""Distortions that make MNIST digits look like people's drawings.

One home for geometric and stroke changes, used three ways: random
augmentation while training (``cnn_robust`` and the Train page's switch),
fixed distortions for the robustness curves, and tests. Everything works on
batches shaped (N, 28, 28) float32 in [0, 1], white on black, with TensorFlow
image ops so that augmentation runs inside ``tf.data`` at training speed.
TensorFlow is imported by the functions that use it: the web server imports
this module (for ``THICKNESS_LEVELS``) without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

CENTRE = 13.5  # pixel centres run 0..27

# Stroke-thickness levels: -1 thinner, 0 as drawn, +k about k pixels thicker.
THICKNESS_LEVELS = (-1, 0, 1, 2, 3)


@dataclass(frozen=True)
class AugmentRanges:
    """How far random augmentation may go; the defaults mimic canvas drawings."""

    rotation_deg: float = 15.0
    zoom: tuple[float, float] = (0.85, 1.1)
    aspect: float = 0.15  # width/height change, ± as a log-ratio
    shear: float = 0.3  # horizontal shear factor, ± (slanted handwriting)
    shift_px: float = 2.5
    thickness_weights: tuple[float, ...] = (0.15, 0.4, 0.25, 0.15, 0.05)  # per THICKNESS_LEVELS


def _affine(images: tf.Tensor, rotation_rad, scale_x, scale_y, shear, shift_x, shift_y) -> tf.Tensor:
    """Apply p_out = R·Sh·S·(p_in − c) + c + t to each image (every argument is (N,))."""
    import keras
    import tensorflow as tf

    cos, sin = tf.cos(rotation_rad), tf.sin(rotation_rad)
    # A = R @ [[1, shear], [0, 1]] @ diag(scale_x, scale_y)
    a = cos * scale_x
    b = (cos * shear - sin) * scale_y
    c = sin * scale_x
    d = (sin * shear + cos) * scale_y
    det = a * d - b * c
    # The transform maps output coordinates to input ones: use A⁻¹.
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    ox, oy = CENTRE + shift_x, CENTRE + shift_y
    tx = CENTRE - (ia * ox + ib * oy)
    ty = CENTRE - (ic * ox + id_ * oy)
    zeros = tf.zeros_like(a)
    transforms = tf.stack([ia, ib, tx, ic, id_, ty, zeros, zeros], axis=1)
    out = keras.ops.image.affine_transform(
        images[..., tf.newaxis],
        tf.cast(transforms, tf.float32),
        interpolation="bilinear",
        fill_mode="constant",
        fill_value=0.0,
        data_format="channels_last",
    )  # one resampling per image
    return out[..., 0]


def _thickness_variants(images: tf.Tensor) -> tf.Tensor:
    """(N, 28, 28) → (len(THICKNESS_LEVELS), N, 28, 28), one per level."""
    import tensorflow as tf

    x = images[..., tf.newaxis]
    thicker_1 = tf.nn.max_pool2d(x, 2, 1, "SAME")
    thicker_2 = tf.nn.max_pool2d(x, 3, 1, "SAME")
    thicker_3 = tf.nn.max_pool2d(thicker_2, 2, 1, "SAME")
    thinner = tf.clip_by_value(2.0 * x - 1.0, 0.0, 1.0)  # drops the grey edge pixels
    return tf.stack([thinner, x, thicker_1, thicker_2, thicker_3])[..., 0]


def change_thickness(images, level: int) -> np.ndarray:
    """Make every stroke thinner (level −1) or about ``level`` px thicker."""
    import tensorflow as tf

    variants = _thickness_variants(tf.convert_to_tensor(images, tf.float32))
    return variants[THICKNESS_LEVELS.index(level)].numpy()


def distort(images, *, rotation_deg=0.0, scale=1.0, shift=(0.0, 0.0), shear=0.0) -> np.ndarray:
    """The same fixed distortion for every image; shift is (dx, dy) in pixels."""
    import tensorflow as tf

    x = tf.convert_to_tensor(images, tf.float32)
    n = tf.shape(x)[:1]

    def full(value):
        return tf.fill(n, tf.constant(value, tf.float32))

    return _affine(
        x, full(math.radians(rotation_deg)), full(scale), full(scale), full(shear), full(shift[0]), full(shift[1])
    ).numpy()


def random_augment(images: tf.Tensor, seed: tf.Tensor, ranges: AugmentRanges = AugmentRanges()) -> tf.Tensor:
    """A random drawing-like distortion per image; ``seed`` is a stateless (2,) int seed."""
    import tensorflow as tf

    n = tf.shape(images)[:1]
    seeds = tf.random.split(tf.cast(seed, tf.int64), 7)

    def uniform(i, low, high):
        return tf.random.stateless_uniform(n, seeds[i], low, high)

    rotation = uniform(0, -1.0, 1.0) * math.radians(ranges.rotation_deg)
    zoom = uniform(1, *ranges.zoom)
    aspect = tf.exp(uniform(2, -ranges.aspect, ranges.aspect))
    shear = uniform(3, -ranges.shear, ranges.shear)
    shift_x = uniform(4, -ranges.shift_px, ranges.shift_px)
    shift_y = uniform(5, -ranges.shift_px, ranges.shift_px)
    moved = _affine(images, rotation, zoom * aspect, zoom / aspect, shear, shift_x, shift_y)

    logits = tf.math.log([list(ranges.thickness_weights)])
    level = tf.random.stateless_categorical(logits, n[0], seeds[6])[0]  # (N,)
    variants = _thickness_variants(moved)  # (L, N, 28, 28)
    picked = tf.gather(tf.transpose(variants, [1, 0, 2, 3]), level, batch_dims=1)
    return picked


def augmented_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled, augmented batches; different distortions every epoch, reproducible by seed."""
    import tensorflow as tf

    images = tf.data.Dataset.from_tensor_slices((x, y))
    images = images.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    batches = tf.data.Dataset.zip(images, batch_seeds)
    return batches.map(lambda xy, s: (random_augment(xy[0], s), xy[1]), num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
