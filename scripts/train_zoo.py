"""Train the zoo on the 60,000 MNIST training digits and ship it.

cnn_robust also trains on USPS's 7,291 training digits (USPS_PATH or
data/usps.npz; an error names where to put it if it is missing), then
finishes with pen_finish_epochs more from its own weights with the training
digits redrawn with the canvas's pen added (model_zoo.strokes: needs
scikit-image from requirements-dev.txt the first time, ~10 ms a digit on one
core, then cached in data/strokes/), and the real pen strokes of UNIPEN's
train writers, each digit drawn PEN_RENDERS times by a varied hand
(UNIPEN_PATH, data/ or ../shared/data/unipen_pen.json.gz; an error names
where to put it if it is missing). Its record keeps the first stage under
"first_stage", and which writers were held out under "pen_digits".

    python -m scripts.train_zoo                       # all eight, ~35 min on 2 idle cores
    python -m scripts.train_zoo --models cnn,mlp_1x50
    MNIST_PATH=../shared/data/mnist.npz python -m scripts.train_zoo --out /tmp/zoo
    python -m scripts.train_zoo --models cnn_robust --first-stage /tmp/first --out /tmp/zoo

Each model is trained with its tutorial settings (model_zoo.architectures),
10 % of the training digits held out for validation, seed 0, then scored on
the 10,000 test digits and written to model_zoo/trained/<name>.keras + .json.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from tqdm import tqdm

from model_zoo import architectures, config, data, model_files, store, training, training_inputs


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


def pen_finish_settings(arch: architectures.Architecture, seed: int) -> training.TrainingSettings:
    """The finishing stage: on from the first stage's weights, pen versions added, a tenth of the rate."""
    return training.TrainingSettings.for_architecture(
        arch.name, seed=seed, strokes=True, unipen=True, fine_tune=True, epochs=arch.pen_finish_epochs,
        learning_rate=arch.learning_rate / 10)


def train_with_bar(settings: training.TrainingSettings, mnist, *, start_from: bytes | None = None):
    bar = EpochBar()
    try:
        inputs = training_inputs.gather(settings, mnist=mnist, shipped=start_from)
        return training.train(settings, **inputs, progress=bar)
    finally:
        bar.close()


def first_stage(name: str, settings: training.TrainingSettings, mnist, folder: Path | None
                ) -> tuple[bytes, dict]:
    """The first stage's .keras bytes and record: read from ``folder``, or trained (and kept there)."""
    if folder is not None and (folder / f"{name}.keras").is_file():
        record = model_files.read_record(folder / f"{name}.json")
        defaults = {field.name: field.default for field in dataclasses.fields(settings)}  # fields added since
        if defaults | record.get("settings", {}) != dataclasses.asdict(settings):
            sys.exit(f"train_zoo: {folder / name}.keras was trained with other settings than {name}'s first "
                     "stage: remove it or give another --first-stage folder.")
        print(f"{name}: first stage read from {folder}", file=sys.stderr)
        return (folder / f"{name}.keras").read_bytes(), record
    result = train_with_bar(settings, mnist)
    if folder is not None:
        store.save_result(result, name=name, trained_in="scripts.train_zoo", shipped_dir=folder)
    return model_files.model_bytes(result.model), store.result_record(result, trained_in="scripts.train_zoo")


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
    parser.add_argument("--out", type=Path, default=config.TRAINED_DIR, help="where to write the models")
    parser.add_argument("--seed", type=int, default=0, help="random seed (weights, split, order)")
    parser.add_argument("--first-stage", type=Path, default=None,
                        help="folder for the first stage of a two-stage model (cnn_robust): its <name>.keras "
                             "and .json there are finished instead of trained again; if absent, they are "
                             "trained and written there")
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
        arch = architectures.get(name)
        settings = training.TrainingSettings.for_architecture(name, seed=args.seed)
        try:
            if arch.pen_finish_epochs:
                first_model, first_record = first_stage(name, settings, mnist, args.first_stage)
                result = train_with_bar(pen_finish_settings(arch, args.seed), mnist, start_from=first_model)
                extra = {"first_stage": {k: v for k, v in first_record.items() if k != "batch_loss"}}
            else:
                result, first_record, extra = train_with_bar(settings, mnist), {}, None
        except (ImportError, data.DataError) as error:  # scikit-image for pen versions; USPS or UNIPEN missing
            sys.exit(f"train_zoo: {name}: {error}")
        store.save_result(result, name=name, trained_in="scripts.train_zoo", shipped_dir=args.out, extra=extra)
        seconds = first_record.get("seconds_per_epoch", []) + result.seconds_per_epoch
        rows.append((name, result.model.count_params(), len(seconds), sum(seconds) / len(seconds),
                     result.test_accuracy, arch.tutorial_accuracy))
    print("\n| model | params | epochs | s/epoch | MNIST test | tutorial |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, params, epochs, seconds, accuracy, tutorial in rows:
        tutorial_text = f"{tutorial:.4f}" if tutorial else "—"
        print(f"| {name} | {params:,} | {epochs} | {seconds:.1f} | {accuracy:.4f} | {tutorial_text} |")


if __name__ == "__main__":
    main()
