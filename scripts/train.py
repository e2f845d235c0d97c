"""Train one architecture with your own settings and save it as a new zoo version.

    python -m scripts.train --arch cnn --epochs 3
    python -m scripts.train --arch mlp_1x50 --epochs 3 --train-size 10000 --name quick-mlp
    python -m scripts.train --arch mlp_5x50 --width 100 --hidden-layers 3 --dropout 0.2 --optimizer sgd --lr 0.01
    python -m scripts.train --arch cnn_robust --no-augment --seed 7

The same training function and settings as the app's Train page
(model_zoo.training), the same limits (DIGIT_ZOO_MAX_EPOCHS, …) and the same
record: the version lands in DIGIT_ZOO_USER_DIR (default data/user_models/),
with its TensorBoard logs in <that folder>/tensorboard/<name>, and is listed
by the app at once. Settings you leave out are the architecture's tutorial
ones. Out-of-range settings exit with code 2 and say what is allowed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from model_zoo import architectures, data, jobs, store, training


class BatchBar(training.TrainingProgress):
    """One tqdm bar over every batch of the run, with the latest losses."""

    def on_start(self, settings, steps_per_epoch):
        self.steps_per_epoch = steps_per_epoch
        self.bar = tqdm(total=settings.epochs * steps_per_epoch, desc=settings.arch, unit="batch",
                        file=sys.stdout, dynamic_ncols=True)
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # defaults: None means "the architecture's own" (model_zoo.architectures) --------
    parser.add_argument("--arch", required=True, choices=list(architectures.ZOO), help="starting point")
    parser.add_argument("--epochs", type=int, help="passes over the training digits")
    parser.add_argument("--batch-size", type=int, help="digits per update (tutorial: 128)")
    parser.add_argument("--lr", type=float, dest="learning_rate", help="learning rate (tutorial: 0.001)")
    parser.add_argument("--lr-decay", action=argparse.BooleanOptionalAction, default=None,
                        help="cosine decay of the learning rate to 0")
    parser.add_argument("--optimizer", choices=training.OPTIMIZERS, help="adam (tutorial), sgd (momentum 0.9), rmsprop")
    parser.add_argument("--dropout", type=float, help="dropout rate after each hidden layer")
    parser.add_argument("--width", type=int, help="units per hidden layer (MLPs only)")
    parser.add_argument("--hidden-layers", type=int, help="number of hidden layers (MLPs only)")
    parser.add_argument("--train-size", type=int, help="training digits taken from the 60,000 (default: all)")
    parser.add_argument("--val-fraction", type=float, help="share of them held out for validation (default 0.1)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="random shifts, rotations, zoom and stroke width")
    parser.add_argument("--usps", action=argparse.BooleanOptionalAction, default=None,
                        help="add USPS's training digits (USPS_PATH, data/, ../shared/data)")
    parser.add_argument("--seed", type=int, help="random seed: weights, split, order (default 0)")
    parser.add_argument("--name", default="", help="version name (default: <arch>@<date>T<time>)")
    parser.add_argument("--mnist", default=None, help="mnist.npz (default: MNIST_PATH, data/, Keras cache)")
    # ----------------------------------------------------------------------------------
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> training.TrainingSettings:
    names = ("epochs", "batch_size", "learning_rate", "lr_decay", "optimizer", "dropout", "width",
             "hidden_layers", "train_size", "val_fraction", "augment", "usps", "seed")
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return training.TrainingSettings.for_architecture(args.arch, **overrides)


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    try:
        settings.validate(training.TrainingLimits.from_env())
    except training.SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    mnist = data.load_mnist(args.mnist)
    bar = BatchBar()
    store.user_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.user_dir(), prefix=".cli-") as scratch:
        log_dir = Path(scratch) / "tensorboard"
        try:
            result = training.train(settings, mnist=mnist, progress=bar, tensorboard_dir=log_dir)
        finally:
            bar.close()
        entry = jobs.save_result(result, args.name, log_dir, extra={"trained_in": "scripts.train"})
    seconds = sum(result.seconds_per_epoch)
    print(f"Saved {entry.name}: MNIST test accuracy {result.test_accuracy:.4f} "
          f"after {result.epochs_done} epochs in {seconds:.1f} s ({entry.record['digits_per_second']:,.0f} digits/s).")
    print(f"  model  {entry.path}\n  logs   tensorboard --logdir \"{store.tensorboard_dir(entry.name).parent}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
