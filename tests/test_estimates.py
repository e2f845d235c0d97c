"""The job estimator: digits an epoch, speeds measured from finished jobs, the queue's schedule, the budget."""

from __future__ import annotations

import time

import pytest

from model_zoo import data, db, estimates
from model_zoo.training import TrainingSettings, split_train_validation

CNN = TrainingSettings.for_architecture("cnn", class_sized=True)


@pytest.fixture(autouse=True)
def fresh(database):
    estimates.forget()
    yield
    estimates.forget()


def timed(job_id: str, settings: TrainingSettings, rate: float, fixed: float, ago: float = 0.0) -> None:
    with db.engine().begin() as connection:
        connection.execute(
            db.job_timings.insert().values(
                job_id=job_id,
                speed_key=estimates.speed_key(settings),
                digits_per_second=rate,
                fixed_seconds=fixed,
                ended_at=time.time() - ago,
            )
        )


def test_digits_an_epoch_are_those_training_trains_on(mnist):
    (x, y), _ = mnist
    for settings in (CNN, TrainingSettings.for_architecture("mlp_1x50", train_size=777, val_fraction=0.3)):
        (x_train, _), _ = split_train_validation(x, y, settings)
        assert estimates.digits_per_epoch(settings) == len(x_train)


def test_usps_adds_its_training_digits(usps_path):
    (x_usps, _), _ = data.load_usps(usps_path)
    plain = TrainingSettings.for_architecture("cnn", train_size=1000)
    with_usps = TrainingSettings.for_architecture("cnn", train_size=1000, usps=True)
    assert estimates.digits_per_epoch(with_usps) - estimates.digits_per_epoch(plain) == len(x_usps)


def test_a_finished_jobs_timing_separates_its_steady_speed_from_the_rest():
    # 3 epochs of 10,800 digits: the first traces the model (8 s), then 4 s each; 20 s in the slot.
    values = estimates.timing(CNN, 10_800, [8.0, 4.0, 4.0], wall_seconds=20.0)
    assert values["digits_per_second"] == pytest.approx(2_700)
    assert values["fixed_seconds"] == pytest.approx(8.0)  # 20 - 3 × 4: starting, tracing, scoring, saving
    assert values["speed_key"] == "cnn batch 128"
    assert estimates.timing(CNN, 10_800, [], wall_seconds=5.0) is None  # stopped before an epoch ended
    assert estimates.timing(CNN, 10_800, [8.0], wall_seconds=9.0) is None  # no steady epoch, only the tracing one


def test_the_estimate_is_the_median_of_the_latest_jobs_of_the_kind():
    first = estimates.job_seconds(CNN)
    assert first.basis.startswith("a first guess from the shipped cnn's training")
    for i, rate in enumerate([2_000, 3_000, 100_000]):  # one outlier
        timed(f"job{i}", CNN, rate, fixed=5.0, ago=i)
    timed("other", TrainingSettings.for_architecture("cnn", batch_size=32), 50.0, fixed=99.0)  # another kind
    estimates.forget()
    found = estimates.job_seconds(CNN)
    assert found.basis == "measured: 3 jobs of cnn batch 128 trained here"
    assert found.seconds == pytest.approx(5.0 + CNN.epochs * estimates.digits_per_epoch(CNN) / 3_000)


def test_only_the_latest_jobs_count():
    for i in range(estimates.KEEP_TIMINGS):
        timed(f"new{i}", CNN, 1_000, fixed=2.0, ago=i)
    timed("old", CNN, 1.0, fixed=1_000.0, ago=3_600)
    assert estimates.speed(CNN).digits_per_second == 1_000


def test_the_schedule_gives_each_queued_job_the_first_free_slot():
    timed("t", CNN, 1_000, fixed=0.0)
    each = estimates.job_seconds(CNN).seconds  # 2 epochs of 10,800 digits at 1,000 a second: 21.6 s
    running = estimates.QueuedJob("a", CNN, running_for=each / 2, fraction_done=0.05, training_seconds=1.0)
    queued = [estimates.QueuedJob(name, CNN, None, 0.0, 0.0) for name in "bcd"]
    one_slot = estimates.schedule([running, *queued], slots=1)
    assert one_slot["a"] == (0.0, pytest.approx(each / 2))  # from its estimate: too early for its progress
    assert one_slot["b"] == (pytest.approx(each / 2), pytest.approx(1.5 * each))
    assert one_slot["d"] == (pytest.approx(2.5 * each), pytest.approx(3.5 * each))
    two_slots = estimates.schedule([running, *queued], slots=2)
    assert two_slots["b"] == (0.0, pytest.approx(each))
    assert two_slots["c"] == (pytest.approx(each / 2), pytest.approx(1.5 * each))
    assert two_slots["d"] == (pytest.approx(each), pytest.approx(2 * each))


def test_a_running_jobs_end_follows_its_progress_once_under_way():
    timed("t", CNN, 1_000, fixed=3.0)
    slow = estimates.QueuedJob("a", CNN, running_for=33.0, fraction_done=0.5, training_seconds=30.0)  # 60 s to train
    assert estimates.schedule([slow], slots=1)["a"] == (0.0, pytest.approx(3.0 + 60.0 - 33.0))
    late = estimates.QueuedJob("a", CNN, running_for=500.0, fraction_done=0.99, training_seconds=60.0)
    assert estimates.schedule([late], slots=1)["a"][1] == 0.0  # overdue: "any moment", never in the past


def test_over_budget_names_the_estimate_and_suggestions_that_fit():
    timed("t", CNN, 1_000, fixed=4.0)
    tutorial = TrainingSettings.for_architecture("cnn")  # 5 epochs of 54,000 digits: 274 s
    problem = estimates.over_budget(tutorial, minutes=1)
    assert problem.startswith("This job would take about 4 min 34 s on this server (measured: 1 job of cnn")
    assert "over the class's budget of 1 min a job. Try 1 epoch or 12,000 training digits" in problem
    assert estimates.job_seconds(TrainingSettings.for_architecture("cnn", epochs=1)).seconds <= 60
    assert estimates.job_seconds(TrainingSettings.for_architecture("cnn", train_size=12_000)).seconds <= 60
    assert estimates.over_budget(CNN, minutes=1) is None


@pytest.mark.parametrize("seconds, words", [(7.4, "7 s"), (190, "3 min 10 s"), (3_900, "1 h 05 min")])
def test_durations_read_as_a_learner_reads_them(seconds, words):
    assert estimates.duration(seconds) == words


def test_a_kind_not_trained_here_is_the_shipped_speed_scaled_as_the_others_trained_here():
    first = estimates.speed(CNN)
    assert first.basis == "a first guess from the shipped cnn's training"
    mlp = TrainingSettings.for_architecture("mlp_1x50")  # as the shipped mlp_1x50 trained
    timed("m", mlp, estimates.speed(mlp).digits_per_second / 2, fixed=3.0)
    timed("other", TrainingSettings.for_architecture("mlp_1x50", batch_size=8), 1.0, fixed=99.0)  # no shipped twin
    estimates.forget()
    scaled = estimates.speed(CNN)
    assert scaled.digits_per_second == pytest.approx(first.digits_per_second / 2) and scaled.fixed_seconds == 3.0
    assert scaled.basis.endswith("scaled by 1 job of other kinds trained here")


def test_an_mlp_never_trained_here_is_scaled_by_the_mlps_that_were():
    small, wide, cnn = (TrainingSettings.for_architecture(name) for name in ("mlp_1x50", "mlp_1x500", "cnn"))
    shipped = {settings.arch: estimates.speed(settings).digits_per_second for settings in (small, wide, cnn)}
    timed("c", cnn, shipped["cnn"] * 2, fixed=3.0)  # CNNs: twice the shipped model's speed here
    timed("m", small, shipped["mlp_1x50"] / 4, fixed=3.0)  # MLPs: a quarter
    estimates.forget()
    assert estimates.speed(wide).digits_per_second == pytest.approx(shipped["mlp_1x500"] / 4)
