"""Score every model in the zoo (shipped and user versions) and print the zoo table.

    python -m scripts.evaluate                          # Markdown table
    python -m scripts.evaluate --robustness             # + accuracy on shifted/rotated/scaled/thick digits
    python -m scripts.evaluate --json                   # the same as JSON
    python -m scripts.evaluate --update-records         # store USPS, pen, robustness, confusion matrix
    python -m scripts.evaluate --usps ../shared/data/usps.npz --models cnn,cnn_robust
    MNIST_PATH=../shared/data/mnist.npz python -m scripts.evaluate --robustness --recompute

Columns: parameters, epochs, mean training seconds per epoch, MNIST test
accuracy, the 2017 tutorial's accuracy and the difference, USPS test
accuracy when usps.npz is found (USPS_PATH, data/) or given, "pen": accuracy
on the real pen strokes of UNIPEN's test writers (never trained on), drawn with
the canvas's pen through the app's preprocessing, when unipen_pen.json.gz is
found (UNIPEN_PATH, data/, ../shared/data/) or given, and "drawn": accuracy
on the digits drawn with the mouse on the app's canvas
(model_zoo/drawn_set.npz, made by tests/browser/drawn_set.py), followed by a
table of its 0s, 6s and 9s drawn as one stroke that runs past its start.
Results already in a record are reused unless --recompute; the Zoo page reads
them from there, so run with --update-records after training the zoo.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from model_zoo import architectures, data, evaluation, model_files, store


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # defaults ---------------------------------------------------------------
    parser.add_argument("--models", default="", help="comma-separated model names (default: all in the zoo)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument("--robustness", action="store_true", help="also print the robustness curves")
    parser.add_argument(
        "--update-records",
        action="store_true",
        help="write the computed fields into the models' records (shipped ones too)",
    )
    parser.add_argument("--recompute", action="store_true", help="ignore results cached in the records")
    parser.add_argument("--mnist", default=None, help="mnist.npz (default: MNIST_PATH, data/, Keras cache)")
    parser.add_argument("--usps", default=None, help="usps.npz (default: USPS_PATH, data/usps.npz)")
    parser.add_argument("--pen", default=None, help="unipen_pen.json.gz (default: UNIPEN_PATH, data/, ../shared/data/)")
    # ------------------------------------------------------------------------
    args = parser.parse_args(argv)
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    return args


def evaluate_all(args: argparse.Namespace) -> tuple[list[store.ZooEntry], list[str]]:
    """Each selected entry with the fields the output needs (computed where missing)."""
    listing = store.scan()
    entries = [listing.get(name) for name in args.models] if args.models else listing.entries
    usps_found = data.find_usps(args.usps) is not None
    pen_found = data.find_pen_digits(args.pen) is not None
    mnist = None
    done = []
    for entry in entries:
        fields = evaluation.missing_fields(entry, usps=usps_found, pen=pen_found, recompute=args.recompute)
        if not args.robustness and not args.update_records:
            fields = [f for f in fields if f in ("usps_accuracy", "drawn", "pen")]  # what the tables need
        if fields:
            started = time.perf_counter()
            if mnist is None and {"robustness", "confusion_matrix"} & set(fields):
                mnist = evaluation.mnist_test(args.mnist)
            model = model_files.load_model(entry.model_file())
            computed = evaluation.evaluate_fields(model, fields, mnist=mnist, usps_path=args.usps, pen_path=args.pen)
            if args.update_records:
                entry = store.update_record(entry, **computed)
            else:
                entry = entry.with_record(entry.record | computed)
            print(
                f"{entry.name}: {', '.join(fields)} in {time.perf_counter() - started:.1f} s"
                + (" (saved)" if args.update_records else ""),
                file=sys.stderr,
            )
        done.append(entry)
    return done, listing.problems


def _cell(key: str, value) -> str:
    if value is None:
        return "—"
    if key == "params":
        return f"{value:,}"
    if key == "difference":
        return f"{value:+.4f}"
    if isinstance(value, float):
        return f"{value:.4f}" if key != "s_per_epoch" else f"{value:.1f}"
    return str(value)


def markdown_table(rows: list[dict], headers: dict[str, str]) -> str:
    numeric = {key for key in headers if any(isinstance(row.get(key), (int, float)) for row in rows)}
    lines = [
        "| " + " | ".join(headers.values()) + " |",
        "|" + "|".join("---:" if key in numeric else "---" for key in headers) + "|",
    ]
    lines += ["| " + " | ".join(_cell(key, row.get(key)) for key in headers) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        entries, problems = evaluate_all(args)
    except (architectures.UnknownModelError, model_files.ModelFileError, data.DataError) as error:
        sys.exit(f"evaluate: {error}")
    for problem in problems:
        print(problem, file=sys.stderr)
    rows = [evaluation.table_row(entry) for entry in entries]
    headers = dict(evaluation.TABLE_HEADERS)
    for column in ("usps_test", "drawn", "pen"):
        if all(row[column] is None for row in rows):
            headers.pop(column)
    overshoot = [
        {"model": entry.name} | entry.record["drawn_overshoot_accuracy"]
        for entry in entries
        if "drawn_overshoot_accuracy" in entry.record
    ]

    if args.json:
        output = {"models": rows, "drawn_overshoot": overshoot}
        if args.robustness:
            output["robustness_setup"] = evaluation.ROBUSTNESS_SETUP
            output["robustness"] = {entry.name: entry.record.get("robustness") for entry in entries}
        print(json.dumps(output, indent=1))
        return

    print(markdown_table(rows, headers))
    if overshoot:
        print("\nDrawn set: 0s, 6s and 9s drawn in one stroke that runs past its start\n")
        print(markdown_table(overshoot, {"model": "model"} | {d: d for d in evaluation.OVERSHOOT_DIGITS}))
    if args.robustness:
        setup = evaluation.ROBUSTNESS_SETUP
        print(
            f"\nRobustness: accuracy on {setup['digits']:,} MNIST test digits "
            f"(seeded subset, seed {setup['seed']}), distorted."
        )
        for distortion in evaluation.DISTORTIONS:
            table = evaluation.robustness_rows(entries, distortion)
            values = [f"{v:g}" for v in setup[distortion]]
            print(f"\n{evaluation.DISTORTION_LABELS[distortion]}\n")
            print(markdown_table(table, {"model": "model"} | {v: v for v in values}))


if __name__ == "__main__":
    main()
