"""The Zoo page (app_pages/zoo.py) driven by AppTest, on the shipped models."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from model_zoo import db, store
from model_zoo.architectures import TUTORIAL_MODELS
from ui import models

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app_pages" / "zoo.py")
TIMEOUT = 600  # the first run may score every model on 52,000 distorted digits


@pytest.fixture
def shipped():
    entries = [entry for entry in store.scan().entries if entry.shipped]
    assert entries, "no shipped models in model_zoo/trained (python -m scripts.train_zoo)"
    return entries


def run_page(at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def table_models(at: AppTest) -> list[str]:
    """The model column of the zoo table, the page's first dataframe (AppTest keeps no df keys)."""
    return list(at.dataframe[0].value["model"])


def test_page_runs_on_the_shipped_models(mnist, shipped, database):
    at = run_page()
    assert at.title[0].value == "Zoo"
    assert table_models(at) == [entry.name for entry in shipped]
    trained_on = dict(zip(table_models(at), at.dataframe[0].value["trained on"]))
    assert {trained_on[name] for name in TUTORIAL_MODELS} == {"MNIST"}  # the lesson: MNIST only
    assert trained_on["cnn_robust"] == ("MNIST + USPS train, then MNIST + USPS train + pen strokes + UNIPEN writers")
    pen = dict(zip(table_models(at), at.dataframe[0].value["pen"]))  # UNIPEN's test writers, from the records
    assert pen == {entry.name: entry.record["pen_accuracy"] for entry in shipped}
    assert at.selectbox(key="zoo_model").options == [models.label(entry) for entry in shipped]
    charts = at.get("plotly_chart")
    assert len(charts) >= 1 + 4 + 1  # scatter, four robustness curves, at least one per-model chart
    for entry in shipped:  # every model's close-up renders, and none can be deleted
        at.selectbox(key="zoo_model").set_value(entry.name)
        run_page(at)
        assert not [b for b in at.button if b.key == "zoo_delete"]
        assert any("cannot be deleted" in caption.value for caption in at.caption)
        assert any(markdown.value.startswith(f"# {entry.name}\n") for markdown in at.markdown)  # its card


def test_the_distorted_digits_are_made_only_once_their_panel_is_opened(mnist, shipped, database):
    at = run_page()
    panel = next(e for e in at.expander if e.label == "What the distorted digits look like")
    assert not panel.get("image")  # closed: nothing distorted (that would load TensorFlow)
    at.session_state["zoo_distorted"] = True  # what a click on the panel's header sends
    run_page(at)
    panel = next(e for e in at.expander if e.label == "What the distorted digits look like")
    assert len(panel.get("image")) == 4  # one row of examples per distortion
    assert [c.value for c in panel.caption][0] == "Shift (pixels)"


def test_page_without_mnist_still_shows_the_table(shipped, database, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_PATH", str(tmp_path / "missing" / "mnist.npz"))
    at = run_page()
    assert any("MNIST_PATH" in info.value for info in at.info)
    assert table_models(at) == [entry.name for entry in shipped]


def test_deleting_a_user_version(mnist, shipped, database):
    source = shipped[0]
    version = f"{source.name}@test"
    with db.engine().begin() as connection:  # as a learner's saved job would be
        store.insert_version(
            connection,
            version,
            source.record,
            source.model_file().read_bytes(),
            owner_key=db.hashed_key("learner-secret"),
        )

    at = run_page()
    assert table_models(at) == [entry.name for entry in shipped] + [version]
    at.selectbox(key="zoo_model").set_value(version)
    run_page(at)
    assert "zoo_delete" not in {button.key for button in at.button}  # a classmate's session
    assert any(c.value.startswith("Only the learner who trained this version") for c in at.caption)
    at.session_state["job_keys"] = ["learner-secret"]  # the learner's, as the Train page keeps it
    run_page(at)
    assert at.button(key="zoo_delete").disabled  # not before the confirmation
    at.checkbox(key="zoo_confirm_delete").check()
    run_page(at)
    at.button(key="zoo_delete").click()
    run_page(at)

    assert version not in store.scan().names
    assert table_models(at) == [entry.name for entry in shipped]
    assert any(f"Deleted {version}" in message.value for message in at.success)
    assert at.selectbox(key="zoo_model").value == shipped[0].name


def test_a_wrong_usps_path_is_a_warning(shipped, database, tmp_path, monkeypatch):
    monkeypatch.setenv("USPS_PATH", str(tmp_path / "nowhere.npz"))
    monkeypatch.setenv("MNIST_PATH", str(tmp_path / "missing" / "mnist.npz"))  # nothing to score: quick
    at = run_page()
    assert any("USPS_PATH" in warning.value for warning in at.warning)
    assert table_models(at) == [entry.name for entry in shipped]


def test_where_there_is_a_teacher_only_the_teacher_deletes(mnist, shipped, database, monkeypatch):
    monkeypatch.setenv("DIGIT_ZOO_TEACHER_PASSWORD", "chalk")
    source = shipped[0]
    with db.engine().begin() as connection:
        store.insert_version(connection, "learners", source.record, source.model_file().read_bytes())
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)  # the app: its sidebar signs in
    at.run()
    at.switch_page("app_pages/zoo.py")
    run_page(at)
    at.selectbox(key="zoo_model").set_value("learners")
    run_page(at)
    assert "zoo_delete" not in {button.key for button in at.button}
    assert any("or the teacher can delete it (sign in from the sidebar)" in c.value for c in at.caption)
    at.text_input(key="teacher_password").input("chalk")
    run_page(at)
    assert "zoo_delete" in {button.key for button in at.button}
