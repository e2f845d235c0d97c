"""scripts.train_zoo's two stages, on a few hundred real MNIST digits (the shipped run takes ~30 min)."""

from __future__ import annotations

import dataclasses
import gzip
import json

import numpy as np
import pytest

from model_zoo import architectures, data, evaluation, model_files, strokes, training
from scripts import train_zoo


def few_pen_digits(pen_digits, folder) -> tuple[str, dict]:
    """A pen-stroke file of a few real digits of each part, and how many of each part it holds."""
    parts = data.pen_split(pen_digits)
    few = {"train": parts["train"][:30], "validation": parts["validation"][:20], "test": parts["test"][:10]}
    items = [
        {"label": d.label, "writer": d.writer, "strokes": [s.tolist() for s in d.strokes]}
        for part in few.values()
        for d in part
    ]
    path = folder / "unipen_pen.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump(items, f)
    return str(path), {name: len(part) for name, part in few.items()}


def test_a_pen_finished_model_ships_with_both_stages_in_its_record(mnist, pen_digits, tmp_path, monkeypatch, capsys):
    (x_train, y_train), (x_test, y_test) = mnist
    few = tmp_path / "few.npz"
    np.savez(few, x_train=x_train[:600], y_train=y_train[:600], x_test=x_test[:100], y_test=y_test[:100])
    monkeypatch.setattr(strokes, "CACHE_DIR", tmp_path / "strokes")
    pen_file, pen_counts = few_pen_digits(pen_digits, tmp_path)
    monkeypatch.setenv("UNIPEN_PATH", pen_file)
    quick = dataclasses.replace(architectures.ZOO["mlp_1x50"], epochs=2, pen_finish_epochs=1)
    monkeypatch.setitem(architectures.ZOO, "mlp_1x50", quick)

    train_zoo.main(["--models", "mlp_1x50", "--data", str(few), "--out", str(tmp_path / "zoo")])

    record = json.loads((tmp_path / "zoo" / "mlp_1x50.json").read_text())
    first = record["first_stage"]
    assert first["epochs_done"] == 2 and first["settings"]["strokes"] is False
    assert first["train_digits"] + first["val_digits"] == 600
    assert record["epochs_done"] == 1
    assert record["settings"] | {"epochs": 2} == first["settings"] | {
        "strokes": True,
        "unipen": True,
        "fine_tune": True,
        "learning_rate": quick.learning_rate / 10,
    }
    ones = int((y_train[:600] == 1).sum())
    pen_train = training.PEN_RENDERS * pen_counts["train"]  # the train writers' digits, each drawn k times
    assert record["train_digits"] + record["val_digits"] == 2 * 600 + ones + pen_train  # pen versions, flagged 1s
    assert record["pen_digits"]["test_digits"] == pen_counts["test"]  # held out, never trained on
    assert len(record["history"]["pen_val_accuracy"]) == 1
    assert "batch_loss" not in first and record["batch_loss"]  # the curve of the finish only
    assert evaluation.trained_on(record["settings"], first) == "MNIST, then MNIST + pen strokes + UNIPEN writers"
    # The model file is the finished one, and it is a zoo model like any other.
    model = model_files.load_model(tmp_path / "zoo" / "mlp_1x50.keras")
    assert evaluation.accuracy(model, x_test, y_test) > 0.5
    assert "| mlp_1x50 | 39,760 | 3 |" in capsys.readouterr().out


def test_a_kept_first_stage_is_finished_instead_of_trained_again(mnist, pen_digits, tmp_path, monkeypatch):
    (x_train, y_train), (x_test, y_test) = mnist
    few = tmp_path / "few.npz"
    np.savez(few, x_train=x_train[:300], y_train=y_train[:300], x_test=x_test[:100], y_test=y_test[:100])
    monkeypatch.setattr(strokes, "CACHE_DIR", tmp_path / "strokes")
    monkeypatch.setenv("UNIPEN_PATH", few_pen_digits(pen_digits, tmp_path)[0])
    quick = dataclasses.replace(architectures.ZOO["mlp_1x50"], epochs=1, pen_finish_epochs=1)
    monkeypatch.setitem(architectures.ZOO, "mlp_1x50", quick)
    args = ["--models", "mlp_1x50", "--data", str(few), "--first-stage", str(tmp_path / "first")]

    train_zoo.main([*args, "--out", str(tmp_path / "a")])  # trains the first stage and keeps it
    kept = (tmp_path / "first" / "mlp_1x50.keras").read_bytes()
    train_zoo.main([*args, "--out", str(tmp_path / "b")])  # finishes the kept one
    assert (tmp_path / "first" / "mlp_1x50.keras").read_bytes() == kept
    a, b = (json.loads((tmp_path / out / "mlp_1x50.json").read_text()) for out in "ab")
    assert a["first_stage"]["history"] == b["first_stage"]["history"]
    assert a["data_sha256"] == b["data_sha256"]

    # A first stage trained with other settings is not silently finished.
    monkeypatch.setitem(architectures.ZOO, "mlp_1x50", dataclasses.replace(quick, epochs=2))
    with pytest.raises(SystemExit, match="trained with other settings"):
        train_zoo.main([*args, "--out", str(tmp_path / "c")])


def test_a_usps_model_finishes_without_its_usps_validation_fifth(mnist, pen_digits, tmp_path, monkeypatch):
    (x_train, y_train), (x_test, y_test) = mnist
    few = tmp_path / "few.npz"
    np.savez(few, x_train=x_train[:300], y_train=y_train[:300], x_test=x_test[:100], y_test=y_test[:100])
    usps = tmp_path / "usps.npz"  # MNIST digits stand in for USPS's: 100 to train on, 50 to test
    np.savez(usps, x_train=x_train[-100:], y_train=y_train[-100:], x_test=x_test[-50:], y_test=y_test[-50:])
    monkeypatch.setenv("USPS_PATH", str(usps))
    monkeypatch.setattr(strokes, "CACHE_DIR", tmp_path / "strokes")
    pen_file, pen_counts = few_pen_digits(pen_digits, tmp_path)
    monkeypatch.setenv("UNIPEN_PATH", pen_file)
    quick = dataclasses.replace(
        architectures.ZOO["mlp_1x50"], epochs=1, pen_finish_epochs=1, usps=True, pen_finish_usps_repeats=2
    )
    monkeypatch.setitem(architectures.ZOO, "mlp_1x50", quick)
    args = ["--models", "mlp_1x50", "--data", str(few), "--first-stage", str(tmp_path / "first")]

    train_zoo.main([*args, "--out", str(tmp_path / "zoo")])

    record = json.loads((tmp_path / "zoo" / "mlp_1x50.json").read_text())
    assert record["first_stage"]["train_digits"] == 270 + 100  # the first stage: all of USPS's train
    validation = record["usps_validation"]
    assert validation["validation_digits"] == 20 and validation["repeats"] == 2
    assert 0 <= validation["accuracy_first_stage"] <= 1 and 0 <= validation["accuracy"] <= 1
    assert validation["split"] == data.USPS_SPLIT_RULE
    # The finish: MNIST's 270 and USPS's 80 twice, their pen versions (and the 1s' flagged), the pen writers.
    order = np.random.default_rng(0).permutation(300)
    y_mnist = y_train[:300][order[30:]]
    (_, y_usps), _ = data.usps_validation_split((x_train[-100:], y_train[-100:]))
    ones = int((y_mnist == 1).sum()) + 2 * int((y_usps == 1).sum())
    assert record["train_digits"] == 2 * (270 + 2 * 80) + ones + training.PEN_RENDERS * pen_counts["train"]

    # Another number of repeats is tried from the command line, on the same kept first stage.
    train_zoo.main([*args, "--out", str(tmp_path / "try"), "--usps-repeats", "1"])
    tried = json.loads((tmp_path / "try" / "mlp_1x50.json").read_text())
    assert tried["usps_validation"]["repeats"] == 1
    assert tried["train_digits"] == record["train_digits"] - 2 * 80 - int((y_usps == 1).sum())
