"""The NumPy fast path gives what model.predict gives, for every architecture and shipped model."""

import keras
import numpy as np
import pytest

from model_zoo import inference, store
from model_zoo.architectures import ZOO


def _random_batch(n=20):
    return np.random.default_rng(0).random((n, 28, 28), dtype=np.float32)


def _randomise_batch_norm(model):
    """Trained-like BatchNorm statistics, so the check is not on an identity layer."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])


@pytest.mark.parametrize("name", ZOO)
def test_fast_path_equals_predict_for_every_architecture(name):
    model = ZOO[name].build()
    _randomise_batch_norm(model)
    x = _random_batch()
    fast = inference.FastModel(model)
    expected = model.predict(x, verbose=0)
    assert np.allclose(fast.predict_batch(x), expected, atol=1e-5)
    single = fast.predict(x[3])
    assert np.allclose(single.probabilities, expected[3], atol=1e-5)
    assert single.digit == int(np.argmax(expected[3])) and single.seconds > 0


def test_fast_path_equals_predict_for_every_shipped_model():
    listing = store.scan()
    assert listing.entries, "no shipped models in model_zoo/trained"
    x = _random_batch(8)
    for entry in listing.entries:
        model = store.load_model(entry.path)
        assert np.allclose(inference.FastModel(model).predict_batch(x), model.predict(x, verbose=0),
                           atol=1e-5), entry.name


def test_unknown_layers_fall_back_to_keras():
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.GaussianNoise(0.1), keras.layers.Dense(10, activation="softmax")])
    with pytest.raises(inference.UnsupportedLayerError, match="GaussianNoise"):
        inference.numpy_steps(model)
    x = _random_batch(4)
    assert np.allclose(inference.FastModel(model).predict_batch(x), model.predict(x, verbose=0), atol=1e-6)


def test_predict_all_keeps_the_models_order():
    models = {name: inference.FastModel(ZOO[name].build()) for name in ("cnn", "mlp_1x50")}
    predictions = inference.predict_all(models, _random_batch(1)[0])
    assert list(predictions) == ["cnn", "mlp_1x50"]
    assert all(p.probabilities.shape == (10,) for p in predictions.values())
