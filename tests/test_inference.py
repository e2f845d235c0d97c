"""The archive reader and NumPy replay give what ``keras.models.load_model`` gives, and refuse what they cannot run."""

import re
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

from model_zoo import inference, model_files, store, training
from model_zoo.architectures import ZOO
from tests.archives import read_back

TOLERANCE = 1e-5  # max abs difference from Keras, on probabilities


def _random_batch(n=20):
    return np.random.default_rng(0).random((n, 28, 28), dtype=np.float32)


def _randomise_batch_norm(model):
    """Trained-like BatchNorm statistics, so the check is not on an identity layer."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])


@pytest.fixture(scope="module")
def test_digits(mnist):
    (_, _), (x_test, _) = mnist
    return x_test[:500].astype(np.float32) / 255


@pytest.mark.parametrize("name", ZOO)
def test_the_archive_reader_equals_load_model_for_every_architecture(name, tmp_path, test_digits):
    model = ZOO[name].build()
    _randomise_batch_norm(model)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    fast, loaded = model_files.read_model(path), keras.models.load_model(path, compile=False)
    expected = loaded.predict(test_digits, verbose=0)
    assert np.abs(fast.predict_batch(test_digits) - expected).max() <= TOLERANCE
    single = fast.predict(test_digits[3])
    assert np.abs(single.probabilities - expected[3]).max() <= TOLERANCE
    assert single.digit == int(np.argmax(expected[3])) and single.seconds > 0
    assert fast.count_params() == loaded.count_params()
    assert [(layer.name, layer.kind) for layer in fast.layers] == [
        (layer.name, type(layer).__name__) for layer in loaded.layers
    ]


def test_the_archive_reader_equals_load_model_for_every_shipped_model(test_digits):
    listing = store.scan_shipped()
    assert listing.entries, "no shipped models in model_zoo/trained"
    for entry in listing.entries:
        expected = keras.models.load_model(entry.model_file(), compile=False).predict(test_digits, verbose=0)
        difference = np.abs(model_files.read_model(entry.model_file()).predict_batch(test_digits) - expected).max()
        assert difference <= TOLERANCE, (entry.name, difference)


def test_the_archive_reader_equals_load_model_for_a_retrained_version(mnist, database, test_digits):
    """A version as the Train page makes it (other width and depth), saved to and read from the database."""
    (x_train, y_train), (x_test, y_test) = mnist
    settings = training.TrainingSettings(
        arch="mlp_5x50_dropout", epochs=1, train_size=600, width=30, hidden_layers=2, dropout=0.1
    )
    result = training.train(settings, mnist=((x_train, y_train), (x_test[:200], y_test[:200])))
    entry = store.save_result(result, name="retrained", trained_in="a test")
    assert not entry.shipped
    expected = keras.models.load_model(entry.model_file(), compile=False).predict(test_digits, verbose=0)
    fast = model_files.read_model(entry.model_file())
    assert [layer.output_shape for layer in fast.layers][1] == (30,)
    assert np.abs(fast.predict_batch(test_digits) - expected).max() <= TOLERANCE


def test_reading_a_model_never_imports_tensorflow():
    code = (
        "import sys; from model_zoo import config, model_files; "
        "m = model_files.read_model(config.TRAINED_DIR / 'cnn.keras'); import numpy as np; "
        "m.predict(np.zeros((28, 28), np.float32)); print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


# ------------------------------------------------------------------ what is refused


def _saved(layers, tmp_path, name="odd"):
    path = tmp_path / f"{name}.keras"
    keras.Sequential([keras.Input((28, 28)), *layers], name=name).save(path)
    return path


@pytest.mark.parametrize(
    "layers, says",
    [
        (
            [
                keras.layers.Lambda(lambda x: x * 2),
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ],
            "it contains code",
        ),
        (
            [
                keras.layers.Flatten(name="flat"),
                keras.layers.GaussianNoise(0.1, name="noise"),
                keras.layers.Dense(10, activation="softmax"),
            ],
            "layer 'noise' is a GaussianNoise, which this app does not run",
        ),
        (
            [keras.layers.Flatten(), keras.layers.Dense(10, activation="tanh", name="odd_head")],
            "layer 'odd_head': activation 'tanh'",
        ),
        (
            [
                keras.layers.Reshape((28, 28, 1)),
                keras.layers.Conv2D(4, 3, strides=2, name="strided"),
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ],
            "layer 'strided': a Conv2D other than",
        ),
    ],
)
def test_layers_the_app_does_not_run_are_refused_with_the_reason(layers, says, tmp_path):
    path = _saved(layers, tmp_path)
    with pytest.raises(model_files.ModelFileError, match=f"odd.keras is refused: .*{says}"):
        model_files.read_model(path)
    assert says in model_files.contract_problem(path)


def test_a_custom_layer_with_a_zoo_name_is_refused(tmp_path):
    @keras.saving.register_keras_serializable(package="elsewhere")
    class Dense(keras.layers.Dense):
        pass

    path = _saved([keras.layers.Flatten(), Dense(10, activation="softmax", name="mine")], tmp_path)
    with pytest.raises(model_files.ModelFileError, match="layer 'mine' is a Dense from"):
        model_files.read_model(path)


def _rewritten(path, tmp_path, **members) -> str:
    """The archive at ``path`` with some members replaced (bytes) or added."""
    target = tmp_path / "changed.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            if info.filename not in members:
                archive.writestr(info.filename, source.read(info))
        for name, content in members.items():
            if isinstance(content, int):  # that many zero bytes, streamed: deflate makes them tiny
                with archive.open(name, "w", force_zip64=True) as handle:
                    for _ in range(content // 2**20):
                        handle.write(bytes(2**20))
            else:
                archive.writestr(name, content)
    return target


def test_an_archive_is_bounded_before_it_is_unpacked(tmp_path):
    path = _saved([keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")], tmp_path)
    bomb = _rewritten(path, tmp_path, **{"model.weights.h5": inference.MAX_WEIGHTS_BYTES + 2**20})
    assert bomb.stat().st_size < 2**20  # a small file that unpacks to more than the bound
    with pytest.raises(model_files.ModelFileError, match=r"model.weights.h5 unpacks to 129 MB; at most 128 MB"):
        model_files.read_model(bomb)


def test_a_config_that_declares_too_many_weights_is_refused_before_they_are_read(tmp_path):
    path = _saved(
        [keras.layers.Flatten(), keras.layers.Dense(50, name="hidden"), keras.layers.Dense(10, activation="softmax")],
        tmp_path,
    )
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode().replace('"units": 50,', '"units": 100000,')
    huge = _rewritten(path, tmp_path, **{"config.json": config.encode()})
    says = r"its layers declare 303 MB of weights; at most 128 MB are read"
    assert re.search(says, model_files.contract_problem(huge))
    with pytest.raises(model_files.ModelFileError, match=says):
        model_files.read_model(huge)


@pytest.mark.parametrize(
    "change, says",
    [
        ({"assets/run.py": b"print('hi')"}, "it holds files a zoo model has not: assets/run.py"),
        ({"config.json": b"{not json"}, "its config.json is damaged"),
        ({"model.weights.h5": b"\x89HDF\r\n\x1a\n" + bytes(100)}, "its model.weights.h5 is damaged"),
    ],
)
def test_damaged_archives_give_one_clear_error(change, says, tmp_path):
    path = _saved([keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")], tmp_path)
    with pytest.raises(model_files.ModelFileError, match=f"Model file is damaged: changed.keras \\({says}"):
        model_files.read_model(_rewritten(path, tmp_path, **change))


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    small = _saved(
        [
            keras.layers.Flatten(),
            keras.layers.Dense(20, name="hidden"),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ],
        tmp_path,
        "small",
    )
    big = _saved(
        [
            keras.layers.Flatten(),
            keras.layers.Dense(30, name="hidden"),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ],
        tmp_path,
        "big",
    )
    with zipfile.ZipFile(big) as archive:
        weights = archive.read("model.weights.h5")
    with pytest.raises(model_files.ModelFileError, match=r"the weights of layer 'hidden' are \[\(784, 30\), \(30,\)\]"):
        model_files.read_model(_rewritten(small, tmp_path, **{"model.weights.h5": weights}))


def test_predict_all_keeps_the_models_order():
    models = {name: read_back(ZOO[name].build()) for name in ("cnn", "mlp_1x50")}
    predictions = inference.predict_all(models, _random_batch(1)[0])
    assert list(predictions) == ["cnn", "mlp_1x50"]
    assert all(p.probabilities.shape == (10,) for p in predictions.values())
