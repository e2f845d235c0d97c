"""model_zoo.evaluation and scripts.evaluate: scores, robustness curves, records as a cache."""

from __future__ import annotations

import gzip
import json

import keras
import numpy as np
import pytest

from model_zoo import architectures, config, data, evaluation, model_files, store, strokes
from scripts import evaluate
from tests.archives import read_back

SMALL = 500  # test digits for the quick checks


@pytest.fixture(scope="module")
def mlp(mnist):
    """The shipped mlp_1x50, or one trained here for an epoch when it is not there yet."""
    shipped = config.TRAINED_DIR / "mlp_1x50.keras"
    if shipped.is_file():
        return model_files.load_model(shipped)
    (x_train, y_train), _ = mnist
    keras.utils.set_random_seed(0)
    model = architectures.build_mlp("mlp_tiny", 1, 50, 0.0)
    model.compile("adam", "categorical_crossentropy")
    model.fit(
        data.to_float(x_train[:10_000]),
        keras.utils.to_categorical(y_train[:10_000], 10),
        epochs=2,
        batch_size=128,
        verbose=0,
    )
    return model


@pytest.fixture
def model_copy(mnist, mlp, tmp_path):
    """A model file in tmp_path (never a shipped record), with a training-like record."""
    path = tmp_path / "copy.keras"
    mlp.save(path)
    record = {
        "arch": "mlp_1x50",
        "name": "copy",
        "params": int(mlp.count_params()),
        "test_accuracy": 0.95,
        "history": {},
        "seconds_per_epoch": [1.0],
    }
    model_files.write_record(path.with_suffix(".json"), record)
    return store.ZooEntry("copy", record, shipped=False, file=path)


def test_confusion_matrix_counts_every_digit_once(mnist, mlp):
    _, (x_test, y_test) = mnist
    x, y = x_test[:SMALL], y_test[:SMALL]
    counts = evaluation.confusion_matrix(mlp, x, y)
    assert counts.shape == (10, 10) and counts.dtype.kind == "i"
    assert counts.sum() == SMALL
    assert np.array_equal(counts.sum(axis=1), np.bincount(y, minlength=10))  # rows are true digits
    assert np.trace(counts) / SMALL == pytest.approx(evaluation.accuracy(mlp, x, y))


def test_mistakes_are_the_first_wrong_digits(mnist, mlp):
    _, (x_test, y_test) = mnist
    x, y = x_test[:SMALL], y_test[:SMALL]
    wrong = evaluation.mistakes(mlp, x, y, limit=5)
    errors = SMALL - np.trace(evaluation.confusion_matrix(mlp, x, y))
    assert len(wrong) == min(5, errors)
    assert np.all(np.diff(wrong.indices) > 0)
    assert np.array_equal(wrong.true, y[wrong.indices])
    assert np.all(wrong.predicted != wrong.true)
    assert np.all((wrong.confidence > 0.1) & (wrong.confidence <= 1))  # argmax of 10: at least 0.1
    again = evaluation.Mistakes.from_record(wrong.to_record())
    assert np.array_equal(again.indices, wrong.indices)


def test_fast_model_and_keras_model_score_the_same(mnist, mlp):
    _, (x_test, y_test) = mnist
    fast = read_back(mlp)
    assert evaluation.accuracy(fast, x_test[:SMALL], y_test[:SMALL]) == evaluation.accuracy(
        mlp, x_test[:SMALL], y_test[:SMALL]
    )


def test_usps_accuracy_is_none_without_the_file(mlp, monkeypatch):
    monkeypatch.delenv("USPS_PATH", raising=False)
    monkeypatch.setattr(data, "_usps_defaults", lambda: [])
    assert evaluation.usps_accuracy(mlp) is None


def test_usps_accuracy_on_real_handwriting(mlp, usps_path):
    assert 0.5 < evaluation.usps_accuracy(mlp) <= 1


def test_robustness_curves_shape_and_the_mlp_lesson(mnist, mlp):
    _, (x_test, y_test) = mnist
    curves = evaluation.robustness_curves(mlp, x_test, y_test)
    setup = evaluation.ROBUSTNESS_SETUP
    assert list(curves) == list(evaluation.DISTORTIONS)
    for distortion, curve in curves.items():
        assert [value for value, _ in curve] == setup[distortion]
        assert all(0 <= score <= 1 for _, score in curve)
    # The undistorted point is the same digits in all four curves.
    plain = {
        dict(curves["shift"])[0],
        dict(curves["rotation"])[0],
        dict(curves["scale"])[1.0],
        dict(curves["thickness"])[0],
    }
    x_sub, y_sub = evaluation.robustness_subset(x_test, y_test)
    assert len(x_sub) == setup["digits"]
    assert plain == {round(evaluation.accuracy(mlp, x_sub, y_sub), 4)}
    # An MLP learns pixel places: moved digits defeat it.
    shift = [score for _, score in curves["shift"]]
    assert shift[-1] < shift[0] - 0.5
    assert all(later <= earlier + 0.01 for earlier, later in zip(shift, shift[1:]))


def test_distorted_sets_are_built_once(mnist, mlp, monkeypatch):
    _, (x_test, y_test) = mnist
    builds = []
    build = evaluation._build_sets
    monkeypatch.setattr(evaluation, "_sets_cache", {})
    monkeypatch.setattr(evaluation, "_build_sets", lambda x, y: builds.append(1) or build(x, y))
    first = evaluation.robustness_curves(mlp, x_test, y_test)
    assert evaluation.robustness_curves(read_back(mlp), x_test, y_test) == first
    assert len(builds) == 1


def test_ensure_evaluated_computes_once_and_stores_in_the_record(mnist, model_copy, monkeypatch):
    _, test = mnist
    first = evaluation.ensure_evaluated(model_copy, mnist=test)
    stored = model_files.read_record(model_copy.record_path)
    for field in evaluation.EVALUATED_FIELDS:
        assert field in stored and stored[field] == first.record[field]
    assert np.array(stored["confusion_matrix"]).sum() == len(test[1])
    assert len(stored["mistakes"]) == evaluation.MISTAKES_KEPT
    assert ("usps_accuracy" in stored) == (data.find_usps() is not None)

    def no_work(*args, **kwargs):
        raise AssertionError("a warm record was evaluated again")

    monkeypatch.setattr(evaluation, "evaluate_fields", no_work)
    monkeypatch.setattr(model_files, "read_model", no_work)
    warm = model_copy.with_record(stored)
    assert evaluation.ensure_evaluated(warm) is warm


def test_a_changed_robustness_setup_is_recomputed(model_copy):
    record = model_copy.record | {
        "robustness": {},
        "robustness_setup": {"version": 0},
        "confusion_matrix": [],
        "mistakes": [],
        "usps_accuracy": 0.9,
        "drawn_set_sha256": evaluation.drawn_set().sha256,
    }
    entry = model_copy.with_record(record)
    assert evaluation.missing_fields(entry, usps=True) == ["robustness"]
    assert evaluation.missing_fields(entry, usps=True, recompute=True) == [
        "robustness",
        "confusion_matrix",
        "usps_accuracy",
        "drawn",
    ]
    redrawn = entry.with_record(record | {"drawn_set_sha256": "another set"})
    assert evaluation.missing_fields(redrawn, usps=True) == ["robustness", "drawn"]


def test_ensure_evaluated_without_save_leaves_the_file_alone(mnist, model_copy):
    before = model_copy.record_path.read_text()
    entry = evaluation.ensure_evaluated(model_copy, mnist=mnist[1], save=False)
    assert "robustness" in entry.record
    assert model_copy.record_path.read_text() == before


def test_layer_table_adds_up(mlp):
    rows = evaluation.layer_table(read_back(mlp))
    assert [row["layer"] for row in rows] == [layer.name for layer in mlp.layers]
    assert sum(row["params"] for row in rows) == mlp.count_params()
    assert rows[-1]["output shape"] == "(N, 10)"


def test_evaluate_script_prints_one_row_per_model(mnist, database, capsys):
    listing = store.scan()
    before = {entry.record_path: entry.record_path.read_text() for entry in listing.entries}
    evaluate.main(["--json"])
    output = json.loads(capsys.readouterr().out)
    assert [row["model"] for row in output["models"]] == listing.names
    assert all(row["mnist_test"] > 0.9 for row in output["models"])
    assert all(0.5 < row["drawn"] <= 1 for row in output["models"])  # the drawn set is committed
    assert [row["model"] for row in output["drawn_overshoot"]] == listing.names
    evaluate.main([])
    zoo_table, overshoot_title, overshoot_table = capsys.readouterr().out.strip().split("\n\n")
    assert len(zoo_table.splitlines()) == 2 + len(listing.entries) and "| drawn |" in zoo_table
    assert overshoot_table.splitlines()[0] == "| model | 0 | 6 | 9 |"
    assert {entry.record_path: entry.record_path.read_text() for entry in listing.entries} == before


def test_evaluate_script_updates_records(mnist, model_copy, monkeypatch, database, capsys):
    # The copy stands in for the shipped folder, so nothing under model_zoo/trained is touched.
    monkeypatch.setattr(config, "TRAINED_DIR", model_copy.model_file().parent)
    evaluate.main(["--update-records", "--robustness", "--json"])
    output = json.loads(capsys.readouterr().out)
    assert [row["model"] for row in output["models"]] == ["copy"]
    stored = model_files.read_record(model_copy.record_path)
    assert stored["robustness"] == output["robustness"]["copy"]
    assert stored["robustness_setup"] == evaluation.ROBUSTNESS_SETUP


def test_evaluate_script_help():
    with pytest.raises(SystemExit) as exit_info:
        evaluate.parse_args(["--help"])
    assert exit_info.value.code == 0


def test_evaluate_script_rejects_an_unknown_model(database):
    with pytest.raises(SystemExit, match="Unknown model 'mlp_5x5'. Expected one of"):
        evaluate.main(["--models", "mlp_5x5"])


def test_drawn_set_holds_the_styles_the_issue_asks_for():
    drawn = evaluation.drawn_set()
    assert len(drawn.x) >= 300 and drawn.x.shape[1:] == (28, 28)
    assert sorted(set(drawn.y.tolist())) == list(range(10))
    for digit in evaluation.OVERSHOOT_DIGITS:  # enough for 98 % to mean at most one miss in 50
        assert (drawn.overshoot & (drawn.y == int(digit))).sum() >= 50
    styles = set(drawn.shape.tolist())
    assert {"4", "4_closed", "4_open_two", "5", "5_flag_first", "7_cross", "1_euro"} <= styles
    assert (drawn.x.reshape(len(drawn.x), -1).max(axis=1) == 255).all()  # each one a whole digit


def test_drawn_scores_count_the_overshooting_loops(mlp):
    drawn = evaluation.drawn_set()
    scores = evaluation.drawn_scores(mlp, drawn)
    right = evaluation.predicted_digits(mlp, drawn.x) == drawn.y
    assert scores["drawn_accuracy"] == pytest.approx(right.mean(), abs=1e-4)
    zeros = drawn.overshoot & (drawn.y == 0)
    assert scores["drawn_overshoot_accuracy"]["0"] == pytest.approx(right[zeros].mean(), abs=1e-4)
    assert scores["drawn_set_sha256"] == data.file_sha256(evaluation.DRAWN_SET)


def test_a_damaged_drawn_set_says_how_to_redraw_it(tmp_path):
    broken = tmp_path / "drawn_set.npz"
    broken.write_bytes(b"not an npz")
    with pytest.raises(
        data.DataError, match=r"drawn_set\.npz is missing or damaged.*python -m tests\.browser\.drawn_set"
    ):
        evaluation.drawn_set(broken)


@pytest.mark.parametrize("name", architectures.ZOO)
def test_shipped_records_hold_their_drawn_scores(name):
    entry = store.scan_shipped().get(name)
    scores = evaluation.drawn_scores(model_files.load_model(entry.model_file()), evaluation.drawn_set())
    assert {key: entry.record.get(key) for key in scores} == scores, (
        "stale drawn scores: python -m scripts.evaluate --update-records"
    )
    assert min(scores["drawn_overshoot_accuracy"].values()) >= 0.98  # issue 12's floor for loops


def test_the_pen_column_scores_the_test_writers_only(model_copy, mlp, pen_digits, tmp_path, monkeypatch):
    """Only the pen test writers' digits are scored; asked for, and rescored when the setup changes."""
    monkeypatch.setattr(strokes, "CACHE_DIR", tmp_path / "strokes")
    parts = data.pen_split(pen_digits)
    few = parts["train"][:15] + parts["test"][:40] + parts["validation"][:15]
    path = tmp_path / "few.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump([{"label": d.label, "writer": d.writer, "strokes": [s.tolist() for s in d.strokes]} for d in few], f)
    assert "pen" not in evaluation.missing_fields(model_copy, usps=False)  # only when asked
    assert "pen" in evaluation.missing_fields(model_copy, usps=False, pen=True)
    scores = evaluation.evaluate_fields(mlp, ["pen"], pen_path=path)
    x, y = strokes.pen_digit_images(parts["test"][:40], seed=evaluation.PEN_SETUP["seed"])
    assert scores["pen_accuracy"] == round(evaluation.accuracy(mlp, x, y), 4)
    assert scores["pen_test_digits"] == 40 and scores["pen_setup"] == evaluation.PEN_SETUP
    scored = model_copy.with_record(model_copy.record | scores)
    assert "pen" not in evaluation.missing_fields(scored, usps=False, pen=True)
    assert evaluation.table_row(scored)["pen"] == scores["pen_accuracy"]
    stale = scored.with_record(scored.record | {"pen_setup": {"version": 0}})
    assert "pen" in evaluation.missing_fields(stale, usps=False, pen=True)
