"""Taking a model home: the .keras file a learner downloads, and its model card."""

from __future__ import annotations

import zipfile

import keras
import numpy as np
import pytest

from model_zoo import architectures, db, evaluation, model_card, model_files, store

SHIPPED = {entry.name: entry for entry in store.scan_shipped().entries}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_download_loads_with_plain_keras_and_reads_drawn_digits_as_the_app_does(name, tmp_path):
    entry = SHIPPED[name]
    downloaded = tmp_path / model_card.file_name(entry)
    downloaded.write_bytes(entry.model_file().read_bytes())  # what the Zoo's button sends
    plain = keras.models.load_model(downloaded)
    drawn = evaluation.drawn_set().x[:20].astype(np.float32) / 255  # (20, 28, 28), as the app sees drawings
    app = model_files.read_model(entry.model_file())
    np.testing.assert_allclose(plain.predict(drawn, verbose=0), app.predict_batch(drawn), atol=1e-5)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_models_card_names_its_data_accuracy_and_commonest_misreading(name):
    entry = SHIPPED[name]
    card = model_card.markdown(entry)
    record = entry.record
    assert card.startswith(f"# {name}\n")
    assert evaluation.trained_on(record["settings"], record.get("first_stage")) in card
    assert f"| MNIST test (10,000 digits) | {record['test_accuracy']:.2%} |" in card
    assert f"| drawn (digits drawn with the mouse on the app's canvas) | {record['drawn_accuracy']:.2%} |" in card
    matrix = np.array(record["confusion_matrix"])
    np.fill_diagonal(matrix, 0)
    true, said = np.unravel_index(matrix.argmax(), matrix.shape)
    assert f"- reads a {true} as a {said}: {matrix[true, said]} of the" in card
    assert f'keras.models.load_model("{name}.keras")' in card


def test_a_versions_file_and_card_never_name_its_learner_or_machine(any_database, tmp_path):
    model = architectures.ZOO["mlp_1x50"].build()
    record = {
        "arch": "mlp_1x50",
        "test_accuracy": 0.91,
        "settings": {"epochs": 2, "batch_size": 64},
        "owner": "heron-42",
        "trained_on": "labpc-17 (2 cores)",
        "params": model.count_params(),
    }
    with db.engine().begin() as connection:
        store.insert_version(
            connection, "heron-42s-cnn", record, model_files.model_bytes(model), owner_key=db.hashed_key("secret")
        )
    entry = store.scan().get("heron-42s-cnn")
    card = model_card.markdown(entry)
    assert "heron" in entry.name and "heron-42" not in card.replace(entry.name, "")
    assert "labpc" not in card
    assert "| MNIST test (10,000 digits) | 91.00% |" in card
    assert "not measured yet" in card  # no confusion matrix in its record yet
    with zipfile.ZipFile(entry.model_file()) as archive:
        for member in archive.namelist():
            assert b"heron" not in archive.read(member), member
