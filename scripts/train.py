"""Train one architecture with your own settings and save it as a new zoo version.

    python -m scripts.train --arch cnn --epochs 3
    python -m scripts.train --arch mlp_1x50 --epochs 3 --train-size 10000 --name quick-mlp
    python -m scripts.train --arch mlp_5x50 --width 100 --hidden-layers 3 --dropout 0.2 --optimizer sgd --lr 0.01
    python -m scripts.train --arch cnn_robust --no-augment --seed 7
    python -m scripts.train --arch cnn --unipen          # + UNIPEN's train writers' real pen strokes
    python -m scripts.train --arch cnn --data train.csv   # the tutorial's Analytics Vidhya or Kaggle CSV
    RAY_ADDRESS=head:6379 python -m scripts.train --arch cnn --ray   # on the class's Ray cluster

The same training function and settings as the app's Train page
(model_zoo.training), the same limits (DIGIT_ZOO_MAX_EPOCHS, …) and the same
record, saved by the same function (model_zoo.store.save_result) into the
database (DIGIT_ZOO_DATABASE_URL, default data/digit_zoo.db), with its
TensorBoard logs: the app lists the version at once. By default it trains in
this process; with --ray it is queued on Ray like a job from the Train page
(a local Ray instance, or RAY_ADDRESS's cluster). Settings you leave out are
the architecture's tutorial ones. Out-of-range settings exit with code 2 and
say what is allowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import secrets
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from model_zoo import architectures, config, data, jobs, store, training, training_inputs


class BatchBar(training.TrainingProgress):
    """One tqdm bar over every batch of the run, with the latest losses."""

    def on_start(self, settings, steps_per_epoch, train_digits):
        self.steps_per_epoch = steps_per_epoch
        self.bar = tqdm(
            total=settings.epochs * steps_per_epoch,
            desc=settings.arch,
            unit="batch",
            file=sys.stdout,
            dynamic_ncols=True,
        )
        self.postfix = {}

    def on_batch(self, epoch, step, loss):
        self.bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}", **self.postfix, refresh=False)
        self.bar.update(epoch * self.steps_per_epoch + step - self.bar.n)

    def on_epoch(self, epoch, metrics, seconds):
        self.postfix = {"val_loss": f"{metrics['val_loss']:.4f}", "val_acc": f"{metrics['val_accuracy']:.4f}"}
        self.bar.set_postfix(epoch=epoch, loss=f"{metrics['loss']:.4f}", **self.postfix)

    def close(self):
        if hasattr(self, "bar"):
            self.bar.close()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # defaults: None means "the architecture's own" (model_zoo.architectures) --------
    parser.add_argument("--arch", required=True, choices=list(architectures.ZOO), help="starting point")
    parser.add_argument("--epochs", type=int, help="passes over the training digits")
    parser.add_argument("--batch-size", type=int, help="digits per update (tutorial: 128)")
    parser.add_argument("--lr", type=float, dest="learning_rate", help="learning rate (tutorial: 0.001)")
    parser.add_argument(
        "--lr-decay", action=argparse.BooleanOptionalAction, default=None, help="cosine decay of the learning rate to 0"
    )
    parser.add_argument("--optimizer", choices=training.OPTIMIZERS, help="adam (tutorial), sgd (momentum 0.9), rmsprop")
    parser.add_argument("--dropout", type=float, help="dropout rate after each hidden layer")
    parser.add_argument("--width", type=int, help="units per hidden layer (MLPs only)")
    parser.add_argument("--hidden-layers", type=int, help="number of hidden layers (MLPs only)")
    parser.add_argument("--train-size", type=int, help="training digits taken from the 60,000 (default: all)")
    parser.add_argument("--val-fraction", type=float, help="share of them held out for validation (default 0.1)")
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random shifts, rotations, zoom and stroke width",
    )
    parser.add_argument(
        "--usps",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add USPS's training digits (USPS_PATH or data/usps.npz)",
    )
    parser.add_argument(
        "--strokes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add the training digits redrawn with the canvas's pen, and every 1 with a "
        "European flag (model_zoo.strokes: scikit-image from requirements-dev.txt; "
        "~10 ms a digit the first time, then cached in data/strokes/)",
    )
    parser.add_argument(
        "--unipen",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add the real pen strokes of UNIPEN's train writers, each drawn "
        f"{training.PEN_RENDERS} times with the canvas's pen by a varied hand "
        "(UNIPEN_PATH, data/ or ../shared/data/unipen_pen.json.gz; ~10 ms a digit "
        "the first time, then cached in data/strokes/)",
    )
    parser.add_argument(
        "--fine-tune",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start from the shipped model's weights instead of random ones",
    )
    parser.add_argument("--seed", type=int, help="random seed: weights, split, order (default 0)")
    parser.add_argument("--name", default="", help="version name (default: <arch>@<date>T<time>)")
    parser.add_argument("--mnist", default=None, help="mnist.npz (default: MNIST_PATH, data/, Keras cache)")
    parser.add_argument(
        "--data",
        default=None,
        help="train on these digits instead of MNIST's training digits: a Kaggle Digit "
        "Recognizer or Analytics Vidhya train.csv, or a Keras-layout .npz; MNIST's "
        "test digits still score it",
    )
    parser.add_argument(
        "--ray", action="store_true", help="queue it on Ray like the Train page (RAY_ADDRESS, or a local instance)"
    )
    parser.add_argument(
        "--owner",
        default=f"{getpass.getuser()} (scripts.train)",
        help="who the job is for, in the class's queue (one job each at a time)",
    )
    # ----------------------------------------------------------------------------------
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> training.TrainingSettings:
    fields = {field.name for field in dataclasses.fields(training.TrainingSettings)}
    given_by_options = fields - {"arch", "class_digits"}  # the first is positional; the second is the app's
    overrides = {name: getattr(args, name) for name in given_by_options if getattr(args, name) is not None}
    return training.TrainingSettings.for_architecture(args.arch, **overrides)


def digits(args: argparse.Namespace) -> tuple[data.Split, data.Split]:
    """MNIST, or the --data CSV's digits to train on and MNIST's test digits to score them."""
    mnist = data.load_mnist(args.mnist)
    return mnist if args.data is None else (data.load_training_digits(args.data), mnist[1])


def train_here(settings: training.TrainingSettings, args: argparse.Namespace) -> store.ZooEntry:
    mnist = digits(args)
    extra = {"training_data": Path(args.data).name} if args.data else {}
    bar = BatchBar()
    with tempfile.TemporaryDirectory(prefix="digit_zoo_cli_") as logs:
        try:
            result = training.train(
                settings, **training_inputs.gather(settings, mnist=mnist), progress=bar, tensorboard_dir=logs
            )
        finally:
            bar.close()
        return store.save_result(result, name=args.name, trained_in="scripts.train", tensorboard_dir=logs, extra=extra)


def train_on_ray(settings: training.TrainingSettings, args: argparse.Namespace) -> store.ZooEntry | None:
    key = secrets.token_urlsafe(12)  # as the Train page's: only its holder (or the teacher) acts on the job
    job_id = jobs.submit(settings, owner=args.owner, name=args.name, trained_in="scripts.train --ray", key=key)
    print(
        f"Job {job_id} queued on Ray; Ctrl-C leaves it running. Its page, where only you or the "
        f"teacher can stop it: /train?job={job_id}&key={key}"
    )
    with tqdm(total=settings.epochs, desc=settings.arch, unit="epoch", file=sys.stdout) as bar:
        while True:
            view = jobs.view(job_id)
            bar.set_postfix_str(view.phase, refresh=False)
            bar.update(view.epoch - bar.n)
            if not view.active:
                break
            time.sleep(1)
    if view.state != jobs.JobState.SAVED:
        print(f"error: job {job_id} ended {view.state.value}: {view.error or view.phase}", file=sys.stderr)
        return None
    return store.scan().get(view.saved_name)


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    try:
        settings.validate(training.TrainingLimits.from_env())
    except config.SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if settings.unipen and not data.pen_digits_available():
        print(
            f"error: --unipen needs UNIPEN's pen strokes: put {data.PEN_FILE} in data/ or ../shared/data/, "
            "or set UNIPEN_PATH=/path/to/it.",
            file=sys.stderr,
        )
        return 2
    if args.ray and args.data:
        print(
            "error: --data trains in this process (Ray's workers train on the MNIST they hold): drop --ray or --data.",
            file=sys.stderr,
        )
        return 2
    entry = train_on_ray(settings, args) if args.ray else train_here(settings, args)
    if entry is None:
        return 1
    record = entry.record
    print(
        f"Saved {entry.name}: MNIST test accuracy {entry.test_accuracy:.4f} after {record['epochs_done']} "
        f"epochs in {record['train_seconds']:.1f} s ({record['digits_per_second']:,.0f} digits/s)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
