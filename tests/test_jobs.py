"""Background training jobs: the queue, stop, failures, saved versions, and the CLI twin."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from model_zoo import data, jobs, store, training
from model_zoo.training import SettingsError, TrainingLimits, TrainingSettings
from scripts import train as train_script

TINY = dict(epochs=1, train_size=400)  # ~2 s on 2 cores, most of it building the model


@pytest.fixture
def runner(mnist, user_dir):
    runner = jobs.JobRunner(limits=TrainingLimits(), mnist=mnist)
    yield runner
    runner.close(timeout=60)


def tiny(arch="mlp_1x50", **overrides) -> TrainingSettings:
    return TrainingSettings.for_architecture(arch, **(TINY | overrides))


def stop_after_first_batch(runner: jobs.JobRunner, job: jobs.Job) -> None:
    """Press "Stop training" from another thread as soon as the first batch is reported."""
    report = job.on_batch

    def on_batch(epoch, step, loss):
        report(epoch, step, loss)
        if epoch == 0 and step == 1:
            threading.Thread(target=runner.stop, args=(job,)).start()

    job.on_batch = on_batch  # the job is still queued or loading: no batch has run yet


def test_a_second_job_waits_in_the_queue_and_runs_after_the_first(runner):
    first = runner.submit(tiny(epochs=3, train_size=20_000), owner="otter-1")
    second = runner.submit(tiny(), owner="heron-2", name="second one")
    assert runner.queue_position(second) == 1
    assert runner.view(second).state == jobs.QUEUED
    assert runner.queue_position(first) == 0 or first.state == jobs.QUEUED  # the worker may not have begun
    assert [view.owner for view in runner.views()] == ["otter-1", "heron-2"]

    first_view = runner.wait(first, timeout=120)
    assert first_view.state == jobs.SAVED and first_view.epoch == 3
    second_view = runner.wait(second, timeout=120)
    assert second_view.state == jobs.SAVED and second_view.saved_name == "second-one"
    assert runner.queue_position(first) is None and runner.queue_position(second) is None
    assert {first_view.saved_name, "second-one"} <= set(store.scan().names)


def test_stop_ends_the_job_within_a_batch_or_two_and_keeps_what_it_learned(runner, mnist):
    settings = tiny(epochs=3, train_size=60_000, batch_size=32)  # 1,688 batches an epoch
    job = runner.submit(settings, owner="otter-1")
    stop_after_first_batch(runner, job)
    view = runner.wait(job, timeout=120)
    assert view.state == jobs.STOPPED and view.stopped_early and view.stop_requested
    assert view.batch_steps[-1] <= 3, f"ran {view.batch_steps[-1]} batches after a stop at batch 1"
    assert view.epoch == 1 and len(view.history["val_accuracy"]) == 1  # the partial epoch is scored
    assert view.undecided and view.saved_name == ""
    assert not [e for e in store.scan().entries if not e.shipped]

    entry = runner.save(job, "stopped early")
    assert entry.name == "stopped-early" and not entry.shipped
    assert entry.record["stopped_early"] is True and entry.record["epochs_done"] == 1
    assert runner.view(job).state == jobs.SAVED
    with pytest.raises(store.VersionError, match="saved: there is no model to save"):
        runner.save(job)
    images = data.to_float(mnist[1][0][:20])
    np.testing.assert_allclose(store.load_model(entry.path).predict_on_batch(images),
                               job.result.model.predict_on_batch(images), atol=1e-6)


def test_a_stopped_job_can_be_discarded_with_its_logs(runner, user_dir):
    job = runner.submit(tiny(epochs=2, train_size=20_000, batch_size=32), owner="otter-1")
    stop_after_first_batch(runner, job)
    assert runner.wait(job, timeout=120).state == jobs.STOPPED
    log_dir = job.log_dir
    assert log_dir.is_dir()
    runner.discard(job)
    assert runner.view(job).state == jobs.DISCARDED and job.result is None
    assert not log_dir.exists()
    assert not [e for e in store.scan().entries if not e.shipped]
    with pytest.raises(store.VersionError, match="discarded: there is no model to save"):
        runner.save(job)


def test_a_queued_job_can_leave_the_queue(runner):
    first = runner.submit(tiny(epochs=2, train_size=20_000), owner="otter-1")
    second = runner.submit(tiny(), owner="heron-2")
    runner.stop(second)
    assert runner.view(second).state == jobs.DISCARDED and runner.queue_position(second) is None
    runner.stop(first)  # before its first batch: nothing learned, nothing to keep
    assert runner.wait(first, timeout=120).state in (jobs.DISCARDED, jobs.STOPPED)


def test_a_failing_job_shows_its_error_and_the_runner_goes_on(user_dir, tmp_path, monkeypatch, mnist):
    mnist_file = data.find_mnist()
    runner = jobs.JobRunner(limits=TrainingLimits())  # loads MNIST itself, like the app
    try:
        monkeypatch.setenv("MNIST_PATH", str(tmp_path / "nowhere" / "mnist.npz"))
        broken = runner.submit(tiny(), owner="otter-1")
        failed = runner.wait(broken, timeout=120)
        assert failed.state == jobs.FAILED
        assert failed.error.startswith("DataNotFoundError: ") and "MNIST" in failed.error
        assert "nowhere" in failed.error and broken.result is None

        monkeypatch.setenv("MNIST_PATH", str(mnist_file))
        healthy = runner.submit(tiny(), owner="otter-1")
        assert runner.wait(healthy, timeout=120).state == jobs.SAVED
    finally:
        runner.close(timeout=60)


def test_an_error_inside_training_fails_only_that_job(runner, monkeypatch):
    real_train = training.train

    def train(settings, **kwargs):
        if settings.seed == 13:
            raise FloatingPointError("loss became NaN")
        return real_train(settings, **kwargs)

    monkeypatch.setattr(training, "train", train)
    bad = runner.submit(tiny(seed=13), owner="otter-1")
    good = runner.submit(tiny(), owner="heron-2")
    assert runner.wait(bad, timeout=120).error == "FloatingPointError: loss became NaN"
    assert runner.wait(good, timeout=120).state == jobs.SAVED


def test_a_finished_job_is_saved_as_a_version_that_round_trips(runner, mnist, user_dir):
    job = runner.submit(tiny("cnn", epochs=2, train_size=600), owner="otter-1")
    view = runner.wait(job, timeout=180)
    assert view.state == jobs.SAVED and view.saved_name.startswith("cnn@")
    assert view.epoch == 2 and view.fraction_done == 1.0 and view.digits_per_second > 0
    assert len(view.batch_loss) == len(view.batch_loss_smoothed) == len(view.batch_steps) == 2 * 5

    entry = store.scan().get(view.saved_name)
    assert not entry.shipped and entry.path.parent == user_dir
    images = data.to_float(mnist[1][0][:50])
    np.testing.assert_allclose(store.load_model(entry.path).predict_on_batch(images),
                               job.result.model.predict_on_batch(images), atol=1e-6)
    record = entry.record
    assert record["settings"] == dataclasses.asdict(job.settings)
    assert set(record["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(record["history"]["val_accuracy"]) == 2 and len(record["batch_loss"]) == 10
    assert record["test_accuracy"] == pytest.approx(view.test_accuracy)
    assert record["trained_in"] == "app" and record["owner"] == "otter-1"
    assert record["train_seconds"] > 0 and record["digits_per_second"] > 0
    logs = store.tensorboard_dir(entry.name)
    assert list((logs / "train").glob("events.out.tfevents.*"))
    assert list((logs / "validation").glob("events.out.tfevents.*"))
    assert not list((user_dir / ".running").glob("*"))  # the scratch logs moved


def test_one_job_at_a_time_per_learner(runner):
    runner.submit(tiny(epochs=2, train_size=20_000), owner="otter-1")
    with pytest.raises(jobs.JobLimitError, match="otter-1 already has a job"):
        runner.submit(tiny(), owner="otter-1")


def test_memory_stays_bounded_when_learners_leave_stopped_jobs(user_dir):
    runner = jobs.JobRunner(limits=TrainingLimits())
    left = [jobs.Job(tiny(), owner=f"learner-{i}") for i in range(jobs.KEEP_UNDECIDED_JOBS + 2)]
    done = [jobs.Job(tiny(), owner=f"done-{i}") for i in range(jobs.KEEP_DONE_JOBS + 5)]
    for job in left:
        job._set(state=jobs.STOPPED)
    for job in done:
        job._set(state=jobs.SAVED)
    runner._jobs.extend(left + done)
    runner._forget_old_jobs()
    assert [job.state for job in left] == [jobs.DISCARDED] * 2 + [jobs.STOPPED] * jobs.KEEP_UNDECIDED_JOBS
    assert len(runner.jobs()) == jobs.KEEP_UNDECIDED_JOBS + jobs.KEEP_DONE_JOBS
    assert runner.jobs()[-1] is done[-1]


LIMITS = TrainingLimits(max_epochs=20, max_width=256, max_hidden_layers=4, max_train_size=30_000)


@pytest.mark.parametrize("override, message", [
    ({"epochs": 0}, "epochs must be between 1 and 20, got 0"),
    ({"epochs": 21}, "epochs must be between 1 and 20, got 21"),
    ({"batch_size": 4096}, "batch size must be between 8 and 2048, got 4096"),
    ({"learning_rate": 2.0}, "learning rate must be between 1e-05 and 1, got 2"),
    ({"learning_rate": 0.0}, "learning rate must be between 1e-05 and 1, got 0"),
    ({"dropout": 0.95}, "dropout must be between 0 and 0.9, got 0.95"),
    ({"train_size": 50}, "training digits must be between 100 and 30000, got 50"),
    ({"train_size": 60_000}, "training digits must be between 100 and 30000, got 60000"),
    ({"val_fraction": 0.6}, "validation fraction must be between 0.01 and 0.5, got 0.6"),
    ({"width": 512}, "width must be between 1 and 256, got 512"),
    ({"hidden_layers": 5}, "hidden layers must be between 1 and 4, got 5"),
    ({"optimizer": "adagrad"}, "optimizer must be one of adam, sgd, rmsprop, got 'adagrad'"),
])
def test_settings_outside_the_limits_are_refused_before_queueing(override, message, user_dir):
    runner = jobs.JobRunner(limits=LIMITS)
    settings = TrainingSettings.for_architecture("mlp_1x50", **({"train_size": 1000} | override))
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        runner.submit(settings, owner="otter-1")
    assert runner.jobs() == []


def test_every_problem_is_named_at_once():
    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=500, width=5000)
    with pytest.raises(SettingsError) as error:
        jobs.JobRunner(limits=TrainingLimits()).submit(settings, owner="otter-1")
    assert "epochs must be between 1 and 100, got 500" in str(error.value)
    assert "width must be between 1 and 1024, got 5000" in str(error.value)


def test_limits_from_the_environment_apply_to_the_app(monkeypatch, user_dir):
    monkeypatch.setenv("DIGIT_ZOO_MAX_EPOCHS", "2")
    with pytest.raises(SettingsError, match="epochs must be between 1 and 2, got 3"):
        jobs.JobRunner().submit(tiny(epochs=3), owner="otter-1")


def test_the_cli_saves_a_version_the_app_lists(mnist, user_dir, capsys):
    assert train_script.main(["--arch", "mlp_1x50", "--epochs", "1", "--train-size", "400",
                              "--optimizer", "sgd", "--lr", "0.01", "--width", "20", "--name", "from cli"]) == 0
    out = capsys.readouterr().out
    assert "Saved from-cli: MNIST test accuracy 0." in out
    entry = store.scan().get("from-cli")
    assert entry.record["trained_in"] == "scripts.train"
    assert entry.record["settings"]["optimizer"] == "sgd" and entry.record["settings"]["width"] == 20
    assert entry.record["params"] == 784 * 20 + 20 + 20 * 10 + 10
    assert list((store.tensorboard_dir("from-cli") / "train").glob("events.out.tfevents.*"))
    assert [p.name for p in user_dir.iterdir() if p.name.startswith(".")] == []  # scratch removed


def test_the_cli_refuses_settings_outside_the_limits(user_dir, capsys):
    assert train_script.main(["--arch", "cnn", "--epochs", "500", "--dropout", "0.99"]) == 2
    err = capsys.readouterr().err
    assert "epochs must be between 1 and 100, got 500" in err and "dropout must be between 0 and 0.9" in err
    assert not user_dir.exists() or not list(user_dir.glob("*.keras"))
