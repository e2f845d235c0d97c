"""The class's challenge: only the teacher runs it, learners never see its digits, scores are what they say."""

from __future__ import annotations

import io

import keras
import numpy as np
import pytest

from model_zoo import architectures, challenge, class_digits, db, model_files, store
from tests.test_class_page import CLASS, FIXTURE
from tests.test_pages import DRAW, open_page, sign_in_as_teacher

pytestmark = pytest.mark.usefixtures("database")


def import_the_class() -> tuple[int, int]:
    class_digits.import_file("my class", FIXTURE.name, FIXTURE.read_bytes())
    return class_digits.split_sizes("my class")


def shown_count(at) -> int:
    caption = next(c.value for c in at.caption if " digits from " in c.value)
    return int(caption.split(" digits from ")[0])


def test_only_the_teacher_starts_and_ends_a_challenge():
    with pytest.raises(challenge.ChallengeError, match="Only the teacher can start"):
        challenge.start("my class", teacher=False)
    assert challenge.current("my class") is None
    assert challenge.start("my class", teacher=True).running and challenge.hides_held_out("my class")
    with pytest.raises(challenge.ChallengeError, match="Only the teacher can end"):
        challenge.end("my class", teacher=False)
    assert not challenge.end("my class", teacher=True).running
    assert not challenge.hides_held_out("my class")
    with pytest.raises(challenge.ChallengeError, match="no challenge running"):
        challenge.end("my class", teacher=True)


def test_while_it_runs_learners_neither_see_nor_export_the_held_out_digits(monkeypatch):
    monkeypatch.setenv("DIGIT_ZOO_TEACHER_PASSWORD", "secret")
    train, held = import_the_class()
    assert train and held
    at = open_page(DRAW)
    at.switch_page(CLASS).run()
    assert shown_count(at) == train + held  # no challenge yet: the learner sees every digit

    challenge.start("my class", teacher=True)
    at.run()
    assert shown_count(at) == train
    assert any("hidden while the challenge runs" in c.value for c in at.caption)
    with np.load(io.BytesIO(class_digits.export_npz("my class", held_out=False))) as exported:
        assert len(exported["y"]) == train

    sign_in_as_teacher(at, "secret")
    assert shown_count(at) == train + held  # the teacher sees them all
    assert any("held-out digits are left out" in c.value for c in at.caption)  # … but exports none
    at.button(key="class_challenge_end").click().run()
    assert not challenge.current("my class").running

    learner = open_page(DRAW)
    learner.switch_page(CLASS).run()
    assert shown_count(learner) == train + held  # revealed


def saved_version(name: str, seed: int, created: str | None = None) -> store.ZooEntry:
    keras.utils.set_random_seed(seed)
    model = architectures.ZOO["mlp_1x50"].build()
    record = {
        "arch": "mlp_1x50",
        "test_accuracy": 0.1 + seed / 100,
        "settings": {"epochs": 1},
        "params": model.count_params(),
    } | ({"created": created} if created else {})
    with db.engine().begin() as connection:
        return store.insert_version(connection, name, record, model_files.model_bytes(model))


def test_the_leaderboard_scores_each_version_of_the_challenge_on_the_held_out_digits():
    import_the_class()
    saved_version("before", 1, created="2020-01-01T00:00:00+00:00")  # saved before: not in it
    current = challenge.start("my class", teacher=True)
    saved_version("first", 2)
    saved_version("second", 3)
    (_, _), (x, y) = class_digits.split_arrays("my class")
    listing = store.scan()
    models = {entry.name: model_files.read_model(entry.model_file()) for entry in listing.entries}
    rows = challenge.leaderboard(listing.entries, models, x, y, current)

    assert {row.name for row in rows if not row.reference} == {"first", "second"}
    assert {row.name for row in rows if row.reference} == set(store.scan_shipped().names)
    assert [row.score for row in rows] == sorted((row.score for row in rows), reverse=True)
    for row in rows:  # each score, computed again with plain Keras
        plain = keras.models.load_model(listing.get(row.name).model_file())
        expected = np.mean(plain.predict(x.astype(np.float32) / 255, verbose=0).argmax(axis=1) == y)
        assert row.score == pytest.approx(expected)
    hardest = challenge.unbeaten(models, x, y)
    right = np.array(
        [model.predict_batch(x.astype(np.float32) / 255).argmax(axis=1) == y for model in models.values()]
    )  # (models, digits)
    assert list(hardest) == list(np.flatnonzero(~right.any(axis=0)))
