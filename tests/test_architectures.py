"""Every architecture honours the model contract and survives a save → load round trip."""

import keras
import numpy as np
import pytest

from model_zoo import architectures
from model_zoo.architectures import ZOO

# The tutorial's table (DESIGN.md): epochs and reported validation accuracy.
TUTORIAL = {
    "mlp_1x50": (5, 0.9470),
    "mlp_1x500": (5, 0.9713),
    "mlp_5x50": (5, 0.9541),
    "mlp_5x50_dropout": (5, 0.9459),
    "mlp_5x50_dropout_50ep": (50, 0.9631),
    "mlp_5x500_dropout": (25, 0.9774),
    "cnn": (5, 0.9797),
}


def test_the_seven_tutorial_models_keep_their_settings():
    assert architectures.TUTORIAL_MODELS == list(TUTORIAL)
    for name, (epochs, accuracy) in TUTORIAL.items():
        arch = ZOO[name]
        assert (arch.epochs, arch.tutorial_accuracy, arch.batch_size, arch.augment) == (epochs, accuracy, 128, False)
    assert not ZOO["cnn_robust"].in_tutorial


@pytest.mark.parametrize("name", ZOO)
def test_contract_and_round_trip(name, tmp_path):
    model = ZOO[name].build()
    assert model.name == name
    assert len({layer.name for layer in model.layers}) == len(model.layers)
    x = np.random.default_rng(0).random((5, 28, 28), dtype=np.float32)  # (N, 28, 28) in [0, 1]
    probabilities = np.asarray(model.predict(x, verbose=0))
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), probabilities)


def test_mlp_dropout_and_width_overrides():
    model = ZOO["mlp_5x50_dropout"].build(width=64, hidden_layers=2, dropout=0.5, name="custom")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert model.get_layer("hidden_1").units == 64
    assert model.get_layer("dropout_1").rate == 0.5


def test_unknown_architecture_names_the_choices():
    with pytest.raises(
        architectures.UnknownModelError, match="Unknown architecture 'mlp_5x5'. Expected one of: mlp_1x50"
    ):
        architectures.get("mlp_5x5")
