"""How cnn_robust's pen finish was chosen: on validation digits only, never a test set.

    python -m scripts.experiments.pen_finish_trial                     # ~35 min on 2 idle cores
    python -m scripts.experiments.pen_finish_trial --usps-repeats 1,2,3

scripts.train_zoo trains cnn_robust in two stages: its first, on MNIST + USPS
train, then pen_finish_epochs more from those weights with every training
digit's pen version added (and every 1 once more with a European flag) and
the real pen strokes of UNIPEN's train writers. This
script repeats both stages with a tenth of USPS's training digits held out,
and finishes once per --usps-repeats (how many times USPS's digits go into
the finish; 1 is what train_zoo does). It prints, for the first stage and
each finish, accuracy on the held-out validation digits only:

- MNIST validation: train_zoo's own split (10 % of MNIST's training digits);
- USPS validation: the tenth of USPS's training digits held out here;
- UNIPEN's validation writers (data.pen_part): real pen strokes drawn as written
  with the canvas's pen (never their test writers: that is the pen column);
- the class set: tests/fixtures/class_digits.npz, digits drawn with the mouse
  on the app's canvas by a sloppier hand than the drawn test set's, never
  trained on by the shipped models (not the drawn set: that is the test);
- its 1s and 7s, the pair a European flag could confuse.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from model_zoo import architectures, data, evaluation, model_files, strokes, training
from scripts.train_zoo import pen_finish_settings, train_with_bar

CLASS_SET = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "class_digits.npz"
USPS_HELD_OUT = 0.1


def scores(model, validation: dict) -> str:
    """One table row: accuracy on each validation set, then on the class set's 1s and its 7s."""
    x_class, y_class = validation["class set"]
    sets = [*validation.values(), *((x_class[y_class == d], y_class[y_class == d]) for d in (1, 7))]
    return " | ".join(f"{evaluation.accuracy(model, x, y):.4f}" for x, y in sets)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--usps-repeats", default="1,2", help="comma-separated: USPS's share in each finish")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    repeats = [int(n) for n in args.usps_repeats.split(",")]

    arch = architectures.get("cnn_robust")
    first_settings = training.TrainingSettings.for_architecture(arch.name, seed=args.seed)
    mnist = data.load_mnist()
    _, (x_mnist_val, y_mnist_val) = training.split_train_validation(*mnist[0], first_settings)
    (x_usps, y_usps), usps_test = data.load_usps()
    order = np.random.default_rng(args.seed).permutation(len(x_usps))
    held = round(USPS_HELD_OUT * len(x_usps))
    fit, kept_back = order[held:], order[:held]
    class_set = np.load(CLASS_SET)
    pen_validation = data.pen_split(data.load_pen_digits())["validation"]
    validation = {
        "MNIST validation": (x_mnist_val, y_mnist_val),
        "USPS validation": (x_usps[kept_back], y_usps[kept_back]),
        "UNIPEN validation writers": strokes.pen_digit_images(pen_validation, seed=args.seed),
        "class set": (class_set["x"], class_set["y"]),
    }

    first = train_with_bar(first_settings, mnist, usps=((x_usps[fit], y_usps[fit]), usps_test))
    rows = [("first stage", scores(first.model, validation))]
    for times in repeats:
        usps = ((np.concatenate([x_usps[fit]] * times), np.concatenate([y_usps[fit]] * times)), usps_test)
        finished = train_with_bar(
            pen_finish_settings(arch, args.seed), mnist, usps=usps, start_from=model_files.model_bytes(first.model)
        )
        rows.append((f"finish, USPS × {times}", scores(finished.model, validation)))

    print(f"\n| cnn_robust | {' | '.join(validation)} | class set 1s | class set 7s |")
    print("|---|" + "---:|" * (len(validation) + 2))
    for name, row in rows:
        print(f"| {name} | {row} |")
    print(
        f"\n{len(x_mnist_val):,} MNIST, {held:,} USPS, {len(pen_validation):,} UNIPEN and "
        f"{len(class_set['y'])} class-set digits."
    )


if __name__ == "__main__":
    main()
