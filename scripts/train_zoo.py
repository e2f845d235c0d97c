"""Train the zoo on the 60,000 MNIST training digits and ship it.

cnn_robust also trains on USPS's 7,291 training digits (USPS_PATH or
data/usps.npz; an error names where to put it if it is missing). A registry
entry with strokes=True also trains on its training digits redrawn with the
canvas's pen (model_zoo.strokes: needs scikit-image from requirements-dev.txt
the first time, ~10 ms a digit on one core, then cached in data/strokes/).

    python -m scripts.train_zoo                       # all eight, ~20 min on 2 idle cores
    python -m scripts.train_zoo --models cnn,mlp_1x50
    MNIST_PATH=../shared/data/mnist.npz python -m scripts.train_zoo --out /tmp/zoo

Each model is trained with its tutorial settings (model_zoo.architectures),
10 % of the training digits held out for validation, seed 0, then scored on
the 10,000 test digits and written to model_zoo/trained/<name>.keras + .json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from model_zoo import architectures, data, store, training


class EpochBar(training.TrainingProgress):
    """One tqdm bar per model, advancing per epoch with the latest losses."""

    def on_start(self, settings, steps_per_epoch, train_digits):
        self.bar = tqdm(total=settings.epochs, desc=f"{settings.arch:>22}", unit="epoch",
                        file=sys.stdout, leave=True)

    def on_epoch(self, epoch, metrics, seconds):
        self.bar.set_postfix(loss=f"{metrics['loss']:.4f}", val_acc=f"{metrics['val_accuracy']:.4f}",
                             s=f"{seconds:.1f}")
        self.bar.update(1)

    def close(self):
        self.bar.close()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # defaults ---------------------------------------------------------------
    parser.add_argument("--models", default=",".join(architectures.ZOO),
                        help="comma-separated zoo names (default: all)")
    parser.add_argument("--mnist", default=None, help="mnist.npz (default: MNIST_PATH, data/, Keras cache)")
    parser.add_argument("--data", default=None,
                        help="train on these digits instead of MNIST's training digits (Kaggle or Analytics "
                             "Vidhya train.csv, as the tutorial did, or a Keras-layout .npz); MNIST's test "
                             "digits score them")
    parser.add_argument("--out", type=Path, default=store.TRAINED_DIR, help="where to write the models")
    parser.add_argument("--seed", type=int, default=0, help="random seed (weights, split, order)")
    # ------------------------------------------------------------------------
    args = parser.parse_args(argv)
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    for name in args.models:
        architectures.get(name)  # unknown names fail before any training
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    mnist = data.load_mnist(args.mnist)
    if args.data:
        mnist = (data.load_training_digits(args.data), mnist[1])
    rows = []
    for name in args.models:
        settings = training.TrainingSettings.for_architecture(name, seed=args.seed)
        bar = EpochBar()
        try:
            result = training.train(settings, mnist=mnist, progress=bar)
        except ImportError as error:  # scikit-image, for the pen-stroke digits
            sys.exit(f"train_zoo: {name}: {error}")
        bar.close()
        store.save_result(result, name=name, trained_in="scripts.train_zoo", shipped_dir=args.out)
        arch = architectures.get(name)
        rows.append((name, result.model.count_params(), settings.epochs,
                     sum(result.seconds_per_epoch) / result.epochs_done, result.test_accuracy,
                     arch.tutorial_accuracy))
    print("\n| model | params | epochs | s/epoch | MNIST test | tutorial |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, params, epochs, seconds, accuracy, tutorial in rows:
        tutorial_text = f"{tutorial:.4f}" if tutorial else "—"
        print(f"| {name} | {params:,} | {epochs} | {seconds:.1f} | {accuracy:.4f} | {tutorial_text} |")


if __name__ == "__main__":
    main()
