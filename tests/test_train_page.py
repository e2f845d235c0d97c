"""The Train page with streamlit.testing.v1.AppTest: settings, limits, a live job, its version on Draw.

The page hands jobs to the test session's real Ray instance (one training
slot) and reads them from a fresh database. A job of 60,000 digits in
batches of 8 trains for minutes, so the page can be looked at while it is
queued or training; another learner's such job keeps ours in the queue.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from model_zoo import estimates, jobs, store
from model_zoo.jobs import JobState
from model_zoo.training import TrainingSettings
from ui import models

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
TRAIN, DRAW = "app_pages/train.py", "app_pages/draw.py"
TIMEOUT = 60  # the first run imports TensorFlow
JOB_SECONDS = 240
LONG = dict(train_size=60_000, epochs=1, batch_size=8)  # 6,750 batches: minutes


pytestmark = pytest.mark.usefixtures("on_ray")


def open_train() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(TRAIN).run()
    assert not at.exception, at.exception
    return at


def wait_for(job_id: str, condition) -> jobs.JobView:
    deadline = time.monotonic() + JOB_SECONDS
    while not condition(view := jobs.view(job_id)):  # a worker process: nothing to wait on but its state
        assert time.monotonic() < deadline, f"timed out; the job is {view.state.value}: {view.error}"
        time.sleep(0.2)
    return view


def start(at: AppTest, **values) -> AppTest:
    for key, value in values.items():
        at.number_input(key=f"train_{key}").set_value(value)
    at.button(key="FormSubmitter:train_settings-Start training").click().run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def test_the_form_starts_with_settings_sized_for_a_class_and_the_tutorials_one_click_away():
    at = open_train()
    assert at.title[0].value == "Train"
    assert at.selectbox(key="train_arch").value == "mlp_1x50"
    assert at.radio(key="train_preset").value == "class"
    assert (
        at.number_input(key="train_epochs").value,
        at.number_input(key="train_width").value,
        at.number_input(key="train_hidden_layers").value,
    ) == (5, 50, 1)  # quick already: the same as the tutorial's
    at.selectbox(key="train_arch").set_value("mlp_5x500_dropout").run()
    assert (
        at.number_input(key="train_epochs").value,
        at.number_input(key="train_train_size").value,
        at.number_input(key="train_width").value,
        at.number_input(key="train_dropout").value,
    ) == (5, 12_000, 500, 0.2)
    at.radio(key="train_preset").set_value("tutorial").run()
    assert (at.number_input(key="train_epochs").value, at.number_input(key="train_train_size").value) == (25, 60_000)
    at.selectbox(key="train_arch").set_value("cnn").run()
    labels = [n.label for n in at.number_input]
    assert "Width (units per hidden layer)" not in labels and "Hidden layers" not in labels
    assert at.number_input(key="train_dropout").value == 0.0
    assert not at.checkbox(key="train_usps").value  # the tutorial's models: MNIST only
    at.selectbox(key="train_arch").set_value("cnn_robust").run()
    assert at.checkbox(key="train_augment").value and at.checkbox(key="train_usps").value
    at.radio(key="train_preset").set_value("class").run()
    assert at.checkbox(key="train_augment").value and not at.checkbox(key="train_usps").value
    assert at.number_input(key="train_train_size").value == 3_000
    assert not at.exception


def test_the_form_says_how_long_the_job_would_take_before_start():
    at = open_train()
    at.selectbox(key="train_arch").set_value("cnn").run()
    estimate = estimates.job_seconds(TrainingSettings.for_architecture("cnn", class_sized=True))
    line = next(c for c in texts(at.caption) if "of training on this server" in c)
    assert f"About {estimates.duration(estimate.seconds)} of training" in line and estimate.basis in line
    tutorial = estimates.job_seconds(TrainingSettings.for_architecture("cnn"))
    assert at.radio(key="train_preset").options == [
        f"sized for a class (about {estimates.duration(estimate.seconds)} here)",
        f"the tutorial's (about {estimates.duration(tutorial.seconds)} here)",
    ]
    at.radio(key="train_preset").set_value("tutorial").run()  # the form follows: a new estimate
    assert any(f"About {estimates.duration(tutorial.seconds)} of training" in c for c in texts(at.caption))


def test_settings_over_the_class_budget_are_refused_with_what_would_fit(monkeypatch):
    monkeypatch.setenv("DIGIT_ZOO_MAX_JOB_MINUTES", "1")
    at = open_train()
    at.selectbox(key="train_arch").set_value("cnn_robust").run()
    at.radio(key="train_preset").set_value("tutorial").run()
    warning = next(w for w in texts(at.warning) if "budget" in w)
    assert "over the class's budget of 1 min a job. Try" in warning
    at = start(at)  # the server refuses it too, with the same words, and queues nothing
    assert any("over the class's budget of 1 min a job. Try" in error for error in texts(at.error))
    assert jobs.views() == []
    at.radio(key="train_preset").set_value("class").run()
    assert not [w for w in texts(at.warning) if "budget" in w]
    assert any("and 1 min a job" in caption for caption in texts(at.caption))


def test_usps_option_is_off_where_the_server_has_no_usps(tmp_path, monkeypatch):
    monkeypatch.setenv("USPS_PATH", str(tmp_path / "absent.npz"))
    at = open_train()
    assert at.checkbox(key="train_usps").disabled
    assert "no usps.npz" in at.checkbox(key="train_usps").help


def test_pen_strokes_option_is_off_where_the_server_has_no_unipen_file(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIPEN_PATH", str(tmp_path / "absent.json.gz"))
    at = open_train()
    assert at.checkbox(key="train_unipen").disabled
    assert "no unipen_pen.json.gz" in at.checkbox(key="train_unipen").help


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("epochs", 500, "epochs must be between 1 and 100, got 500"),
        ("width", 5000, "width must be between 1 and 1024, got 5000"),
        ("train_size", 50, "training digits must be between 100 and 60000, got 50"),
        ("learning_rate", 3.0, "learning rate must be between 1e-05 and 1, got 3"),
    ],
)
def test_settings_outside_the_limits_are_an_error_and_start_nothing(key, value, message):
    at = start(open_train(), **{key: value})
    assert any(message in error for error in texts(at.error))
    assert jobs.views() == []


def test_limits_set_by_the_server_are_shown_and_enforced(monkeypatch):
    monkeypatch.setenv("DIGIT_ZOO_MAX_EPOCHS", "3")
    at = open_train()
    assert any("up to 3 epochs" in caption for caption in texts(at.caption))
    at = start(at)  # mlp_1x50's tutorial setting is 5 epochs
    assert any("epochs must be between 1 and 3, got 5" in error for error in texts(at.error))


def test_a_job_queues_trains_with_live_progress_stops_and_is_saved_under_a_name():
    other = jobs.submit(TrainingSettings.for_architecture("mlp_1x50", **LONG), owner="teacher-1")
    wait_for(other, lambda view: view.state == JobState.RUNNING)
    at = start(open_train(), **LONG)
    job_id = at.session_state["train_job"]
    assert at.query_params["job"] == job_id and jobs.view(job_id).settings.train_size == 60_000
    assert any("position 1" in info for info in texts(at.info))  # the teacher's job trains first
    assert any(re.search(r"should start in about .+ and end in about ", info) for info in texts(at.info))
    table = at.dataframe[0].value
    assert list(table["Who"]) == [f"{at.session_state['train_owner']} (you)", "teacher-1"]
    assert list(table["Queue"]) == ["1", "training now"]
    assert all(ends.startswith("about ") for ends in table["Ends in"])
    assert any("Training capacity: 1 training slot on 1 Ray node." in c for c in texts(at.caption))

    jobs.stop(other)
    wait_for(job_id, lambda view: view.state == JobState.RUNNING and view.step >= 1)
    at.run()
    assert not at.exception, at.exception
    progress = at.get("progress")
    assert progress and "Epoch 1 of 1 · batch" in progress[0].proto.text and "of 6750" in progress[0].proto.text
    assert {"Digits per second", "Time so far", "Time left"} <= {m.label for m in at.metric}
    charts = at.get("plotly_chart")
    assert len(charts) == 3 and '"y":[' in charts[0].proto.spec  # the per-batch loss so far

    at.button(key="train_stop").click().run()
    assert jobs.view(job_id).stop_requested
    wait_for(job_id, lambda view: view.state == JobState.STOPPED)
    at.run()
    assert any(
        re.match(r"Stopped during epoch 1 of 1 \(batch [\d,]+ of 6,750\)\.", warning) for warning in texts(at.warning)
    ), texts(at.warning)  # a partial epoch, not "1 of 1 epochs"
    at.text_input(key=f"train_save_name_{job_id}").input("my first model")
    at.button(key="train_save").click().run()
    assert not at.exception, at.exception
    assert any("Saved as **my-first-model**" in s for s in texts(at.success))
    assert store.scan().get("my-first-model").record["stopped_early"] is True


def test_a_tiny_job_finishes_by_itself_and_lands_on_draw():
    at = start(open_train(), train_size=500, epochs=2)  # two: a job of one has no steady epoch to time
    view = wait_for(at.session_state["train_job"], lambda view: not view.active)
    assert view.state == JobState.SAVED
    estimates.forget()  # this process read the timings before the job ended
    assert estimates.speed(view.settings).basis == "measured: 1 job of mlp_1x50 50x1 batch 128 trained here"
    at.run()
    assert any(f"Saved as **{view.saved_name}** — select it on Draw" in s for s in texts(at.success))
    assert any("measured: 1 job of mlp_1x50" in caption for caption in texts(at.caption))
    link = at.get("page_link")[0].proto
    assert view.saved_name in link.label and link.page == "draw"
    assert urllib.parse.parse_qs(link.query_string) == {"model": [view.saved_name]}
    downloads = [button.proto.label for button in at.get("download_button")]
    assert downloads == [f"Download {view.saved_name}.keras", "Download its model card", "TensorBoard logs (.zip)"]

    at.switch_page(DRAW).run()
    assert not at.exception, at.exception
    entry = store.scan().get(view.saved_name)
    assert models.label(entry) in at.selectbox(key="model").options


def test_a_job_with_the_pen_versions_trains_on_them():
    at = open_train()
    at.checkbox(key="train_strokes").check()
    at = start(at, train_size=500, epochs=1)
    view = wait_for(at.session_state["train_job"], lambda view: not view.active)
    assert view.state == JobState.SAVED, view.error
    record = store.scan().get(view.saved_name).record
    assert record["settings"]["strokes"] is True
    assert record["train_digits"] > 2 * 450  # each digit's pen version, and the 1s with a flag


def test_stop_then_discard():
    at = start(open_train(), **LONG)
    job_id = at.session_state["train_job"]
    wait_for(job_id, lambda view: view.state == JobState.RUNNING and view.step >= 1)
    jobs.stop(job_id, key=at.session_state["train_key"])
    wait_for(job_id, lambda view: view.state == JobState.STOPPED)
    at.run()
    at.button(key="train_discard").click().run()
    assert jobs.view(job_id).state == JobState.DISCARDED
    assert "Discarded." in texts(at.info)
    assert not [e for e in store.scan().entries if not e.shipped]


def test_a_reload_finds_the_job_by_its_link():
    at = start(open_train(), train_size=500, epochs=1)
    job_id = at.session_state["train_job"]
    wait_for(job_id, lambda view: not view.active)
    fresh = AppTest.from_file(str(APP), default_timeout=TIMEOUT)  # a new session, as after a reload
    fresh.query_params["job"] = job_id
    fresh.run()
    fresh.switch_page(TRAIN).run()
    assert any(f"Job {job_id}" in caption for caption in texts(fresh.caption))
    assert any("Saved as" in s for s in texts(fresh.success))

    gone = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    gone.query_params["job"] = "00000000"
    gone.run()
    gone.switch_page(TRAIN).run()
    assert any("There is no job `00000000` in the database" in info for info in texts(gone.info))


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("DIGIT_ZOO_MAX_EPOCHS", "many", "DIGIT_ZOO_MAX_EPOCHS='many' is not a whole number"),
        ("DIGIT_ZOO_TRAINING_SLOTS", "0", "DIGIT_ZOO_TRAINING_SLOTS must be at least 1, got 0"),
        ("DIGIT_ZOO_MAX_ACTIVE_JOBS", "thirty", "DIGIT_ZOO_MAX_ACTIVE_JOBS='thirty' is not a whole number"),
    ],
)
def test_a_misconfigured_server_says_which_setting(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    at = open_train()
    assert any(message in error for error in texts(at.error))


def open_job(job_id: str, key: str | None = None, learner: str | None = None) -> AppTest:
    """The job's page in a new browser session: a classmate's, or its owner's after a reload."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["job"] = job_id
    if key:
        at.query_params["key"] = key
    if learner:
        at.query_params["learner"] = learner
    at.run()
    at.switch_page(TRAIN).run()
    assert not at.exception, at.exception
    return at


def buttons(at: AppTest) -> set[str]:
    return {button.key for button in at.button}


def test_a_classmate_watches_a_job_only_its_owner_or_the_teacher_can_stop(monkeypatch):
    monkeypatch.setenv("DIGIT_ZOO_TEACHER_PASSWORD", "chalk")
    at = start(open_train(), **LONG)
    job_id, key, me = (at.session_state[name] for name in ("train_job", "train_key", "train_owner"))
    assert at.query_params["key"] == key  # the owner's link
    wait_for(job_id, lambda view: view.state == JobState.RUNNING)

    classmate = open_job(job_id)
    assert "train_stop" not in buttons(classmate)
    assert not [c for c in texts(classmate.caption) if "SQLite file" in c]  # the server's paths are not theirs
    assert any(f"This is {me}'s job: only they, or the teacher" in c for c in texts(classmate.caption))

    reloaded = open_job(job_id, key, at.query_params["learner"])  # the owner's own link, reloaded
    assert "train_stop" in buttons(reloaded) and reloaded.session_state["train_owner"] == me

    teacher = open_job(job_id)
    teacher.text_input(key="teacher_password").input("wrong").run()
    assert any("not the teacher password" in e for e in texts(teacher.error))
    teacher.text_input(key="teacher_password").input("chalk").run()
    assert "train_stop" in buttons(teacher)
    assert any("Jobs and versions are kept in the SQLite file" in c for c in texts(teacher.caption))
    teacher.button(key="train_stop").click().run()
    assert jobs.view(job_id).stop_requested
