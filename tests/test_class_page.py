"""The keep buttons (Draw, Compare) and the Class page, with streamlit.testing.v1.AppTest.

Drawings reach the canvas as in tests/test_pages.py (the PNG the component
would send); the digits go to a fresh SQLite database per test.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

from model_zoo import class_digits, store
from tests.test_pages import COMPARE, DRAW, draw_on_canvas, open_page, seven, sign_in_as_teacher

CLASS = "app_pages/class_digits.py"
FIXTURE = Path(__file__).parent / "fixtures" / "class_digits.npz"

pytestmark = pytest.mark.usefixtures("database")


def keep_buttons(at, key: str) -> list:
    return [b for b in at.button if str(b.key).startswith(f"{key}_keep_")]


@pytest.mark.parametrize("page, key", [(DRAW, "draw"), (COMPARE, "compare")])
def test_keep_stores_the_drawing_once_clears_the_canvas_and_counts(page, key):
    at = open_page(page)
    assert keep_buttons(at, key) == []  # nothing to keep before a drawing
    draw_on_canvas(at, key, seven())
    buttons = keep_buttons(at, key)
    assert [b.label for b in buttons][0] == "7" and sorted(b.label for b in buttons) == list("0123456789")
    assert buttons[0].proto.type == "primary"  # the models' reading, marked
    at.text_input(key=f"{key}_learner").set_value("Ada").run()
    at.button(key=f"{key}_keep_7").click().run()
    assert not at.exception, at.exception

    [kept] = class_digits.digits("my class")
    assert (kept.label, kept.learner, kept.pen, kept.source) == (7, "Ada", 12, "drawn")
    assert kept.readings["cnn"][0] == 7 and 0 < kept.readings["cnn"][1] <= 1
    assert set(kept.readings) >= {"mlp_1x50", "cnn"}
    assert class_digits.picture(kept.id)[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(s.value.startswith("Kept as a 7") for s in at.success)
    assert any(info.value.startswith("Draw a digit") for info in at.info)  # the canvas is empty again
    assert any("Your digits in `my class`: 1 (0–9: 0, 0, 0, 0, 0, 0, 0, 1, 0, 0)" in c.value for c in at.caption)

    # The same drawing again (a second click that raced the clear): stored once.
    at.session_state[f"{key}_version"] = 0
    draw_on_canvas(at, key, seven())
    at.button(key=f"{key}_keep_3").click().run()
    assert any(info.value.startswith("That drawing is kept already") for info in at.info)
    assert len(class_digits.digits("my class")) == 1


def test_a_bad_learner_name_is_refused_with_what_is_allowed():
    at = open_page(DRAW)
    draw_on_canvas(at, "draw", seven())
    at.text_input(key="draw_learner").set_value("<b>Ada</b>").run()
    at.button(key="draw_keep_7").click().run()
    assert any("A learner name is 1 to 40 letters" in e.value for e in at.error)
    assert class_digits.digits("my class") == []


def open_class(**query) -> object:
    at = open_page(DRAW, **query)
    at.switch_page(CLASS).run()
    assert not at.exception, at.exception
    return at


def test_an_empty_class_says_how_to_fill_it():
    at = open_class()
    assert at.title[0].value == "Class"
    assert any(info.value.startswith("No digits in `my class` yet") for info in at.info)


def test_the_class_page_reads_the_class_with_every_model():
    class_digits.import_file("my class", FIXTURE.name, FIXTURE.read_bytes())
    at = open_class()
    n = len(class_digits.digits("my class"))
    assert any(c.value.startswith(f"{n} digits from 1 learner") for c in at.caption)
    table = at.table[0].value
    assert "cnn" in list(table["Model"]) and len(table) >= 7
    assert all(value.endswith("%") for value in table["On the class's digits"])
    x, y = class_digits._all_arrays("my class")
    assert len(at.get("plotly_chart")) == 2  # class against MNIST, the confusion matrix

    # Only the misread ones: every thumbnail left is framed as a mistake, and counts match the table.
    at.checkbox(key="class_only_wrong").check().run()
    model = at.selectbox(key="class_model").value
    misread = int(table.set_index("Model").loc[model, "Misread"])
    shown = [c for c in at.caption if c.value.startswith("reads ")]  # each thumbnail's caption
    assert len(shown) == misread < n  # fewer than 40 of any digit: all shown


def test_without_a_teacher_password_the_server_makes_one_and_only_its_holder_manages_the_class(capfd):
    class_digits.import_file("my class", "a.npz", _small_npz())
    bo = class_digits.keep("my class", label=5, image=np.eye(28, dtype=np.float32), learner="Bo", owner_key="bo")
    at = open_class()  # no DIGIT_ZOO_TEACHER_PASSWORD: the first start made one and printed it once
    printed = re.findall(r"Teacher password: (\S+)", capfd.readouterr().err)
    assert len(printed) == 1
    assert not [b for b in at.button if str(b.key).startswith("class_delete_")]  # not even imported ones
    assert not [b for b in at.button if b.key in ("class_relabel", "class_import", "class_erase", "class_create")]
    assert any("Only the teacher exports" in c.value for c in at.caption)

    at.text_input(key="teacher_password").input("a guess").run()
    assert any("not the teacher password" in e.value for e in at.error)
    sign_in_as_teacher(at, printed[0])
    at.button(key=f"class_delete_{bo.id}").click().run()  # the teacher deletes anyone's
    first = class_digits.digits("my class")[0]
    at.button(key=f"class_delete_{first.id}").click().run()
    assert {bo.id, first.id}.isdisjoint(d.id for d in class_digits.digits("my class"))
    target = class_digits.digits("my class")[0]
    at.selectbox(key="class_relabel_digit").set_value(target.id)
    at.selectbox(key="class_relabel_label").set_value(9)
    at.button(key="class_relabel").click().run()
    assert {d.id: d.label for d in class_digits.digits("my class")}[target.id] == 9
    open_class()
    assert "Teacher password" not in capfd.readouterr().err  # once, not at every start


def test_with_a_teacher_password_a_learner_deletes_only_their_own(monkeypatch):
    monkeypatch.setenv("DIGIT_ZOO_TEACHER_PASSWORD", "secret")
    class_digits.import_file("my class", "a.npz", _small_npz())
    at = open_page(DRAW)
    draw_on_canvas(at, "draw", seven())
    at.button(key="draw_keep_7").click().run()
    mine = next(d for d in class_digits.digits("my class") if d.source == "drawn")
    at.switch_page(CLASS).run()
    deletable = [b.key for b in at.button if str(b.key).startswith("class_delete_")]
    assert deletable == [f"class_delete_{mine.id}"]
    assert not [b for b in at.button if b.key in ("class_relabel", "class_import")]
    assert any("Only the teacher exports" in c.value for c in at.caption)
    at.button(key=f"class_delete_{mine.id}").click().run()
    assert all(d.source != "drawn" for d in class_digits.digits("my class"))


def test_the_teacher_names_a_class_and_keeps_go_there(monkeypatch):
    monkeypatch.setenv("DIGIT_ZOO_TEACHER_PASSWORD", "chalk")
    at = open_class()
    sign_in_as_teacher(at, "chalk")
    at.text_input(key="class_new_name").set_value("7B 2026")
    at.button(key="class_create").click().run()
    assert class_digits.classes() == ["my class", "7B 2026"]
    assert at.selectbox(key="class_page_class").value == "7B 2026"
    at.switch_page(DRAW).run()
    draw_on_canvas(at, "draw", seven())
    assert at.selectbox(key="draw_class").value == "7B 2026"
    at.button(key="draw_keep_7").click().run()
    assert len(class_digits.digits("7B 2026")) == 1 and class_digits.digits("my class") == []


def _small_npz() -> bytes:
    x = np.stack([np.eye(28, dtype=np.uint8) * (20 + i) for i in range(6)])  # six distinct images
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=np.arange(6, dtype=np.uint8))
    return buffer.getvalue()


@pytest.mark.usefixtures("on_ray")
def test_the_train_page_fine_tunes_on_the_class_and_shows_its_held_out_digits_before_and_after():
    from tests.test_train_page import TRAIN, wait_for

    class_digits.import_file("my class", FIXTURE.name, FIXTURE.read_bytes())
    train, held_out = class_digits.split_sizes("my class")
    at = open_page(DRAW)
    at.switch_page(TRAIN).run()
    at.radio(key="train_fine_tune").set_value(True).run()
    assert at.number_input(key="train_learning_rate").value == 1e-4
    assert at.number_input(key="train_train_size").value == 10_000
    assert not [n for n in at.number_input if n.key == "train_width"]  # the shipped model's layers
    at.selectbox(key="train_class_digits").set_value("my class")
    at.number_input(key="train_train_size").set_value(1000)
    at.number_input(key="train_epochs").set_value(1)
    at.button(key="FormSubmitter:train_settings-Start training").click().run()
    assert not at.exception, at.exception
    job = wait_for(at.session_state.train_job, lambda view: view.state.value == "saved")
    assert job.settings.fine_tune and job.settings.class_digits == "my class"
    assert len(job.history["class_accuracy"]) == 1

    at.run()
    record = next(e for e in store.scan().entries if e.name == job.saved_name).record
    result = record["class_digits"]
    assert (result["train"], result["held_out"]) == (train, held_out)
    assert 0 <= result["held_out_accuracy_before"] <= 1 and 0 <= result["held_out_accuracy"] <= 1
    assert record["test_accuracy"] > 0.9  # one epoch on 1,000 digits: only the shipped start reads MNIST so well
    assert any(
        info.value.startswith(
            f"On the {held_out} held-out digits of `my class`: the shipped mlp_1x50 "
            f"read {result['held_out_accuracy_before']:.1%}"
        )
        for info in at.info
    )


def test_the_teacher_deletes_a_whole_class(monkeypatch):
    monkeypatch.setenv("DIGIT_ZOO_TEACHER_PASSWORD", "chalk")
    class_digits.create_class("last year")
    class_digits.import_file("last year", "a.npz", _small_npz())
    class_digits.import_file("my class", "a.npz", _small_npz())
    at = open_class()
    sign_in_as_teacher(at, "chalk")
    at.selectbox(key="class_page_class").set_value("last year").run()
    assert at.button(key="class_erase").disabled
    at.checkbox(key="class_erase_confirm").check().run()
    at.button(key="class_erase").click().run()
    assert any("Deleted `last year` and its 6 digits" in s.value for s in at.success)
    assert class_digits.classes() == ["my class"] and class_digits.digits("last year") == []
    assert len(class_digits.digits("my class")) == 6
