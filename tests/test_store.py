"""The zoo on disk: atomic saves, clear errors for damaged files, versions beside shipped models."""

import io
import json
import os
import zipfile

import h5py
import keras
import numpy as np
import pytest

from model_zoo import store
from model_zoo.architectures import ZOO


def _record(arch="mlp_1x50", accuracy=0.5):
    return {"arch": arch, "test_accuracy": accuracy, "settings": {"epochs": 1}}


@pytest.fixture
def tiny_model():
    model = ZOO["mlp_1x50"].build()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((16, 28, 28), dtype=np.float32)
    model.fit(x, np.eye(10)[np.arange(16) % 10], epochs=1, verbose=0)  # creates optimizer state
    return model


def test_saved_version_round_trips_without_optimizer_state(tiny_model, user_dir):
    entry = store.save_version(tiny_model, _record(), "my model!")
    assert entry.name == "my-model" and not entry.shipped
    assert entry.path == user_dir / "my-model.keras"
    listed = store.scan().get("my-model")
    assert listed.record["params"] == 39_760 and listed.record["versions"]["keras"] == keras.__version__
    loaded = keras.models.load_model(listed.path)  # plain Keras is enough
    x = np.random.default_rng(1).random((3, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), tiny_model.predict(x, verbose=0), rtol=1e-6)
    with zipfile.ZipFile(listed.path) as archive, archive.open("model.weights.h5") as weights:
        assert "optimizer" not in h5py.File(io.BytesIO(weights.read()))
    assert getattr(loaded, "optimizer", None) is None


def test_version_names_are_sanitised_unique_and_never_shipped(tiny_model, user_dir):
    assert store.version_name("cnn", "cnn") == "cnn-2"  # a shipped name is never reused
    first = store.save_version(tiny_model, _record(), "")
    assert first.name.startswith("mlp_1x50@")
    second = store.save_version(tiny_model, _record(), first.name)
    assert second.name == f"{first.name}-2"
    assert store.version_name("cnn", "../../etc/passwd") == "etc-passwd"


def test_a_write_interrupted_before_replace_keeps_the_previous_file(tiny_model, user_dir, monkeypatch):
    entry = store.save_version(tiny_model, _record(accuracy=0.1), "kept")
    before = entry.path.read_bytes()

    def crash(*args):
        raise KeyboardInterrupt("power cut")

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(os, "replace", crash)
        store.save(ZOO["mlp_1x500"].build(), _record(accuracy=0.9), user_dir, "kept")
    assert entry.path.read_bytes() == before
    assert sorted(p.name for p in user_dir.iterdir()) == ["kept.json", "kept.keras"]  # no leftovers
    assert store.scan().get("kept").test_accuracy == 0.1


@pytest.mark.parametrize("damage", [b"", b"garbage" * 10, "truncate"])
def test_a_damaged_model_file_gives_one_clear_error(tiny_model, user_dir, damage):
    entry = store.save_version(tiny_model, _record(), "broken")
    content = entry.path.read_bytes()
    entry.path.write_bytes(content[: len(content) // 2] if damage == "truncate" else damage)
    with pytest.raises(store.ModelFileError, match=f"Model file is damaged: {entry.path}"):
        store.load_model(entry.path)


def test_models_without_a_readable_record_are_skipped_with_a_reason(tiny_model, user_dir):
    entry = store.save_version(tiny_model, _record(), "half")
    entry.record_path.write_text("{not json")
    store.save_version(tiny_model, _record(arch="mlp_9x9"), "alien")
    listing = store.scan()
    assert "half" not in listing.names and "alien" not in listing.names
    assert any("half.keras" in p and "damaged" in p for p in listing.problems)
    assert any("alien.keras" in p and "mlp_9x9" in p for p in listing.problems)


def test_shipped_models_cannot_be_deleted_but_versions_can(tiny_model, user_dir):
    shipped = store.ZooEntry("cnn", store.TRAINED_DIR / "cnn.keras", _record("cnn"), shipped=True)
    with pytest.raises(store.VersionError, match="cnn is a shipped model and cannot be deleted"):
        store.delete_version(shipped)
    version = store.save_version(tiny_model, _record(), "gone")
    store.delete_version(version)
    assert "gone" not in store.scan().names and not version.path.exists()


def test_update_record_adds_fields_atomically(tiny_model, user_dir):
    entry = store.save_version(tiny_model, _record(), "scored")
    updated = store.update_record(entry, usps_accuracy=0.9)
    assert json.loads(entry.record_path.read_text())["usps_accuracy"] == 0.9
    assert updated.record["arch"] == "mlp_1x50"


def test_unknown_model_names_the_choices(user_dir):
    with pytest.raises(KeyError, match="Unknown model 'nope'. Expected one of: "):
        store.scan().get("nope")
