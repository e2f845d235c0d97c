"""Drawing-like distortions move, turn, scale and thicken digits as they say."""

import keras
import numpy as np
import tensorflow as tf

from model_zoo import augment


def _stroke():
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 6:22, 12:15] = 1.0  # a vertical bar, centred
    return image


def _centre_of_mass(image):
    rows, cols = np.indices(image.shape)
    return (rows * image).sum() / image.sum(), (cols * image).sum() / image.sum()


def test_identity_distortion_keeps_the_image():
    image = _stroke()
    np.testing.assert_allclose(augment.distort(image), image, atol=1e-6)


def test_shift_moves_the_centre_of_mass():
    row, col = _centre_of_mass(augment.distort(_stroke(), shift=(4, -2))[0])
    row0, col0 = _centre_of_mass(_stroke()[0])
    assert abs(col - col0 - 4) < 0.1 and abs(row - row0 + 2) < 0.1


def test_rotation_by_90_degrees_turns_a_vertical_bar_horizontal():
    turned = augment.distort(_stroke(), rotation_deg=90)[0]
    assert turned.sum(axis=1).max() > turned.sum(axis=0).max()


def test_scale_shrinks_the_ink():
    assert augment.distort(_stroke(), scale=0.6).sum() < 0.5 * _stroke().sum()


def test_thickness_levels_order_the_amount_of_ink():
    ink = [augment.change_thickness(_stroke(), level).sum() for level in augment.THICKNESS_LEVELS]
    assert ink == sorted(ink) and ink[1] < ink[2]


def test_random_augmentation_is_reproducible_and_varied():
    images = tf.constant(np.repeat(_stroke(), 8, axis=0))
    first = augment.random_augment(images, tf.constant([1, 2])).numpy()
    again = augment.random_augment(images, tf.constant([1, 2])).numpy()
    other = augment.random_augment(images, tf.constant([3, 4])).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert first.shape == (8, 28, 28) and 0.0 <= first.min() and first.max() <= 1.0
    assert len({img.tobytes() for img in first}) == 8  # each digit gets its own distortion


def test_augmented_dataset_yields_batches():
    x = np.repeat(_stroke(), 10, axis=0)
    y = np.eye(10, dtype=np.float32)
    batches = list(augment.augmented_dataset(x, y, batch_size=4, seed=0))
    assert [len(b[0]) for b in batches] == [4, 4, 2]


def test_the_public_affine_transform_gives_the_pictures_of_the_raw_tensorflow_op(mnist):
    """keras.ops.image.affine_transform replaced tf.raw_ops.ImageProjectiveTransformV3: same pixels."""
    images = tf.constant(mnist[1][0][:64] / 255.0, tf.float32)
    rng = np.random.default_rng(0)
    transforms = np.concatenate(
        [
            rng.uniform(0.8, 1.2, (64, 1)),
            rng.uniform(-0.3, 0.3, (64, 1)),
            rng.uniform(-3, 3, (64, 1)),
            rng.uniform(-0.3, 0.3, (64, 1)),
            rng.uniform(0.8, 1.2, (64, 1)),
            rng.uniform(-3, 3, (64, 1)),
            np.zeros((64, 2)),
        ],
        axis=1,
    ).astype(np.float32)
    raw = tf.raw_ops.ImageProjectiveTransformV3(
        images=images[..., tf.newaxis],
        transforms=transforms,
        output_shape=tf.constant([28, 28]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[..., 0]
    ours = augment.distort(images.numpy(), rotation_deg=9.0, scale=1.1, shift=(1.5, -2.0), shear=0.2)
    public = keras.ops.image.affine_transform(
        images[..., tf.newaxis], transforms, interpolation="bilinear", fill_mode="constant", fill_value=0.0
    )[..., 0]
    np.testing.assert_allclose(np.asarray(public), raw.numpy(), atol=1e-6)
    assert ours.shape == (64, 28, 28) and not np.allclose(ours, images.numpy())  # and distort uses it
