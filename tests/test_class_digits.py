"""The class's digits: keeping, the split, deleting and relabelling, bounds, export and import.

Tables are tested on SQLite and on a throwaway PostgreSQL server (``any_database``).
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from model_zoo import class_digits, data, evaluation
from model_zoo.class_digits import ClassDigitsError, LimitError
from model_zoo.config import SettingsError

FIXTURE = Path(__file__).parent / "fixtures" / "class_digits.npz"  # drawn by tests.browser.class_set


def image(seed: int) -> np.ndarray:
    """A distinct (28, 28) float32 'digit' per seed."""
    return np.random.default_rng(seed).random((28, 28)).astype(np.float32)


def keep(seed: int, label: int, *, class_name="my class", learner="Ada", key="ada-secret", **extra):
    return class_digits.keep(class_name, label=label, image=image(seed), learner=learner, owner_key=key, **extra)


def test_a_kept_digit_is_stored_with_what_the_models_read(any_database):
    kept = keep(1, 3, readings={"cnn": (3, 0.97), "mlp_1x50": (5, 0.6)}, picture=b"png", pen=12)
    [stored] = class_digits.digits("my class")
    assert stored.id == kept.id and stored.label == 3 and stored.learner == "Ada" and stored.pen == 12
    assert stored.readings == {"cnn": [3, 0.97], "mlp_1x50": [5, 0.6]}
    assert np.array_equal(stored.image, np.rint(image(1) * 255).astype(np.uint8))
    assert class_digits.picture(kept.id) == b"png"
    assert stored.is_own("ada-secret") and not stored.is_own("someone-else")


def test_the_same_drawing_kept_twice_is_stored_once(any_database):
    assert keep(1, 3) is not None
    assert keep(1, 3) is None and keep(1, 5) is None
    assert class_digits.counts("my class") == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert keep(1, 3, class_name="another class") is not None  # another class may have it


def test_counts_per_learner(any_database):
    keep(1, 3), keep(2, 3), keep(3, 7, learner="Bo", key="bo-secret")
    assert class_digits.counts("my class", "ada-secret")[3] == 2
    assert class_digits.counts("my class", "bo-secret") == [0] * 7 + [1, 0, 0]
    assert sum(class_digits.counts("my class")) == 3


def test_the_split_is_stratified_and_never_moves(any_database):
    for seed in range(40):
        keep(seed, seed % 2)
    (x_train, y_train), (x_held, y_held) = class_digits.split_arrays("my class")
    assert len(x_held) == 10 and sorted(y_held.tolist()) == [0] * 5 + [1] * 5  # a quarter of each label
    held = {d.id for d in class_digits.digits("my class") if d.held_out}
    for seed in range(40, 60):
        keep(seed, 1)
    after = class_digits.digits("my class")
    assert held <= {d.id for d in after if d.held_out}  # nothing moved
    assert sum(d.held_out for d in after if d.label == 1) == 10  # the newcomers by the same rule


def test_learners_delete_their_own_and_the_teacher_any(any_database):
    ada, bo = keep(1, 3), keep(2, 4, learner="Bo", key="bo-secret")
    with pytest.raises(ClassDigitsError, match="Only the learner who kept"):
        class_digits.delete(bo.id, key="ada-secret")
    class_digits.delete(ada.id, key="ada-secret")
    class_digits.delete(bo.id, teacher=True)
    assert class_digits.digits("my class") == []
    with pytest.raises(ClassDigitsError, match="no longer in the class"):
        class_digits.delete(bo.id, teacher=True)


def test_only_the_teacher_relabels(any_database):
    kept = keep(1, 3)
    with pytest.raises(ClassDigitsError, match="Only the teacher"):
        class_digits.relabel(kept.id, 8, teacher=False)
    class_digits.relabel(kept.id, 8, teacher=True)
    assert class_digits.digits("my class")[0].label == 8


@pytest.mark.parametrize("label", [10, -1, "3", 2.0, True, None])
def test_labels_are_digits(database, label):
    with pytest.raises(ClassDigitsError, match="one digit, 0 to 9"):
        keep(1, label)
    assert class_digits.digits("my class") == []


def test_names_are_checked_and_classes_listed(database):
    with pytest.raises(ClassDigitsError, match="class name"):
        class_digits.create_class("[click](http://x)")
    assert class_digits.create_class("  7B   2026 ") == "7B 2026"
    assert class_digits.classes() == ["my class", "7B 2026"]


def test_learners_and_classes_are_bounded(database, monkeypatch):
    monkeypatch.setenv(class_digits.MAX_LEARNER_VARIABLE, "2")
    monkeypatch.setenv(class_digits.MAX_CLASS_VARIABLE, "3")
    keep(1, 1), keep(2, 2)
    with pytest.raises(LimitError, match="Ada has kept 2 digits"):
        keep(3, 3)
    keep(4, 4, learner="Bo", key="bo-secret")
    with pytest.raises(LimitError, match="at most 3 per class"):
        keep(5, 5, learner="Cy", key="cy-secret")
    assert sum(class_digits.counts("my class")) == 3


def test_export_and_import_round_trip_in_both_formats(any_database, tmp_path):
    for seed in range(12):
        keep(seed, seed % 10)
    x, y = class_digits._all_arrays("my class")
    for fmt, content in [("npz", class_digits.export_npz("my class")), ("zip", class_digits.export_zip("my class"))]:
        report = class_digits.import_file(f"from {fmt}", f"class.{fmt}", content)
        assert (report.added, report.already_there) == (12, 0)
        imported = class_digits.digits(f"from {fmt}")
        assert sorted((d.label, d.image.tobytes()) for d in imported) == sorted(
            (int(label), pixels.tobytes()) for pixels, label in zip(x, y)
        )
        assert {d.source for d in imported} == {f"imported from class.{fmt}"}
    again = class_digits.import_file("from npz", "class.npz", class_digits.export_npz("my class"))
    assert (again.added, again.already_there) == (0, 12)
    # The zip is the tutorial's Analytics Vidhya layout: its reader takes it unzipped.
    zipfile.ZipFile(io.BytesIO(class_digits.export_zip("my class"))).extractall(tmp_path)
    x_av, y_av = data.load_analytics_vidhya(tmp_path / "train.csv")
    assert np.array_equal(x_av, x) and np.array_equal(y_av, y)


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


GOOD_X, GOOD_Y = np.zeros((3, 28, 28), np.uint8), np.array([1, 2, 3], np.uint8)


@pytest.mark.parametrize(
    "filename, content, reason",
    [
        ("a.npz", b"not a zip at all", "not a readable .npz"),
        ("a.npz", _npz(x=GOOD_X), "no 'y' array"),
        ("a.npz", _npz(x=np.zeros((3, 20, 20), np.uint8), y=GOOD_Y), "must be 28x28"),
        ("a.npz", _npz(x=GOOD_X, y=np.array([1, 2, 12])), "labels must be 0-9, found 12"),
        ("a.npz", _npz(x=GOOD_X, y=np.array([1, 2])), "one label per image"),
        ("a.npz", _npz(x=GOOD_X.astype(np.float32) + 0.5, y=GOOD_Y), "whole numbers 0-255"),
        ("a.zip", b"PK garbage", "not a readable .zip"),
        ("a.zip", _zip({"readme.txt": b"hi"}), "has no train.csv"),
        ("a.zip", _zip({"train.csv": b"name,digit\n"}), "header filename,label"),
        ("a.zip", _zip({"train.csv": b"filename,label\n1.png,3\n"}), "'1.png' is not in the zip"),
        ("a.zip", _zip({"train.csv": b"filename,label\n1.png,x\n", "Images/train/1.png": b""}), "is not a digit"),
        (
            "a.zip",
            _zip({"train.csv": b"filename,label\n1.png,3\n", "Images/train/1.png": b"nope"}),
            "not a readable image",
        ),
        ("a.csv", b"filename,label\n", "neither .npz nor .zip"),
    ],
)
def test_malformed_imports_are_refused_with_the_reason_and_store_nothing(database, filename, content, reason):
    with pytest.raises(ClassDigitsError, match=reason):
        class_digits.import_file("imports", filename, content)
    assert class_digits.digits("imports") == []


def test_an_import_beyond_the_class_bound_stores_nothing(database, monkeypatch):
    monkeypatch.setenv(class_digits.MAX_CLASS_VARIABLE, "2")
    x = np.stack([np.full((28, 28), i, np.uint8) for i in range(3)])
    with pytest.raises(LimitError):
        class_digits.import_file("imports", "a.npz", _npz(x=x, y=GOOD_Y))
    assert class_digits.digits("imports") == []


def test_the_browser_drawn_class_set_imports_and_splits_by_label(database):
    report = class_digits.import_file("fixture", FIXTURE.name, FIXTURE.read_bytes())
    (x_train, y_train), (x_held, y_held) = class_digits.split_arrays("fixture")
    assert report.added == len(x_train) + len(x_held) >= 200
    train_counts, held_counts = np.bincount(y_train, minlength=10), np.bincount(y_held, minlength=10)
    assert np.all(np.abs(held_counts - (train_counts + held_counts) / 4) <= 1)


def test_fine_tuning_on_a_class_starts_from_the_shipped_weights_and_scores_its_held_out_digits(database, mnist):
    from model_zoo import training, training_inputs

    (_, _), (x_test, y_test) = mnist
    class_digits.import_file("7B", "mnist_part.npz", _npz(x=x_test[:80], y=y_test[:80]))
    settings = training.TrainingSettings.for_architecture(
        "mlp_1x50", epochs=1, train_size=1000, learning_rate=1e-4, class_digits="7B", fine_tune=True
    )
    result = training.train(settings, **training_inputs.gather(settings, mnist=mnist))
    record = result.record()["class_digits"]
    (x_class, _), (x_held, _) = class_digits.split_arrays("7B")
    assert (record["class"], record["train"], record["held_out"]) == ("7B", len(x_class), len(x_held))
    assert len(x_held) in range(16, 25)
    assert record["repeats"] == round(900 / (3 * len(x_class)))  # the class: about a quarter of the epoch
    assert result.train_digits == 900 + len(x_class) * record["repeats"]
    assert 0.8 <= record["held_out_accuracy_before"] <= 1 and 0.8 <= record["held_out_accuracy"] <= 1
    assert result.history["class_accuracy"] == [record["held_out_accuracy"]]
    assert evaluation.trained_on(result.record()["settings"]) == "MNIST + 7B, fine-tuned"  # the Zoo's column
    # One epoch on 1,200 digits at a low rate: only a start from the shipped weights reads MNIST this well.
    assert result.test_accuracy > 0.93
    scratch_settings = dataclasses.replace(settings, fine_tune=False, learning_rate=1e-3)
    scratch = training.train(scratch_settings, **training_inputs.gather(scratch_settings, mnist=mnist))
    assert scratch.test_accuracy < 0.9


def test_a_class_without_digits_cannot_be_trained_on(database, mnist):
    from model_zoo import training, training_inputs

    settings = training.TrainingSettings.for_architecture(
        "mlp_1x50", epochs=1, train_size=1000, class_digits="empty class"
    )
    with pytest.raises(SettingsError, match="no digits to train on yet"):
        training.train(settings, **training_inputs.gather(settings, mnist=mnist))
