"""A model card: what a model is, what it learnt from, how well it reads, where it fails, in Markdown.

Written from the model's record (``store``'s ``ZooEntry``), for a learner who
takes the model home as a ``.keras`` file: the card travels beside it. It names
no learner: the record's owner and the machine it trained on stay out.
"""

from __future__ import annotations

from model_zoo import evaluation
from model_zoo.store import ZooEntry

SETTINGS = {  # record["settings"] key → how the card names it
    "epochs": "epochs",
    "batch_size": "batch size",
    "learning_rate": "learning rate",
    "optimizer": "optimizer",
    "dropout": "dropout",
    "width": "width",
    "hidden_layers": "hidden layers",
    "train_size": "training digits asked",
    "augment": "augmented (shifted, rotated, scaled)",
    "seed": "seed",
}
ACCURACIES = {  # record key → the test it names
    "test_accuracy": "MNIST test (10,000 digits)",
    "usps_accuracy": "USPS test (2,007 digits scanned from US mail)",
    "drawn_accuracy": "drawn (digits drawn with the mouse on the app's canvas)",
    "pen_accuracy": "pen (real people's pen strokes, writers never seen in training)",
}
CONFUSIONS = 3  # the commonest misreadings listed

USAGE = """```python
import keras

model = keras.models.load_model("{file}")
probabilities = model.predict(images)  # images: (N, 28, 28) float32 in [0, 1] → (N, 10)
digits = probabilities.argmax(axis=1)
```

Like MNIST's digits, `images` are white on black, the digit fitted into a 20 × 20 box and centred by
its centre of mass in 28 × 28 (the app's `model_zoo/preprocess.py` does this to any picture)."""


def file_name(entry: ZooEntry) -> str:
    return f"{entry.name}.keras"


def markdown(entry: ZooEntry) -> str:
    """The card for ``entry``, from its record (with the Zoo's evaluated fields where present)."""
    record = entry.record
    settings = record.get("settings", {})
    lines = [f"# {entry.name}", "", f"{entry.arch.summary} ({entry.origin}), {record.get('params', 0):,} parameters."]
    if entry.arch.lesson:
        lines += ["", entry.arch.lesson]
    lines += [
        "",
        "## Trained on",
        "",
        f"{evaluation.trained_on(settings, record.get('first_stage'))}: "
        f"{record.get('train_digits', 0):,} digits, {record.get('val_digits', 0):,} kept aside to "
        f"validate, {sum(stage.get('epochs_done', 0) for stage in evaluation.stages(record))} epochs"
        + (" (stopped early)" if record.get("stopped_early") else "")
        + ".",
    ]
    lines += ["", "| setting | value |", "|---|---|"]
    lines += [
        f"| {label} | {_value(settings[key])} |"
        for key, label in SETTINGS.items()
        if key in settings and (settings[key] not in ("", 0) or key in ("dropout", "seed"))
    ]
    lines += ["", "## How well it reads", "", "| test | accuracy |", "|---|---:|"]
    lines += [
        f"| {label} | {record[key]:.2%} |"
        for key, label in ACCURACIES.items()
        if isinstance(record.get(key), float | int)
    ]
    if class_accuracy := (record.get("history") or {}).get("class_accuracy"):
        lines.append(f"| the class's held-out digits | {class_accuracy[-1]:.2%} |")
    lines += ["", "## Known weaknesses", "", *weaknesses(record)]
    lines += ["", "## Use it", "", USAGE.format(file=file_name(entry)), ""]
    return "\n".join(lines)


def _value(setting) -> str:
    return ("no", "yes")[setting] if isinstance(setting, bool) else str(setting)


def weaknesses(record: dict) -> list[str]:
    """Bullet lines: the commonest misreadings on MNIST test, and what distortions cost it."""
    lines = []
    matrix = record.get("confusion_matrix")
    if matrix:
        pairs = sorted(
            (
                (count, true, said)
                for true, row in enumerate(matrix)
                for said, count in enumerate(row)
                if said != true and count
            ),
            reverse=True,
        )
        for count, true, said in pairs[:CONFUSIONS]:
            lines.append(f"- reads a {true} as a {said}: {count} of the {sum(matrix[true]):,} test {true}s")
    curves = record.get("robustness") or {}
    for distortion, value, words in (
        ("shift", 4, "moved 4 px off-centre"),
        ("rotation", 25, "turned 25°"),
        ("scale", 0.6, "shrunk to 60 %"),
        ("thickness", 3, "drawn 3 px thicker"),
    ):
        accuracy = dict((v, a) for v, a in curves.get(distortion, []))
        if value in accuracy:
            lines.append(f"- test digits {words}: {accuracy[value]:.1%} read right")
    return lines or ["- not measured yet: open the model on the Zoo page, which scores it on the MNIST test digits"]
