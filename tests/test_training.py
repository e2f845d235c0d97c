"""The one training loop: validated settings, progress, stop from another thread, reproducibility."""

import threading

import numpy as np
import pytest

from model_zoo import data, training, training_inputs
from model_zoo.config import SettingsError
from model_zoo.training import TrainingSettings


class Recorder(training.TrainingProgress):
    def __init__(self, stop_after_batches=None, stop=None):
        self.batches, self.epochs, self.started = [], [], None
        self.stop_after_batches, self.stop = stop_after_batches, stop

    def on_start(self, settings, steps_per_epoch, train_digits):
        self.started = (settings.arch, steps_per_epoch, train_digits)

    def on_batch(self, epoch, step, loss):
        self.batches.append((epoch, step, loss))
        if self.stop_after_batches and len(self.batches) == self.stop_after_batches:
            # Set from another thread, as the Train page's button does.
            threading.Thread(target=self.stop.set).start()

    def on_epoch(self, epoch, metrics, seconds):
        self.epochs.append((epoch, metrics, seconds))


def test_one_epoch_on_a_few_hundred_digits_reports_progress(mnist):
    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=600)
    progress = Recorder()
    result = training.train(settings, mnist=mnist, progress=progress)
    assert progress.started == ("mlp_1x50", 5, 540)  # 540 training digits / 128
    assert [step for _, step, _ in progress.batches] == [1, 2, 3, 4, 5]
    assert [epoch for epoch, _, _ in progress.epochs] == [1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(progress.epochs[0][1])
    assert (result.train_digits, result.val_digits) == (540, 60)
    assert 0.3 < result.test_accuracy <= 1.0  # far better than chance after 540 digits
    record = result.record()
    assert record["settings"]["train_size"] == 600 and record["epochs_done"] == 1
    assert len(record["history"]["val_accuracy"]) == 1 and len(record["data_sha256"]) == 64


def test_stop_from_another_thread_ends_after_the_current_batch(mnist):
    stop = threading.Event()
    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=3, train_size=20_000, batch_size=32)
    progress = Recorder(stop_after_batches=3, stop=stop)
    result = training.train(settings, mnist=mnist, progress=progress, stop=stop)
    assert result.stopped_early and result.epochs_done == 1
    assert 0 < result.record()["epochs_trained"] < 0.02  # a few batches of 563, not the whole epoch
    assert len(progress.batches) <= 6  # of 563 batches in an epoch
    assert result.model.predict(mnist[1][0][:2].astype("float32") / 255, verbose=0).shape == (2, 10)


def test_same_seed_same_weights(mnist):
    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=300, seed=7)
    first = training.train(settings, mnist=mnist).model.get_weights()
    second = training.train(settings, mnist=mnist).model.get_weights()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_augmented_training_runs(mnist):
    settings = TrainingSettings.for_architecture("cnn", epochs=1, train_size=300, augment=True, lr_decay=True)
    result = training.train(settings, mnist=mnist)
    assert result.epochs_done == 1 and result.record()["settings"]["augment"] is True


def test_usps_digits_join_the_training_split_only(mnist, usps_path):
    usps = data.load_usps(usps_path)
    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=300, usps=True)
    result = training.train(settings, mnist=mnist, usps=usps)
    assert result.train_digits == 270 + len(usps[0][1]) and result.val_digits == 30  # validation: MNIST
    assert result.record()["settings"]["usps"] is True
    without = training.train(TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=300), mnist=mnist)
    assert without.data_sha256 != result.data_sha256  # the record tells the two apart


def test_usps_missing_is_a_clear_error(mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("USPS_PATH", str(tmp_path / "nowhere.npz"))
    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=300, usps=True)
    with pytest.raises(data.DataNotFoundError, match="nowhere.npz"):
        training_inputs.gather(settings, mnist=mnist)


def test_training_refuses_settings_without_their_digits(mnist):
    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=300, usps=True, fine_tune=True)
    with pytest.raises(TypeError, match="needs usps, shipped"):
        training.train(settings, mnist=mnist)


def test_defaults_come_from_the_architecture():
    settings = TrainingSettings.for_architecture("mlp_5x500_dropout")
    assert (settings.epochs, settings.width, settings.hidden_layers, settings.dropout) == (25, 500, 5, 0.2)
    robust = TrainingSettings.for_architecture("cnn_robust")
    assert robust.augment and robust.usps
    assert not TrainingSettings.for_architecture("cnn").usps  # the tutorial's seven: MNIST only


@pytest.mark.parametrize(
    "override, message",
    [
        ({"epochs": 0}, "epochs must be between 1 and 100, got 0"),
        ({"epochs": 101}, "epochs must be between 1 and 100, got 101"),
        ({"width": 2000}, "width must be between 1 and 1024, got 2000"),
        ({"hidden_layers": 9}, "hidden layers must be between 1 and 8, got 9"),
        ({"train_size": 70_000}, "training digits must be between 100 and 60000, got 70000"),
        ({"learning_rate": 5.0}, "learning rate must be between 1e-05 and 1, got 5"),
        ({"batch_size": 4}, "batch size must be between 8 and 2048, got 4"),
        ({"val_fraction": 0.9}, "validation fraction must be between 0.01 and 0.5, got 0.9"),
        ({"dropout": 0.95}, "dropout must be between 0 and 0.9, got 0.95"),
        ({"optimizer": "adagrad"}, "optimizer must be one of adam, sgd, rmsprop, got 'adagrad'"),
        ({"seed": -1}, "seed must be between 0 and 4294967295, got -1"),  # refused before it is queued
    ],
)
def test_settings_outside_the_limits_are_refused(override, message):
    settings = TrainingSettings.for_architecture("mlp_1x50", **override)
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        settings.validate(training.TrainingLimits())


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DIGIT_ZOO_MAX_EPOCHS", "3")
    with pytest.raises(SettingsError, match="epochs must be between 1 and 3, got 5"):
        TrainingSettings.for_architecture("mlp_1x50").validate()
    monkeypatch.setenv("DIGIT_ZOO_MAX_EPOCHS", "many")
    with pytest.raises(SettingsError, match="DIGIT_ZOO_MAX_EPOCHS='many' is not a whole number"):
        training.TrainingLimits.from_env()


def test_the_progress_receiver_counts_the_added_usps_digits(mnist, usps_path):
    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=600, usps=True)
    progress = Recorder()
    result = training.train(settings, **training_inputs.gather(settings, mnist=mnist), progress=progress)
    assert progress.started[2] == result.train_digits == 540 + 7291  # USPS's training digits too
    assert result.digits_trained == result.train_digits


def test_the_loss_curve_thins_itself_and_keeps_the_newest_point():
    curve = training.LossCurve(limit=10)
    for step in range(1, 101):
        curve.add(step, 1.0 / step)
    steps, loss, smoothed = curve.points()
    assert len(steps) <= 11 and steps[0] == 1 and steps[-1] == 100
    assert loss[-1] == round(1 / 100, 5) and len(loss) == len(smoothed) == len(steps)
    assert smoothed[-1] > loss[-1]  # a moving average lags behind a falling loss


def test_the_cli_says_where_to_put_the_pen_strokes_it_is_asked_for(tmp_path, monkeypatch, capsys):
    from scripts import train as train_script

    monkeypatch.setenv("UNIPEN_PATH", str(tmp_path / "absent.json.gz"))
    assert train_script.main(["--arch", "mlp_1x50", "--epochs", "1", "--unipen"]) == 2
    assert "--unipen needs UNIPEN's pen strokes: put unipen_pen.json.gz in data/" in capsys.readouterr().err
