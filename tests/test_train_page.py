"""The Train page with streamlit.testing.v1.AppTest: settings, limits, a live job, its version on Draw.

The page trains on the process-wide job runner, so a test can hold a job at a
given batch (a gate in its progress callback) and look at the page while it
is queued or running, then let it go on.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from model_zoo import jobs, store
from model_zoo.training import TrainingSettings

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
TRAIN, DRAW = "app_pages/train.py", "app_pages/draw.py"
TIMEOUT = 60  # the first run imports TensorFlow


@pytest.fixture
def runner(mnist, user_dir):
    """The page's runner, with no job of an earlier test left running."""
    runner = jobs.shared_runner()
    for job in runner.jobs():
        if job.state in jobs.ACTIVE:
            runner.stop(job)
            runner.wait(job, timeout=120)
    return runner


def open_train() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(TRAIN).run()
    assert not at.exception, at.exception
    return at


def hold_at_batch(job: jobs.Job, step: int) -> threading.Event:
    """Pause the job's training thread after batch ``step`` until the returned gate opens."""
    gate, report = threading.Event(), job.on_batch

    def on_batch(epoch, batch, loss):
        report(epoch, batch, loss)
        if epoch == 0 and batch == step:
            gate.wait(60)

    job.on_batch = on_batch
    return gate


def start_held(runner: jobs.JobRunner, at: AppTest, step: int, **values) -> tuple[jobs.Job, threading.Event]:
    """Start a job from the page and hold it after batch ``step``.

    Another learner's held job keeps the server busy meanwhile, so ours is
    still queued, not yet training, when its progress callback is wrapped.
    """
    other = runner.submit(TrainingSettings.for_architecture("mlp_1x50", epochs=2, train_size=20_000),
                          owner="teacher-1")
    release_other = hold_at_batch(other, 1)
    start(at, **values)
    job = runner.get(at.session_state["train_job"])
    assert job.state == jobs.QUEUED
    release = hold_at_batch(job, step)
    runner.stop(other)
    release_other.set()
    runner.wait(other, timeout=120)
    if other.state == jobs.STOPPED:
        runner.discard(other)
    until(lambda: runner.view(job).step == step)
    return job, release


def until(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # a training thread we do not own: nothing to wait on but its state
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start(at: AppTest, **values) -> AppTest:
    for key, value in values.items():
        at.number_input(key=f"train_{key}").set_value(value)
    at.button(key="FormSubmitter:train_settings-Start training").click().run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def test_the_form_starts_with_the_tutorial_settings_of_the_architecture(runner):
    at = open_train()
    assert at.title[0].value == "Train"
    assert at.selectbox(key="train_arch").value == "mlp_1x50"
    assert (at.number_input(key="train_epochs").value, at.number_input(key="train_width").value,
            at.number_input(key="train_hidden_layers").value) == (5, 50, 1)
    at.selectbox(key="train_arch").set_value("mlp_5x500_dropout").run()
    assert (at.number_input(key="train_epochs").value, at.number_input(key="train_width").value,
            at.number_input(key="train_dropout").value) == (25, 500, 0.2)
    at.selectbox(key="train_arch").set_value("cnn").run()
    labels = [n.label for n in at.number_input]
    assert "Width (units per hidden layer)" not in labels and "Hidden layers" not in labels
    assert at.number_input(key="train_dropout").value == 0.0
    assert not at.checkbox(key="train_usps").value  # the tutorial's models: MNIST only
    at.selectbox(key="train_arch").set_value("cnn_robust").run()
    assert at.checkbox(key="train_augment").value and at.checkbox(key="train_usps").value
    assert not at.exception


def test_usps_option_is_off_where_the_server_has_no_usps(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("USPS_PATH", str(tmp_path / "absent.npz"))
    at = open_train()
    assert at.checkbox(key="train_usps").disabled
    assert "no usps.npz" in at.checkbox(key="train_usps").help


@pytest.mark.parametrize("key, value, message", [
    ("epochs", 500, "epochs must be between 1 and 100, got 500"),
    ("width", 5000, "width must be between 1 and 1024, got 5000"),
    ("train_size", 50, "training digits must be between 100 and 60000, got 50"),
    ("learning_rate", 3.0, "learning rate must be between 1e-05 and 1, got 3"),
])
def test_settings_outside_the_limits_are_an_error_and_start_nothing(runner, key, value, message):
    before = len(runner.jobs())
    at = start(open_train(), **{key: value})
    assert any(message in error for error in texts(at.error))
    assert len(runner.jobs()) == before


def test_limits_set_by_the_server_are_shown_and_enforced(runner, monkeypatch):
    monkeypatch.setenv("DIGIT_ZOO_MAX_EPOCHS", "3")
    at = open_train()
    assert any("up to 3 epochs" in caption for caption in texts(at.caption))
    at = start(at)  # mlp_1x50's tutorial setting is 5 epochs
    assert any("epochs must be between 1 and 3, got 5" in error for error in texts(at.error))


def test_a_tiny_job_queues_runs_with_live_progress_and_lands_on_draw(runner):
    # Another learner's job holds the server, so ours must wait in the queue.
    other = runner.submit(TrainingSettings.for_architecture("mlp_1x50", epochs=2, train_size=20_000),
                          owner="teacher-1")
    release_other = hold_at_batch(other, 1)
    at = start(open_train(), train_size=500, epochs=1)
    job = runner.get(at.session_state["train_job"])
    assert job is not None and job.settings.train_size == 500 and at.query_params["job"] == job.id
    assert any("position 1" in info for info in texts(at.info))
    release = hold_at_batch(job, 2)  # of 4

    runner.stop(other)
    release_other.set()
    if runner.wait(other, timeout=120).state == jobs.STOPPED:
        runner.discard(other)
    until(lambda: runner.view(job).step == 2)

    at.run()
    assert not at.exception, at.exception
    progress = at.get("progress")
    assert progress and "Epoch 1 of 1 · batch 2 of 4" in progress[0].proto.text
    assert {"Digits per second", "Time so far", "Time left"} <= {m.label for m in at.metric}
    assert at.button(key="train_stop").label == "Stop training"
    charts = at.get("plotly_chart")
    assert len(charts) == 3 and '"y":[' in charts[0].proto.spec  # the per-batch loss so far

    release.set()
    view = runner.wait(job, timeout=120)
    assert view.state == jobs.SAVED
    at.run()
    assert any(f"Saved as **{view.saved_name}** — select it on Draw" in s for s in texts(at.success))
    link = at.get("page_link")[0].proto
    assert view.saved_name in link.label and link.page == "draw"
    assert urllib.parse.parse_qs(link.query_string) == {"model": [view.saved_name]}
    assert view.saved_name in store.scan().names

    at.switch_page(DRAW).run()
    assert not at.exception, at.exception
    entry = store.scan().get(view.saved_name)
    assert entry.label in at.selectbox(key="model").options


def test_stop_then_save_under_a_name_of_your_choice(runner):
    at = open_train()
    job, release = start_held(runner, at, 1, train_size=20_000, epochs=2)
    at.run()
    at.button(key="train_stop").click().run()
    assert job.stop_event.is_set()
    release.set()
    assert runner.wait(job, timeout=120).state == jobs.STOPPED

    at.run()
    assert any("Stopped after 1 of 2 epochs" in warning for warning in texts(at.warning))
    at.text_input(key=f"train_save_name_{job.id}").input("my first model")
    at.button(key="train_save").click().run()
    assert not at.exception, at.exception
    assert any("Saved as **my-first-model**" in s for s in texts(at.success))
    assert store.scan().get("my-first-model").record["stopped_early"] is True


def test_stop_then_discard(runner):
    at = open_train()
    job, release = start_held(runner, at, 1, train_size=20_000, epochs=2)
    runner.stop(job)
    release.set()
    runner.wait(job, timeout=120)
    at.run()
    at.button(key="train_discard").click().run()
    assert runner.view(job).state == jobs.DISCARDED
    assert "Discarded." in texts(at.info)
    assert not [e for e in store.scan().entries if not e.shipped]


def test_a_reload_finds_the_job_by_its_link(runner):
    at = start(open_train(), train_size=500, epochs=1)
    job_id = at.session_state["train_job"]
    runner.wait(runner.get(job_id), timeout=120)
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
    assert any("Job 00000000 is no longer on this server" in info for info in texts(gone.info))
