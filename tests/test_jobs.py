"""Training jobs on a real local Ray instance, state in a real database: queue, stop, failures, saves, the CLI.

Every job here runs in a Ray worker process, as in the app; the test reads
what the page reads (``jobs.view``). A "long" job (60,000 digits in batches
of 8: minutes) is surely still training when the test acts on it.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import signal
import tempfile
import time
import uuid
import zipfile

import numpy as np
import pytest
import sqlalchemy as sa

from model_zoo import cluster, data, db, evaluation, housekeeping, jobs, model_files, store
from model_zoo.config import SettingsError
from model_zoo.jobs import JobState
from model_zoo.training import TrainingLimits, TrainingSettings
from scripts import train as train_script

TINY = dict(epochs=1, train_size=400)  # a few batches: the worker's start-up is most of it
LONG = dict(epochs=3, train_size=60_000, batch_size=8)  # 6,750 batches an epoch
JOB_SECONDS = 240  # a worker's start (TensorFlow import) and a tiny job, on a busy 2-core machine


pytestmark = pytest.mark.usefixtures("on_ray")


def tiny(arch="mlp_1x50", **overrides) -> TrainingSettings:
    return TrainingSettings.for_architecture(arch, **(TINY | overrides))


def long(**overrides) -> TrainingSettings:
    return TrainingSettings.for_architecture("mlp_1x50", **(LONG | overrides))


def until(job_id: str, condition, seconds: float = JOB_SECONDS) -> jobs.JobView:
    """Poll the job as the page does until ``condition(view)``."""
    deadline = time.monotonic() + seconds
    while not condition(view := jobs.view(job_id)):
        assert time.monotonic() < deadline, f"timed out; the job is {view.state.value}: {view.phase} {view.error}"
        time.sleep(0.2)  # the job is in another process: nothing to wait on but its state
    return view


def ended(job_id: str) -> jobs.JobView:
    return until(job_id, lambda view: not view.active)


def training(job_id: str) -> jobs.JobView:
    return until(job_id, lambda view: view.state == JobState.RUNNING and view.step >= 1)


def test_a_finished_job_is_saved_as_a_version_that_round_trips(mnist):
    job_id = jobs.submit(tiny("cnn", epochs=2, train_size=600), owner="otter-1")
    view = ended(job_id)
    assert view.state == JobState.SAVED and view.saved_name.startswith("cnn@"), view.error
    assert view.epoch == 2 and view.fraction_done == 1.0 and view.digits_per_second > 0
    assert len(view.batch_loss) == len(view.batch_loss_smoothed) == len(view.batch_steps) == 2 * 5
    assert view.worker and view.position is None

    entry = store.scan().get(view.saved_name)
    assert not entry.shipped
    x_test, y_test = mnist[1]
    predicted = model_files.load_model(entry.model_file()).predict(data.to_float(x_test), batch_size=1000, verbose=0)
    assert np.mean(predicted.argmax(axis=1) == y_test) == pytest.approx(view.test_accuracy, abs=1e-9)
    record = entry.record
    assert record["settings"] == dataclasses.asdict(tiny("cnn", epochs=2, train_size=600))
    assert set(record["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(record["history"]["val_accuracy"]) == 2 and len(record["batch_loss"]) == 10
    assert record["trained_in"] == "app" and record["owner"] == "otter-1" and record["job"] == job_id
    assert record["train_seconds"] > 0 and record["digits_per_second"] > 0 and record["trained_on"]
    with zipfile.ZipFile(io.BytesIO(store.tensorboard_zip(entry.name))) as logs:
        names = logs.namelist()
    assert any(n.startswith("train/events.out.tfevents.") for n in names)
    assert any(n.startswith("validation/events.out.tfevents.") for n in names)


def test_a_second_job_waits_in_the_queue_and_runs_after_the_first():
    first = jobs.submit(long(), owner="otter-1")
    second = jobs.submit(tiny(), owner="heron-2", name="second one")
    training(first)  # one slot: the second waits for it
    assert jobs.view(second).state == JobState.QUEUED and jobs.view(second).position == 1
    assert jobs.view(first).position == 0
    assert [(v.owner, v.position) for v in jobs.views()] == [("otter-1", 0), ("heron-2", 1)]

    jobs.stop(first)
    assert ended(first).state == JobState.STOPPED
    view = ended(second)
    assert view.state == JobState.SAVED and view.saved_name == "second-one"
    assert jobs.view(second).position is None and "second-one" in store.scan().names


def test_stop_ends_the_job_within_a_batch_or_two_and_keeps_what_it_learned():
    # Batches of 1,024 digits through the CNN. The stop is sent as soon as the worker has the job,
    # while it still loads the digits and builds the model: it must end within its first batches.
    job_id = jobs.submit(TrainingSettings.for_architecture("cnn", **(LONG | {"batch_size": 1024})), owner="otter-1")
    until(job_id, lambda view: view.state == JobState.RUNNING)
    jobs.stop(job_id)
    view = ended(job_id)
    assert view.state == JobState.STOPPED and view.stopped_early and view.stop_requested
    assert view.batch_steps[-1] <= 2, f"ran {view.batch_steps[-1]} batches after an early stop"
    assert view.epoch == 1 and len(view.history["val_accuracy"]) == 1  # the partial epoch is scored
    assert view.undecided and view.saved_name == "" and 0 < view.test_accuracy < 1
    assert not [e for e in store.scan().entries if not e.shipped]

    entry = jobs.save(job_id, "stopped early")
    assert entry.name == "stopped-early" and not entry.shipped
    assert entry.record["stopped_early"] is True and entry.record["epochs_done"] == 1
    assert entry.record["test_accuracy"] == pytest.approx(view.test_accuracy)
    assert jobs.view(job_id).state == JobState.SAVED
    with pytest.raises(jobs.JobError, match="is saved: there is no model to save"):
        jobs.save(job_id)


def test_a_stopped_job_can_be_discarded():
    job_id = jobs.submit(long(), owner="otter-1")
    training(job_id)
    jobs.stop(job_id)
    assert ended(job_id).state == JobState.STOPPED
    jobs.discard(job_id)
    assert jobs.view(job_id).state == JobState.DISCARDED
    with db.engine().connect() as connection:
        kept = connection.execute(sa.select(db.jobs.c.result_model).where(db.jobs.c.id == job_id)).scalar()
    assert kept is None  # the model's bytes are gone with it
    assert not [e for e in store.scan().entries if not e.shipped]
    with pytest.raises(jobs.JobError, match="is discarded: there is no model to save"):
        jobs.save(job_id)


def test_the_queue_is_first_come_first_served_and_says_when_each_job_ends():
    first = jobs.submit(long(), owner="otter-1")
    training(first)
    waiting = [jobs.submit(tiny(), owner=f"learner-{i}") for i in range(8)]
    times = jobs.queue_times(jobs.views())
    assert [times[job_id][0] for job_id in waiting] == sorted(times[job_id][0] for job_id in waiting)
    assert all(start < end for start, end in times.values())
    jobs.stop(waiting[3])  # one leaves the queue: the others keep their order
    jobs.stop(first)
    views = [ended(job_id) for job_id in waiting]
    with db.reading() as connection:
        started = dict(
            connection.execute(sa.select(db.jobs.c.id, db.jobs.c.started_at).where(db.jobs.c.id.in_(waiting))).all()
        )
    ran = [job_id for job_id in waiting if started[job_id] is not None]
    assert ran == sorted(ran, key=started.get) and len(ran) == 7, [v.state for v in views]
    assert views[3].state == JobState.DISCARDED


def test_a_queued_job_can_leave_the_queue():
    first = jobs.submit(long(), owner="otter-1")
    second = jobs.submit(tiny(), owner="heron-2")
    jobs.stop(second)
    assert jobs.view(second).state == JobState.DISCARDED and jobs.view(second).position is None
    training(first)
    assert jobs.view(second).state == JobState.DISCARDED  # it never ran
    assert jobs.view(first).position == 0


def test_a_failing_job_shows_its_error_and_the_next_one_runs():
    # A worker handed settings that training refuses (the page validates first;
    # this reaches the worker directly, as a bug or a changed limit would).
    job_id, broken = uuid.uuid4().hex[:10], tiny(width=0)
    with db.engine().begin() as connection:
        connection.execute(
            db.jobs.insert().values(
                id=job_id,
                owner="otter-1",
                settings=dataclasses.asdict(broken),
                state="queued",
                cluster=cluster.connect().cluster,
                submitted_at=time.time(),
            )
        )
    cluster.start_job(job_id, broken, TrainingLimits(), trained_in="app", owner="otter-1", requested_name="")
    failed = ended(job_id)
    assert failed.state == JobState.FAILED
    assert failed.error == "SettingsError: Invalid training settings: width must be between 1 and 1024, got 0."
    healthy = jobs.submit(tiny(), owner="otter-1")
    assert ended(healthy).state == JobState.SAVED


def test_one_job_per_learner_and_a_cap_for_the_class(monkeypatch):
    jobs.submit(long(), owner="otter-1", learner="otters-browser")
    with pytest.raises(jobs.JobLimitError, match=r"otter-1 already has a job (queued|running) \(mlp_1x50\)"):
        jobs.submit(tiny(), owner="otter-1", learner="otters-browser")
    monkeypatch.setenv(jobs.MAX_ACTIVE_VARIABLE, "1")
    with pytest.raises(jobs.JobLimitError, match=r"queue is full \(1 jobs waiting or training, at most 1\)"):
        jobs.submit(tiny(), owner="heron-2", learner="herons-browser")
    assert len(jobs.views()) == 1


def test_a_job_whose_worker_dies_is_lost_with_the_reason():
    job_id = jobs.submit(long(), owner="otter-1")
    training(job_id)
    os.kill(int(jobs.view(job_id).worker.split(":")[1]), signal.SIGKILL)  # as the OOM killer would
    view = until(job_id, lambda view: view.state == JobState.LOST, seconds=60)
    assert view.error.startswith("Lost: its Ray worker died") and "Start it again" in view.error
    assert not [e for e in store.scan().entries if not e.shipped]
    with pytest.raises(jobs.JobError, match="is lost: there is no model to save"):
        jobs.save(job_id)


def test_a_learners_oldest_stopped_jobs_are_discarded_and_nobody_elses():
    old = [f"left{i:02d}" for i in range(jobs.KEEP_UNDECIDED_JOBS + 2)]
    with db.engine().begin() as connection:
        for i, job_id in enumerate(old):  # the even ones are otter's, the odd ones heron's
            connection.execute(
                db.jobs.insert().values(
                    id=job_id,
                    owner=f"learner-{i % 2}",
                    learner_key=db.hashed_key(["otter", "heron"][i % 2]),
                    settings=dataclasses.asdict(tiny()),
                    state="stopped",
                    cluster="local:elsewhere:1:x",
                    submitted_at=i,
                    ended_at=i,
                    result_model=b"model",
                    result_record={"arch": "mlp_1x50"},
                )
            )
    ended(jobs.submit(tiny(), owner="otter-1", learner="otter"))
    states = {job_id: jobs.view(job_id).state for job_id in old}
    otters = [states[job_id] for job_id in old[::2]]  # oldest first
    assert (
        otters
        == [JobState.DISCARDED] * (len(otters) - jobs.KEEP_UNDECIDED_JOBS)
        + [JobState.STOPPED] * jobs.KEEP_UNDECIDED_JOBS
    )
    assert {states[job_id] for job_id in old[1::2]} == {JobState.STOPPED}  # heron's are heron's to decide


LIMITS = TrainingLimits(max_epochs=20, max_width=256, max_hidden_layers=4, max_train_size=30_000)


@pytest.mark.parametrize(
    "override, message",
    [
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
    ],
)
def test_settings_outside_the_limits_are_refused_before_queueing(override, message):
    settings = TrainingSettings.for_architecture("mlp_1x50", **({"train_size": 1000} | override))
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        jobs.submit(settings, owner="otter-1", limits=LIMITS)
    assert jobs.views() == []


def test_every_problem_is_named_at_once():
    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=500, width=5000)
    with pytest.raises(SettingsError) as error:
        jobs.submit(settings, owner="otter-1", limits=TrainingLimits())
    assert "epochs must be between 1 and 100, got 500" in str(error.value)
    assert "width must be between 1 and 1024, got 5000" in str(error.value)


def test_limits_from_the_environment_apply_to_the_app(monkeypatch):
    monkeypatch.setenv("DIGIT_ZOO_MAX_EPOCHS", "2")
    with pytest.raises(SettingsError, match="epochs must be between 1 and 2, got 3"):
        jobs.submit(tiny(epochs=3), owner="otter-1")


def test_the_page_sees_the_cluster_through_jobs(monkeypatch):
    jobs.prepare_cluster()  # the test session's Ray is up already: nothing to start
    assert jobs.cluster_ready() and jobs.cluster_problem() is None
    assert jobs.capacity() == str(cluster.capacity())
    monkeypatch.setenv(cluster.SLOTS_VARIABLE, "3")
    assert jobs.training_slots() == 3
    monkeypatch.setenv(cluster.SLOTS_VARIABLE, "none")
    with pytest.raises(SettingsError, match="DIGIT_ZOO_TRAINING_SLOTS"):
        jobs.training_slots()


def test_the_cli_saves_a_version_the_app_lists(capsys):
    assert (
        train_script.main(
            [
                *"--arch mlp_1x50 --epochs 1 --train-size 400 --optimizer sgd --lr 0.01 --width 20".split(),
                "--name",
                "from cli",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Saved from-cli: MNIST test accuracy 0." in out
    entry = store.scan().get("from-cli")
    assert entry.record["trained_in"] == "scripts.train" and entry.record["digits_per_second"] > 0
    assert entry.record["settings"]["optimizer"] == "sgd" and entry.record["settings"]["width"] == 20
    assert entry.record["params"] == 784 * 20 + 20 + 20 * 10 + 10
    with zipfile.ZipFile(io.BytesIO(store.tensorboard_zip("from-cli"))) as logs:
        assert any(n.startswith("train/events.out.tfevents.") for n in logs.namelist())


def test_the_cli_fine_tunes_with_pen_strokes(capsys, tmp_path, monkeypatch):
    from model_zoo import strokes  # scikit-image: a training-time dependency

    monkeypatch.setattr(strokes, "CACHE_DIR", tmp_path)
    assert (
        train_script.main(
            [
                *"--arch mlp_1x50 --epochs 1 --train-size 400 --strokes --fine-tune --lr 1e-4".split(),
                "--name",
                "pen finish",
            ]
        )
        == 0
    )
    record = store.scan().get("pen-finish").record
    assert record["settings"]["strokes"] is True and record["settings"]["fine_tune"] is True
    assert record["train_digits"] > 2 * 360  # every digit's pen version, and the 1s once more
    assert evaluation.trained_on(record["settings"]) == "MNIST + pen strokes, fine-tuned"
    assert list(tmp_path.glob("pen-european-1-*.npy"))


def test_the_cli_trains_on_ray_like_the_app(capsys):
    assert (
        train_script.main(["--arch", "mlp_1x50", "--epochs", "1", "--train-size", "400", "--name", "via ray", "--ray"])
        == 0
    )
    out = capsys.readouterr().out
    assert "Saved via-ray: MNIST test accuracy 0." in out
    entry = store.scan().get("via-ray")
    assert entry.record["trained_in"] == "scripts.train --ray" and entry.record["job"]
    key = re.search(r"/train\?job=\w+&key=(\S+)", out).group(1)  # nobody else acts on it
    assert jobs.owns(entry.record["job"], key) and not jobs.owns(entry.record["job"], None)


def test_the_cli_refuses_settings_outside_the_limits(capsys):
    assert train_script.main(["--arch", "cnn", "--epochs", "500", "--dropout", "0.99"]) == 2
    err = capsys.readouterr().err
    assert "epochs must be between 1 and 100, got 500" in err and "dropout must be between 0 and 0.9" in err
    assert not [e for e in store.scan().entries if not e.shipped]


def test_jobs_on_postgresql(postgres_server, monkeypatch):
    from tests import postgres

    monkeypatch.setenv(db.URL_VARIABLE, postgres.fresh_database(postgres_server))
    job_id = jobs.submit(tiny(), owner="otter-1", name="on postgres")
    view = ended(job_id)  # the worker wrote its progress and its version into PostgreSQL
    assert view.state == JobState.SAVED and view.saved_name == "on-postgres"
    assert store.scan().get("on-postgres").record["job"] == job_id


def test_the_cli_trains_on_the_tutorials_csv(mnist, tmp_path, capsys):
    (x, y), _ = mnist
    csv = tmp_path / "train.csv"  # the Kaggle Digit Recognizer layout: label, pixel0…pixel783
    rows = np.column_stack([y[:500], x[:500].reshape(500, -1)])
    np.savetxt(
        csv, rows, fmt="%d", delimiter=",", comments="", header="label," + ",".join(f"pixel{i}" for i in range(784))
    )
    assert train_script.main(["--arch", "mlp_1x50", "--epochs", "1", "--data", str(csv), "--name", "csv"]) == 0
    record = store.scan().get("csv").record
    assert record["training_data"] == "train.csv" and record["train_digits"] == 450  # 10 % validation
    assert train_script.main(["--arch", "mlp_1x50", "--data", str(csv), "--ray"]) == 2
    assert "--data trains in this process" in capsys.readouterr().err


def test_only_the_owner_or_the_teacher_acts_on_a_job():
    job_id = jobs.submit(long(), owner="otter-1", key="otters-secret")
    training(job_id)
    assert jobs.owns(job_id, "otters-secret") and jobs.owns(job_id, None, teacher=True)
    for wrong in (None, "guess"):
        with pytest.raises(jobs.JobError, match=f"Only the learner who started job {job_id}, or the teacher"):
            jobs.stop(job_id, key=wrong)
    assert jobs.view(job_id).state == JobState.RUNNING and not jobs.view(job_id).stop_requested
    jobs.stop(job_id, key="otters-secret")
    assert ended(job_id).state == JobState.STOPPED
    with pytest.raises(jobs.JobError, match="can save it"):
        jobs.save(job_id, key="guess")
    with pytest.raises(jobs.JobError, match="can discard it"):
        jobs.discard(job_id)
    version = jobs.save(job_id, "kept by the teacher", teacher=True)
    assert version.name == "kept-by-the-teacher"
    # The version stays its learner's: their job's secret deletes it, another learner's does not.
    assert store.may_delete(version, ["otters-secret"]) and not store.may_delete(version, ["guess"])


def test_a_store_that_cannot_be_written_is_one_clear_message_before_anything_is_queued(monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", "/proc/1")  # read-only even for root
    with pytest.raises(
        jobs.JobError,
        match=r"Training cannot start: nothing can be written in the server's "
        r"temporary folder \(read-only\?\)\. Tell the teacher",
    ):
        jobs.submit(tiny(), owner="otter-1")
    assert jobs.views() == []


def test_a_full_disk_is_one_clear_message_before_anything_is_queued(monkeypatch):
    monkeypatch.setattr(housekeeping, "MIN_FREE_BYTES", 2**62)  # more than any disk has
    with pytest.raises(jobs.JobError, match=r"the server's temporary folder has \d+ MB free, and a job needs"):
        jobs.submit(tiny(), owner="otter-1")
    assert jobs.views() == []
