"""Inside a model: layer outputs, filters, occlusion and saliency (model_zoo.inside), the Inside
page and Draw's "why" panel (AppTest; helpers from test_pages and test_inference)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from test_inference import _randomise_batch_norm
from test_pages import draw_on_canvas, open_page, seven

from model_zoo import architectures, config, inference, inside, model_files
from model_zoo.architectures import ZOO
from tests.archives import read_back

INSIDE, DRAW = "app_pages/inside.py", "app_pages/draw.py"
SHIPPED = [name for name in ZOO if (config.TRAINED_DIR / f"{name}.keras").exists()]


def _digits(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).random((n, 28, 28), dtype=np.float32)


@pytest.fixture(scope="module")
def shipped() -> dict[str, inference.FastModel]:
    assert SHIPPED, "no shipped models in model_zoo/trained (python -m scripts.train_zoo)"
    return {name: model_files.read_model(config.TRAINED_DIR / f"{name}.keras") for name in SHIPPED}


@pytest.fixture(scope="module")
def shipped_keras() -> dict[str, keras.Model]:
    return {name: model_files.load_model(config.TRAINED_DIR / f"{name}.keras") for name in SHIPPED}


@pytest.fixture(scope="module")
def mnist_digits(mnist):
    """The first 100 MNIST test digits, (100, 28, 28) float32 in [0, 1]."""
    (_, _), (x_test, y_test) = mnist
    return x_test[:100].astype(np.float32) / 255, y_test[:100]


# ------------------------------------------------------------------ layer outputs


def _keras_outputs(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    every = keras.Model(model.inputs, [layer.output for layer in model.layers])
    return [np.asarray(y) for y in every.predict(x, verbose=0)]


@pytest.mark.parametrize("name", ZOO)
def test_fast_path_layer_outputs_equal_keras_for_every_architecture(name):
    model = ZOO[name].build()
    _randomise_batch_norm(model)
    x = _digits()
    ours, theirs = read_back(model).layer_outputs(x), _keras_outputs(model, x)
    assert len(ours) == len(theirs) == len(model.layers)
    for layer, mine, keras_output in zip(model.layers, ours, theirs):
        assert mine.shape == keras_output.shape, layer.name
        assert np.abs(mine - keras_output).max() <= 1e-5 * max(1.0, np.abs(keras_output).max()), layer.name


def test_fast_path_layer_outputs_equal_keras_for_every_shipped_model(shipped, shipped_keras, mnist_digits):
    """Every layer output the Inside page shows, on MNIST test digits."""
    x = mnist_digits[0][:20]
    for name, model in shipped.items():
        theirs = _keras_outputs(shipped_keras[name], x)
        assert [layer.name for layer in model.layers] == [layer.name for layer in shipped_keras[name].layers]
        for layer, mine, keras_output in zip(model.layers, model.layer_outputs(x), theirs):
            assert np.abs(mine - keras_output).max() <= 1e-5 * max(1.0, np.abs(keras_output).max()), (
                f"{name}: {layer.name}"
            )


# ------------------------------------------------------------------ stages, filters, templates


def test_stages_take_names_and_shapes_from_the_model():
    image = _digits(1)[0]
    cnn = inside.stages(read_back(ZOO["cnn"].build()), image)
    assert [(s.kind, s.name, s.shape) for s in cnn] == [
        ("conv", "conv_1", "(N, 24, 24, 25)"),
        ("pool", "pool_1", "(N, 12, 12, 25)"),
        ("conv", "conv_2", "(N, 8, 8, 25)"),
        ("pool", "pool_2", "(N, 4, 4, 25)"),
        ("conv", "conv_3", "(N, 1, 1, 25)"),
        ("dense", "hidden", "(N, 50)"),
    ]
    robust = inside.stages(read_back(ZOO["cnn_robust"].build()), image)
    assert robust[0].name == "conv_1_1 → bn_1_1 → relu_1_1"  # the maps after batch norm and ReLU
    assert robust[-1].name == "hidden → bn_hidden → relu_hidden → dropout"
    # A retrained version with other settings (as the Train page makes): its own names and widths.
    version = read_back(architectures.build_mlp("mlp@mine", hidden_layers=3, width=20, dropout=0.1))
    assert [(s.name, s.shape) for s in inside.stages(version, image)] == [
        (f"hidden_{i} → dropout_{i}", "(N, 20)") for i in (1, 2, 3)
    ]


def test_stages_sort_maps_by_strength():
    stage = inside.stages(read_back(ZOO["cnn"].build()), _digits(1)[0])[0]
    strength = stage.output.mean(axis=(0, 1))[stage.strongest_first()]
    assert np.all(np.diff(strength) <= 0)


def test_first_filters_and_pixel_templates_are_the_weights():
    cnn, mlp = ZOO["cnn"].build(), ZOO["mlp_1x50"].build()
    kernel = cnn.get_layer("conv_1").get_weights()[0]  # (5, 5, 1, 25)
    assert np.array_equal(inside.first_filters(read_back(cnn))[7], kernel[:, :, 0, 7])
    name, templates = inside.pixel_templates(read_back(mlp))
    weights = mlp.get_layer("hidden_1").get_weights()[0]  # (784, 50)
    assert name == "hidden_1" and templates.shape == (50, 28, 28)
    assert np.array_equal(templates[3], weights[:, 3].reshape(28, 28))
    assert inside.first_filters(read_back(mlp)) is None
    assert inside.pixel_templates(read_back(cnn)) is None  # its Dense layers read feature maps, not pixels


# ------------------------------------------------------------------ occlusion


def test_occlusion_equals_erasing_each_square_through_keras(shipped, shipped_keras, mnist_digits):
    model = shipped["cnn"]
    image = np.where(mnist_digits[0][0] >= inside.INK, mnist_digits[0][0], 0)  # no faint ink to skip
    digits = list(inside.ranked(model.predict(image).probabilities))
    # The obvious way: every square, erased one at a time, through model.predict.
    starts = range(0, 28 - inside.PATCH + 1, inside.STRIDE)
    squares = [(r, c) for r in starts for c in starts]
    erased = np.repeat(image[np.newaxis], len(squares) + 1, axis=0)
    for i, (r, c) in enumerate(squares, start=1):
        erased[i, r : r + inside.PATCH, c : c + inside.PATCH] = 0
    log_p = np.log(shipped_keras["cnn"].predict(erased, verbose=0)[:, digits])
    expected, covered = np.zeros((2, 28, 28)), np.zeros((28, 28))
    for (r, c), row in zip(squares, log_p[1:]):
        expected[:, r : r + inside.PATCH, c : c + inside.PATCH] += (log_p[0] - row)[:, None, None]
        covered[r : r + inside.PATCH, c : c + inside.PATCH] += 1
    assert np.allclose(inside.occlusion(model, image, digits), expected / covered, atol=1e-3)


# ------------------------------------------------------------------ saliency


def test_saliency_adds_up_to_what_the_drawing_did_to_the_score(shipped, mnist_digits):
    """Integrated gradients' completeness: each map sums to score(digit) - score(black canvas)."""
    black = np.zeros((1, 28, 28), np.float32)
    for name in ("mlp_1x50", "cnn", "cnn_robust"):
        saliency = inside.Saliency(shipped[name])
        for image in mnist_digits[0][:5]:
            digits = list(inside.ranked(shipped[name].predict(image).probabilities))
            change = saliency.scores(image[np.newaxis])[0, digits] - saliency.scores(black)[0, digits]
            sums = saliency(image, digits, steps=128).sum(axis=(1, 2))  # the page's 64 are rougher
            assert np.allclose(sums, change, rtol=0.1, atol=0.2), (name, sums, change)


def test_saliency_of_the_shipped_cnn_points_inside_the_ink(shipped, mnist_digits):
    """On MNIST test digits, the map for the predicted digit lies on the strokes, and marks the
    ink that matters: erasing its top fifth lowers the score more than erasing a random fifth."""
    model = shipped["cnn"]
    saliency = inside.Saliency(model)
    rng = np.random.default_rng(0)
    on_strokes, decisive = [], 0
    for image in mnist_digits[0]:
        digit = model.predict(image).digit
        attribution = saliency(image, [digit])[0]
        positive = np.clip(attribution, 0, None)
        on_strokes.append(positive[image >= 0.5].sum() / positive.sum())
        ink = np.flatnonzero(image > inside.INK)
        fifth = len(ink) // 5
        top = ink[np.argsort(-attribution.ravel()[ink])[:fifth]]
        drops = []
        for pixels in (top, rng.choice(ink, fifth, replace=False)):
            erased = image.copy().ravel()
            erased[pixels] = 0
            drops.append(saliency.scores(erased.reshape(1, 28, 28))[0, digit])
        decisive += drops[0] < drops[1]
    assert min(on_strokes) >= 0.75 and np.mean(on_strokes) >= 0.9, on_strokes
    assert decisive >= 95, f"the saliency's top fifth beat a random fifth on only {decisive} of 100 digits"


def test_saliency_needs_a_softmax_output_layer():
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, name="scores"),
            keras.layers.Activation("softmax", name="soft"),
        ]
    )
    with pytest.raises(ValueError, match="ends in Activation 'soft'"):
        inside.Saliency(read_back(model))


def _tensorflow_gradients(model: keras.Model, x: np.ndarray, digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The logits and d logit[digit] / d image through Keras and TensorFlow's GradientTape."""
    import tensorflow as tf

    features = keras.Model(model.inputs, model.layers[-2].output)
    last = model.layers[-1]
    images = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = tf.matmul(features(images, training=False), last.kernel) + last.bias
        chosen = tf.reduce_sum(tf.gather(logits, digits, axis=1, batch_dims=1))
    return logits.numpy(), tape.gradient(chosen, images).numpy()


@pytest.mark.parametrize("name", ZOO)
def test_saliency_gradients_equal_tensorflows_for_every_architecture(name):
    """The NumPy backward pass (conv, pooling, batch norm, ReLU...) is TensorFlow's gradient."""
    model = ZOO[name].build()
    _randomise_batch_norm(model)
    x, digits = _digits(), np.arange(6) % 10
    logits, gradients = _tensorflow_gradients(model, x, digits)
    fast = read_back(model)
    assert np.allclose(fast.logits(x), logits, atol=1e-5)
    _assert_same_gradients(fast.logit_gradients(x, digits), gradients, name)


def test_saliency_gradients_equal_tensorflows_for_every_shipped_model(shipped, shipped_keras, mnist_digits):
    x, digits = mnist_digits[0][:10], mnist_digits[1][:10].astype(np.int64)
    for name, model in shipped.items():
        logits, gradients = _tensorflow_gradients(shipped_keras[name], x, digits)
        assert np.allclose(model.logits(x), logits, atol=1e-4), name
        _assert_same_gradients(model.logit_gradients(x, digits), gradients, name)


def _assert_same_gradients(ours: np.ndarray, theirs: np.ndarray, name: str) -> None:
    """Equal to rounding, but for the rare entry whose path crosses a ReLU or a max-pool tie within
    rounding of its kink: float32 sums in another order can send it the other way (seen ~1 run in 20)."""
    close = np.abs(ours - theirs) <= 1e-5 * max(1.0, float(np.abs(theirs).max()))
    assert close.mean() >= 0.995, (name, close.mean())
    assert np.linalg.norm(ours - theirs) <= 1e-2 * np.linalg.norm(theirs), name


# ------------------------------------------------------------------ pictures


def test_pictures_have_one_tile_per_map_and_colours_that_say_the_sign():
    stage = inside.stages(read_back(ZOO["cnn"].build()), _digits(1)[0])[0]  # 25 maps, 24 × 24
    picture = inside.maps_picture(stage)
    # 2 rows of 13 tiles, each 24 px enlarged twice, 2 px apart
    assert picture.dtype == np.uint8 and picture.shape == (2 * 48 + 2, 13 * 48 + 12 * 2, 3)
    # conv_1's filters sit where their maps sit: the same grid of the same tiles.
    assert inside.filters_picture(inside.first_filters(read_back(ZOO["cnn"].build())), stage).shape == picture.shape
    values = np.zeros((28, 28), np.float32)
    values[5, 5], values[20, 20] = 1.0, -1.0
    painted = inside.overlay(np.zeros((28, 28), np.float32), values, zoom=1)
    assert painted[5, 5, 0] > painted[5, 5, 2] and painted[20, 20, 2] > painted[20, 20, 0]
    assert not painted[10, 10].any()  # nothing to paint on black paper


# ------------------------------------------------------------------ the page (AppTest)


def _texts(elements) -> list[str]:
    return [element.value for element in elements]


@pytest.mark.parametrize("name", SHIPPED)
def test_inside_page_shows_the_panels_for_each_model(name):
    at = open_page(INSIDE, model=name)
    draw_on_canvas(at, "inside", seven(), strokes=2)
    stages = inside.stages(model_files.read_model(config.TRAINED_DIR / f"{name}.keras"), np.zeros((28, 28), np.float32))
    assert _texts(at.subheader)[0].startswith(f"{name} reads ")
    assert {"**Why this digit**", "**Layer by layer**"} <= set(_texts(at.markdown))
    shown = [text for text in _texts(at.markdown) if text.startswith("`")]
    assert shown == [f"`{stage.name}` · {stage.shape}" for stage in stages]
    # The model input, occlusion for the digit and its runner-up, a picture per stage, and the
    # first convolution's filters (CNNs) or the first layer's weight pictures (MLPs).
    assert len(at.get("image")) == 1 + 2 + len(stages) + 1
    assert any(text.startswith(f"Inside {name} on your drawing (2 strokes)") for text in _texts(at.caption))
    assert not at.error


def test_inside_page_waits_for_a_drawing():
    at = open_page(INSIDE, model="cnn")
    assert any(text.startswith("Draw a digit") for text in _texts(at.info))
    assert not at.subheader and not at.error


def test_inside_page_names_an_unknown_model_in_the_link():
    at = open_page(INSIDE)
    at.query_params["model"] = "mlp_5x5"  # as if /inside?model=mlp_5x5 were opened
    at.run()
    assert any("Unknown model `mlp_5x5`" in text for text in _texts(at.warning))
    assert not at.exception


def test_side_by_side_puts_an_mlp_beside_a_cnn_and_saliency_comes_on_demand():
    at = open_page(INSIDE, model="cnn")
    draw_on_canvas(at, "inside", seven())
    at.toggle(key="inside_pair").set_value(True).run()
    assert at.selectbox(key="inside_other").value == "mlp_1x50"
    assert [text.split(" reads ")[0] for text in _texts(at.subheader)] == ["cnn", "mlp_1x50"]
    images = len(at.get("image"))
    at.toggle(key="inside_saliency").set_value(True).run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == images + 4  # saliency for digit and runner-up, for each model
    assert sum("integrated gradients" in text for text in _texts(at.caption)) == 2


@pytest.mark.parametrize("name", SHIPPED)
def test_draw_why_panel_is_collapsed_and_shows_occlusion_when_opened(name):
    at = open_page(DRAW, model=name)
    draw_on_canvas(at, "draw", seven())
    assert [e.label for e in at.main.expander] == ["Why this digit?"]  # the sidebar has the Teacher box
    images = len(at.get("image"))  # the model input
    at.session_state["draw_why"] = True  # what a click on the panel's header sends
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == images + 2
    assert any(text.startswith("Erasing: a black 8 px square") for text in _texts(at.caption))
