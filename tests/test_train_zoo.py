"""scripts.train_zoo's two stages, on a few hundred real MNIST digits (the shipped run takes ~30 min)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from model_zoo import architectures, evaluation, store, strokes
from scripts import train_zoo


def test_a_pen_finished_model_ships_with_both_stages_in_its_record(mnist, tmp_path, monkeypatch, capsys):
    (x_train, y_train), (x_test, y_test) = mnist
    few = tmp_path / "few.npz"
    np.savez(few, x_train=x_train[:600], y_train=y_train[:600], x_test=x_test[:100], y_test=y_test[:100])
    monkeypatch.setattr(strokes, "CACHE_DIR", tmp_path / "strokes")
    quick = dataclasses.replace(architectures.ZOO["mlp_1x50"], epochs=2, pen_finish_epochs=1)
    monkeypatch.setitem(architectures.ZOO, "mlp_1x50", quick)

    train_zoo.main(["--models", "mlp_1x50", "--data", str(few), "--out", str(tmp_path / "zoo")])

    record = json.loads((tmp_path / "zoo" / "mlp_1x50.json").read_text())
    first = record["first_stage"]
    assert first["epochs_done"] == 2 and first["settings"]["strokes"] is False
    assert first["train_digits"] + first["val_digits"] == 600
    assert record["epochs_done"] == 1
    assert record["settings"] | {"epochs": 2} == first["settings"] | {
        "strokes": True, "fine_tune": True, "learning_rate": quick.learning_rate / 10}
    ones = int((y_train[:600] == 1).sum())
    assert record["train_digits"] + record["val_digits"] == 2 * 600 + ones  # pen versions, flagged 1s
    assert "batch_loss" not in first and record["batch_loss"]  # the curve of the finish only
    assert evaluation.trained_on(record["settings"], first) == "MNIST, then MNIST + pen strokes"
    # The model file is the finished one, and it is a zoo model like any other.
    model = store.load_model(tmp_path / "zoo" / "mlp_1x50.keras")
    assert evaluation.accuracy(model, x_test, y_test) > 0.5
    assert "| mlp_1x50 | 39,760 | 3 |" in capsys.readouterr().out
