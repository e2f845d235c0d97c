"""How the zoo reads a class's own digits, and what fine-tuning on them does (docs/class.md).

    python -m scripts.experiments.class_finetune         # the browser-drawn fixture, cnn and mlp_1x500
    python -m scripts.experiments.class_finetune --class-file my.npz --models cnn --epochs 3
    python -m scripts.experiments.class_finetune --ray   # also: submit → saved version, as from the Train page

The class's digits come in by the Class page's import (model_zoo.class_digits)
into a throwaway SQLite database, so they are split as the app splits them.
For every shipped model it prints the accuracy on all of them and on the
held-out part; then it fine-tunes each of --models with the Train page's
fine-tuning settings on the train part and prints the held-out accuracy
before and after and the MNIST test accuracy before and after. With --ray
each fine-tuning is also queued as a job on a local Ray instance and timed
from submit to saved version (the first job includes the worker's start).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from model_zoo import class_digits, data, db, evaluation, model_files, store, training, training_inputs

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "class_digits.npz"
CLASS = "fixture"
FINE_TUNE = training.FINE_TUNE_DEFAULTS | {"train_size": training.FINE_TUNE_TRAIN_SIZE}  # as the Train page's


def fine_tune_settings(arch: str, epochs: int) -> training.TrainingSettings:
    """The Train page's fine-tuning on the class's digits."""
    return training.TrainingSettings.for_architecture(
        arch, **(FINE_TUNE | {"epochs": epochs}), class_digits=CLASS, fine_tune=True
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--class-file", type=Path, default=FIXTURE, help="an exported .npz or .zip")
    parser.add_argument("--models", default="cnn,mlp_1x500", help="architectures to fine-tune")
    parser.add_argument("--epochs", type=int, default=FINE_TUNE["epochs"])
    parser.add_argument("--ray", action="store_true", help="also time submit → saved version on Ray")
    args = parser.parse_args(argv)

    folder = tempfile.mkdtemp(prefix="digit_zoo_class_")
    os.environ[db.URL_VARIABLE] = f"sqlite:///{folder}/class.db"
    report = class_digits.import_file(CLASS, args.class_file.name, args.class_file.read_bytes())
    (x_train, y_train), (x_held, y_held) = class_digits.split_arrays(CLASS)
    x_all, y_all = np.concatenate([x_train, x_held]), np.concatenate([y_train, y_held])
    print(f"{report.added} digits imported: {len(x_train)} to train on, {len(x_held)} held out\n")

    print("| model | MNIST test | all class digits | held out |")
    print("|---|---:|---:|---:|")
    for entry in store.scan_shipped().entries:
        model = model_files.load_model(entry.model_file())
        print(
            f"| {entry.name} | {entry.test_accuracy:.4f} | {evaluation.accuracy(model, x_all, y_all):.4f} "
            f"| {evaluation.accuracy(model, x_held, y_held):.4f} |"
        )

    mnist = data.load_mnist()
    print("\n| fine-tuned | held out before | after | MNIST test before | after | training s |")
    print("|---|---:|---:|---:|---:|---:|")
    for arch in args.models.split(","):
        settings = fine_tune_settings(arch, args.epochs)
        started = time.perf_counter()
        result = training.train(settings, **training_inputs.gather(settings, mnist=mnist))
        seconds = time.perf_counter() - started
        record = result.record()["class_digits"]
        shipped = store.scan_shipped().get(arch).test_accuracy
        print(
            f"| {arch} | {record['held_out_accuracy_before']:.4f} | {record['held_out_accuracy']:.4f} "
            f"| {shipped:.4f} | {result.test_accuracy:.4f} | {seconds:.0f} |"
        )

    if args.ray:
        from model_zoo import jobs

        print("\n| job on Ray | submit → saved version (s) |")
        print("|---|---:|")
        for arch in args.models.split(","):
            settings = fine_tune_settings(arch, args.epochs)
            started = time.perf_counter()
            job_id = jobs.submit(settings, owner="class-finetune")
            while (view := jobs.view(job_id)).active:
                time.sleep(0.2)  # a worker process: its row is all there is to watch
            if view.state != jobs.JobState.SAVED:
                raise SystemExit(f"job {job_id} ended {view.state.value}: {view.error}")
            print(f"| {arch} | {time.perf_counter() - started:.1f} |")


if __name__ == "__main__":
    main()
