"""The one benchmark of what a user waits for, each figure beside its baseline measured in the same run.

Long on purpose: each part's measurement sits beside its baseline and the table that writes it
into docs/performance.md.

    python -m scripts.benchmarks.bench                   # 1. drawing → all models (a minute or two)
    python -m scripts.benchmarks.bench --training        # + 3. training throughput, ours vs plain fit (~12 min)
    python -m scripts.benchmarks.bench --browser         # + 2. stroke → answer, 4. cold start, 5. a class (~10 min)
    python -m scripts.benchmarks.bench --browser --class-sessions 0   # the browser parts without the class
    python -m scripts.benchmarks.bench --json            # the same rows as JSON
    python -m scripts.benchmarks.bench --browser --write-docs   # also write the tables into docs/performance.md
    python -m scripts.benchmarks.bench --quick           # tiny counts: only checks that it runs (tests/test_bench.py)
    python -m scripts.benchmarks.bench --class-jobs 10   # a class's training jobs on Ray (a table of its own)

1. A 280×280 canvas through ``preprocess.to_mnist`` and every zoo model's
   NumPy fast path, over varied drawings (MNIST test digits redrawn with the
   canvas's pen, model_zoo.strokes), on one BLAS thread as in the web server;
   against ``model.predict`` per model on the same drawings.
2. Real Chromium, the real server: mouse-up to the whole answer on Draw and on
   Compare, split with the server's own log (scripts/benchmarks/bench_browser.py).
3. Digits per second and test accuracy of every tutorial architecture at its
   tutorial settings on the same 20,000 digits: ``training.train`` against a
   plain ``compile("adam")`` + ``fit(batch_size=128)``, and the plain fit on
   Keras's JAX backend when jax is installed; achieved GFLOP/s against the
   matrix-multiply peak measured in the same run.
4. Launch to the first Prediction in the browser, beside a bare ``import tensorflow``; then
   the server's resident memory after a drawing on Draw, Compare and Inside and after
   opening Class and Zoo. Both also for the app as it was at ``--before`` (a git ref,
   unpacked with ``git archive``, started and toured the same way in the same run);
   ``--tours`` rounds of bare import, before and now, in turn, medians reported.
5. N tabs (8 in 10 on Draw, the rest on Compare) each drawing every 2 s, idle
   and while a job trains: stroke → answer as the browsers see it, errors,
   and the server's own share per run (received → last message queued).

Timings depend on the machine and its load: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from model_zoo import data, db, model_files, store, training, training_inputs

SECONDS_TO_MS = 1000
DOCS = Path(__file__).resolve().parents[2] / "docs" / "performance.md"  # what --write-docs writes
BEFORE = "f046a4a"  # the last commit whose web server imported TensorFlow: part 4's baseline


@dataclass
class Row:
    """One line of the table: a measurement, its baseline from the same run, and its target."""

    part: str
    measure: str
    p50: float
    p95: float | None = None
    unit: str = "ms"
    p99: float | None = None
    baseline: float | None = None  # the same measure on the plain path
    baseline_name: str = ""
    speedup: float | None = None  # how many times better than the baseline
    target: str = ""
    met: bool | None = None
    note: str = ""  # what failed, for errors


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def timed_rows(part: str, measure: str, seconds: list[float], **fields) -> Row:
    return Row(
        part, measure, percentile(seconds, 50) * SECONDS_TO_MS, percentile(seconds, 95) * SECONDS_TO_MS, **fields
    )


# ---------------------------------------------------------------- 1. drawing → all models


def varied_canvases(count: int, seed: int = 0) -> list[np.ndarray]:
    """Canvas images (280×280 RGBA) of MNIST test digits drawn with a pen of random width, size and place."""
    from model_zoo import strokes  # scikit-image (requirements-dev.txt)

    (_, _), (x_test, _) = data.load_mnist()
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(x_test), count, replace=False)
    return [strokes.render(*strokes.drawn_strokes(x_test[i], rng)) for i in picks]


def drawing_rows(count: int, plain_count: int) -> list[Row]:
    from threadpoolctl import threadpool_limits

    from model_zoo import inference, preprocess

    part = "1. drawing → all models"
    listing = store.scan()
    models = {name: model_files.read_model(listing.get(name).model_file()) for name in listing.names}
    keras_models = {
        name: model_files.load_model(listing.get(name).model_file()) for name in listing.names
    }  # the baseline
    canvases = varied_canvases(count)
    prep, whole = [], []
    per_model = {name: [] for name in models}
    plain = {name: [] for name in models}
    with threadpool_limits(1, user_api="blas"):  # as the web server (startup.limit_blas_threads)
        for canvas in canvases[:5]:  # warm-up: caches, first-call allocations
            inference.predict_all(models, preprocess.to_mnist(canvas))
        for canvas in canvases:
            started = time.perf_counter()
            inference.predict_all(models, preprocess.to_mnist(canvas))
            whole.append(time.perf_counter() - started)
        for canvas in canvases:  # the parts apart
            started = time.perf_counter()
            image = preprocess.to_mnist(canvas)
            prep.append(time.perf_counter() - started)
            for name, model in models.items():
                per_model[name].append(model.predict(image).seconds)
    for model in keras_models.values():
        model.predict(np.zeros((1, 28, 28), np.float32), verbose=0)  # warm-up: tracing
    plain_whole = []
    for canvas in canvases[:plain_count]:
        started = time.perf_counter()
        batch = preprocess.to_mnist(canvas)[np.newaxis]
        for name, model in keras_models.items():
            called = time.perf_counter()
            model.predict(batch, verbose=0)
            plain[name].append(time.perf_counter() - called)
        plain_whole.append(time.perf_counter() - started)

    def against_plain(measure, ours, theirs, **fields):
        row = timed_rows(
            part,
            measure,
            ours,
            baseline=statistics.median(theirs) * SECONDS_TO_MS,
            baseline_name="model.predict",
            **fields,
        )
        row.speedup = row.baseline / row.p50
        return row

    rows = [timed_rows(part, "preprocessing (to_mnist)", prep)]
    rows += [against_plain(f"model {name}", per_model[name], plain[name]) for name in models]
    total = against_plain(
        f"preprocessing + all {len(models)} models", whole, plain_whole, target="≤ 3 ms median, ≥ 100×"
    )
    total.met = total.p50 <= 3 and total.speedup >= 100
    return rows + [total]


# ---------------------------------------------------------------- 3. training


def forward_flops(model) -> int:
    """Multiply-adds × 2 of one digit through the model's Dense and Conv2D layers."""
    flops = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Dense":
            fan_in, fan_out = layer.kernel.shape
            flops += 2 * fan_in * fan_out
        elif kind == "Conv2D":
            kh, kw, channels, filters = layer.kernel.shape
            _, height, width, _ = layer.output.shape
            flops += 2 * kh * kw * channels * filters * height * width
    return int(flops)


def matmul_peak_gflops(size: int = 1024, repeats: int = 10) -> float:
    """The best float32 matrix-multiply rate this machine reaches now, every core (NumPy's BLAS)."""
    a = np.random.default_rng(0).random((size, size), np.float32)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def plain_fit(arch: str, epochs: int, train_size: int) -> dict:
    """The baseline: the architecture built, ``compile("adam")``, ``fit(batch_size=128)``, on ours' digits."""
    import keras

    from model_zoo import architectures

    settings = training.TrainingSettings.for_architecture(arch, epochs=epochs, train_size=train_size)
    (x_all, y_all), (x_test, y_test) = data.load_mnist()
    (x_train, y_train), _ = training.split_train_validation(x_all, y_all, settings)  # the very digits ours trains on
    keras.utils.set_random_seed(settings.seed)
    model = architectures.get(arch).build(
        width=settings.width or None, hidden_layers=settings.hidden_layers or None, dropout=settings.dropout
    )
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(data.to_float(x_train), y_train, batch_size=128, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - started
    _, accuracy = model.evaluate(data.to_float(x_test), y_test, batch_size=1000, verbose=0)
    return {
        "digits_per_second": len(x_train) * epochs / seconds,
        "accuracy": float(accuracy),
        "gflop": forward_flops(model) * 3 / 1e9,
    }  # forward + backward ≈ 3 forward passes


def plain_fit_on_jax(arch: str, epochs: int, train_size: int) -> dict | None:
    """``plain_fit`` in a child process on Keras's JAX backend (fixed per process), or None without jax."""
    if importlib.util.find_spec("jax") is None:
        return None
    done = subprocess.run(
        [sys.executable, "-m", "scripts.benchmarks.bench", "--plain-fit", arch, str(epochs), str(train_size)],
        capture_output=True,
        text=True,
        env=os.environ | {"KERAS_BACKEND": "jax"},
        cwd=Path(__file__).resolve().parents[2],
    )
    if done.returncode:
        raise RuntimeError(f"plain fit on JAX failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def training_rows(names: list[str], train_size: int, epochs: int | None) -> list[Row]:
    part = "3. training"
    mnist = data.load_mnist()
    peak = matmul_peak_gflops()
    rows = [Row(part, "matrix-multiply peak, float32, all cores", peak, unit="GFLOP/s")]
    for name in names:
        settings = training.TrainingSettings.for_architecture(
            name, train_size=train_size, **({"epochs": epochs} if epochs else {})
        )
        result = training.train(settings, **training_inputs.gather(settings, mnist=mnist))
        ours = result.train_digits * result.epochs_done / sum(result.seconds_per_epoch)
        plain = plain_fit(name, settings.epochs, train_size)
        label = f"{name}, {settings.epochs} epochs"
        row = Row(
            part,
            f"{label}: digits/s, ours",
            ours,
            unit="digits/s",
            baseline=plain["digits_per_second"],
            baseline_name="plain fit",
            speedup=ours / plain["digits_per_second"],
            target="≥ 2× at ±0.3 points",
        )
        accuracy_gap = abs(result.test_accuracy - plain["accuracy"]) * 100
        row.met = row.speedup >= 2 and accuracy_gap <= 0.3
        rows.append(row)
        rows.append(
            Row(
                part,
                f"{label}: test accuracy, ours",
                result.test_accuracy * 100,
                unit="%",
                baseline=plain["accuracy"] * 100,
                baseline_name="plain fit",
            )
        )
        rows.append(
            Row(
                part,
                f"{label}: achieved GFLOP/s, ours",
                ours * plain["gflop"],
                unit="GFLOP/s",
                baseline=peak,
                baseline_name="matmul peak",
                speedup=ours * plain["gflop"] / peak,
            )
        )
        if jax := plain_fit_on_jax(name, settings.epochs, train_size):
            rows.append(
                Row(
                    part,
                    f"{label}: digits/s, plain fit on JAX",
                    jax["digits_per_second"],
                    unit="digits/s",
                    baseline=plain["digits_per_second"],
                    baseline_name="plain fit (TensorFlow)",
                    speedup=jax["digits_per_second"] / plain["digits_per_second"],
                )
            )
            rows.append(
                Row(
                    part,
                    f"{label}: test accuracy, plain fit on JAX",
                    jax["accuracy"] * 100,
                    unit="%",
                    baseline=plain["accuracy"] * 100,
                    baseline_name="plain fit (TensorFlow)",
                )
            )
    return rows


# ---------------------------------------------------------------- 2, 4, 5. in the browser


def browser_rows(drawings: int, class_sessions: int, class_seconds: float, before: str, tours: int) -> list[Row]:
    from scripts.benchmarks import bench_browser

    with tempfile.TemporaryDirectory(prefix="digit_zoo_bench_") as scratch:
        results = asyncio.run(
            bench_browser.measure(
                drawings=drawings,
                class_sessions=class_sessions,
                class_seconds=class_seconds,
                scratch=Path(scratch),
                before=before,
                tours=tours,
            )
        )
    rows = []
    for page, target in (("draw", "p50 ≤ 270 ms, p95 ≤ 350 ms"), ("compare", "within 50 ms of Draw")):
        parts = results[f"one session: {page}"]
        for measure, seconds in parts.items():
            if seconds:
                rows.append(
                    timed_rows(
                        "2. stroke → answer, one session",
                        f"{page}: {measure}",
                        seconds,
                        target=target if measure == "stroke → answer" else "",
                    )
                )
    draw_row, compare_row = (
        next(r for r in rows if r.measure == f"{page}: stroke → answer") for page in ("draw", "compare")
    )
    draw_row.met = draw_row.p50 <= 270 and draw_row.p95 <= 350
    compare_row.met = compare_row.p50 - draw_row.p50 <= 50 and compare_row.p95 - draw_row.p95 <= 50

    now, before, bare = results["now"], results["before"], results["import tensorflow"]
    ref = results["before ref"]

    def cold_start(measure: str, tours: list, **fields) -> Row:
        row = Row(
            "4. cold start",
            measure,
            percentile([t.cold_start for t in tours], 50),
            percentile([t.cold_start for t in tours], 95) if len(tours) > 1 else None,
            unit="s",
            baseline=percentile(bare, 50),
            baseline_name="import tensorflow",
            **fields,
        )
        row.speedup = row.baseline / row.p50
        return row

    rows.append(
        Row(
            "4. cold start",
            "bare import tensorflow",
            percentile(bare, 50),
            percentile(bare, 95) if len(bare) > 1 else None,
            unit="s",
        )
    )
    first = cold_start("launch → first Prediction in the browser", now, target="≤ 1.0 × import tensorflow")
    first.met = first.p50 <= first.baseline
    rows.append(first)
    rows += [
        Row("4. cold start", part, percentile([t.parts[part] for t in now], 50), unit="s") for part in now[0].parts
    ]
    if before:
        rows.append(cold_start(f"launch → first Prediction, before ({ref})", before))
    for page in now[0].resident_mb:
        row = Row(
            "4. server memory",
            f"after {'drawing on' if page in bench_browser.DONE_TEXT else 'opening'} {page.capitalize()}",
            percentile([t.resident_mb[page] for t in now], 50),
            unit="MB",
        )
        if before:
            row.baseline = percentile([t.resident_mb[page] for t in before], 50)
            row.baseline_name, row.target = f"before ({ref})", "≤ ½ of before"
            row.speedup, row.met = row.baseline / row.p50, row.p50 <= row.baseline / 2
        rows.append(row)
    for condition, measured in results.items():
        if not condition.startswith(f"{class_sessions} sessions"):
            continue
        part = f"5. classroom, {condition}"
        rows.append(timed_rows(part, "stroke → answer in the browsers", measured["stroke → answer"]))
        share = timed_rows(
            part, "server's own share per run", measured["server: received → last message"], target="p95 ≤ 100 ms"
        )
        share.met = share.p95 <= 100
        errors = measured["errors"]
        rows += [
            share,
            Row(
                part,
                "errors",
                len(errors),
                unit="errors",
                target="0",
                met=not errors,
                note="; ".join(sorted(set(errors))),
            ),
        ]
    return rows


# ---------------------------------------------------------------- a class's jobs on Ray


def class_throughput(count: int) -> None:
    """N jobs at once on Ray against the same N one after another in this process.

    N learners submit mlp_1x50 jobs (10,000 digits, 2 epochs) at once: the wall
    time to all done on Ray (a local instance with DIGIT_ZOO_TRAINING_SLOTS
    slots, or RAY_ADDRESS's cluster) against the same N trainings, each saved
    as a version, one after another in this process, as the app trained before
    Ray. The versions go to a throwaway database.
    """
    from model_zoo import cluster, jobs  # Ray only for this measurement

    settings = training.TrainingSettings.for_architecture("mlp_1x50", epochs=2, train_size=10_000)
    mnist = data.load_mnist()
    started = time.perf_counter()
    for _ in range(count):  # each saved as a version, as a job's is
        store.save_result(training.train(settings, mnist=mnist), trained_in="scripts.benchmarks.bench")
    in_process = time.perf_counter() - started

    capacity = cluster.capacity() if cluster.connect() else None
    started = time.perf_counter()
    ids = [jobs.submit(settings, owner=f"learner-{i}") for i in range(count)]
    while any(view.active for view in jobs.views()):
        time.sleep(0.2)
    on_ray = time.perf_counter() - started
    ended = [jobs.view(job_id) for job_id in ids]
    saved = sum(view.state == jobs.JobState.SAVED for view in ended)
    print(f"{count} mlp_1x50 jobs (10,000 digits, 2 epochs), submitted at once\n")
    print("| where | wall time to all done | jobs saved |")
    print("|---|---:|---:|")
    print(f"| one after another in this process (baseline) | {in_process:.1f} s | {count} |")
    print(f"| Ray: {capacity} | {on_ray:.1f} s ({in_process / on_ray:.2f}× the baseline's speed) | {saved} |")


# ---------------------------------------------------------------- the table


def machine() -> dict:
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit in ("digits/s", "errors", "sessions"):
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| part | measure | p50 | p95 | unit | baseline (same run) | × baseline | target | met |",
        "|---|---|---:|---:|---|---:|---:|---|---|",
    ]
    for row in rows:
        baseline = f"{_number(row.baseline, row.unit)} ({row.baseline_name})" if row.baseline is not None else ""
        speedup = "" if row.speedup is None else f"{row.speedup:,.0f}×" if row.speedup >= 100 else f"{row.speedup:.3g}×"
        notes = [f"p99 {_number(row.p99, row.unit)} {row.unit}"] if row.p99 is not None else []
        notes += [row.note] if row.note else []
        met = {True: "yes", False: "**no**", None: ""}[row.met] + (f" ({'; '.join(notes)})" if notes else "")
        lines.append(
            f"| {row.part} | {row.measure} | {_number(row.p50, row.unit)} | {_number(row.p95, row.unit)} "
            f"| {row.unit} | {baseline} | {speedup} | {row.target} | {met} |"
        )
    return "\n".join(lines)


def part_number(row: Row) -> str:
    """ "1" for "1. drawing → all models": the part a row belongs to."""
    return row.part.split(".", 1)[0]


def docs_markers(part: str) -> tuple[str, str]:
    """The lines that enclose part `part`'s table in docs/performance.md."""
    return (
        f"<!-- scripts.benchmarks.bench part {part}: written by --write-docs -->",
        f"<!-- /scripts.benchmarks.bench part {part} -->",
    )


def run_line(about: dict, command: str) -> str:
    """One sentence naming the run: its command, the machine and its load."""
    python = f", Python {about['python']}" if about.get("python") else ""
    return (
        f"Run: `{command}` on {about['cpu']}, {about['cores']} cores{python}; load average "
        f"{about['load_average_at_start']} at the start, {about['load_average_at_end']} at the end."
    )


def docs_with_rows(text: str, rows: list[Row], about: dict, command: str, table=None) -> str:
    """`text` (docs/performance.md) with the table of every part in `rows` replaced by this run's.

    Only what lies between a part's two markers (docs_markers) changes: the
    explanations around them, and the parts this run did not measure, stay.
    A part with no markers in `text` is an error naming the missing line.
    ``table`` makes a part's rows a table (default: ``markdown``).
    """
    table = table or markdown
    for part in dict.fromkeys(part_number(row) for row in rows):
        begin, end = docs_markers(part)
        start = text.find(begin)
        stop = text.find(end, start + len(begin)) if start >= 0 else -1
        if stop < 0:
            raise ValueError(
                f"part {part}'s table has no place in the text: add the lines {begin!r} and {end!r} around it"
            )
        written = table([row for row in rows if part_number(row) == part])
        text = f"{text[: start + len(begin)]}\n{run_line(about, command)}\n\n{written}\n{text[stop:]}"
    return text


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # defaults ---------------------------------------------------------------
    parser.add_argument("--drawings", type=int, default=200, help="varied drawings through every model")
    parser.add_argument(
        "--plain-drawings",
        type=int,
        default=30,
        help="of those, drawings through model.predict (~0.1 s per model each)",
    )
    parser.add_argument("--training", action="store_true", help="also part 3: training throughput")
    parser.add_argument("--train-size", type=int, default=20_000, help="digits for part 3")
    parser.add_argument("--epochs", type=int, default=0, help="part 3's epochs (default: each tutorial's)")
    parser.add_argument("--models", default="", help="part 3's architectures (default: the tutorial's)")
    parser.add_argument("--browser", action="store_true", help="also parts 2, 4 and 5: Chromium and the server")
    parser.add_argument("--browser-drawings", type=int, default=50, help="part 2's drawings per page")
    parser.add_argument("--class-sessions", type=int, default=10, help="part 5's tabs (0: skip part 5)")
    parser.add_argument("--class-seconds", type=float, default=60, help="part 5's drawing time per condition")
    parser.add_argument("--tours", type=int, default=3, help="part 4's cold starts, each app in turn (medians)")
    parser.add_argument(
        "--before",
        default=BEFORE,
        help="part 4's baseline: the app at this git ref "
        "(default: the last one whose server imported TensorFlow; '' to skip)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks that everything runs")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help=f"also write each measured part's table into {DOCS.relative_to(DOCS.parents[1])}",
    )
    parser.add_argument("--class-jobs", type=int, default=0, help="measure N training jobs on Ray instead")
    # ARCH EPOCHS DIGITS: the child process of plain_fit_on_jax
    parser.add_argument("--plain-fit", nargs=3, help=argparse.SUPPRESS)
    # ------------------------------------------------------------------------
    args = parser.parse_args(argv)
    if args.write_docs and args.quick:
        parser.error("--quick's tiny counts are not measurements: --write-docs needs a full run")
    if args.write_docs and args.class_jobs:
        parser.error("--class-jobs prints a table of its own: --write-docs writes parts 1 to 5 only")
    if args.quick:
        args.drawings, args.plain_drawings, args.train_size, args.epochs = 8, 2, 1000, 1
        args.models = args.models or "mlp_1x50"
        args.browser_drawings, args.class_sessions, args.class_seconds = 3, min(args.class_sessions, 2), 8
        args.tours = 1
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.plain_fit:
        arch, epochs, digits = args.plain_fit
        print(json.dumps(plain_fit(arch, int(epochs), int(digits))))
        return
    if args.class_jobs:  # saved versions and jobs go to a throwaway database
        os.environ.setdefault(db.URL_VARIABLE, f"sqlite:///{tempfile.mkdtemp()}/bench.db")
        class_throughput(args.class_jobs)
        return
    about = machine()
    rows = drawing_rows(args.drawings, args.plain_drawings)
    if args.training:
        from model_zoo import architectures

        names = [n for n in args.models.split(",") if n] or architectures.TUTORIAL_MODELS
        rows += training_rows(names, args.train_size, args.epochs or None)
    if args.browser:
        rows += browser_rows(args.browser_drawings, args.class_sessions, args.class_seconds, args.before, args.tours)
    about["load_average_at_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps({"machine": about, "rows": [asdict(row) for row in rows]}, indent=1))
    else:
        print(
            f"{about['cpu']}, {about['cores']} cores, Python {about['python']}; load average "
            f"{about['load_average_at_start']} at the start, {about['load_average_at_end']} at the end\n"
        )
        print(markdown(rows))
    if args.write_docs:  # after printing, so a missing marker loses no run
        command = " ".join(
            [
                "python -m scripts.benchmarks.bench",
                *(a for a in (sys.argv[1:] if argv is None else argv) if a != "--write-docs"),
            ]
        )
        DOCS.write_text(docs_with_rows(DOCS.read_text(), rows, about, command))
        print(f"Wrote part {', '.join(dict.fromkeys(part_number(r) for r in rows))} into {DOCS}", file=sys.stderr)


if __name__ == "__main__":
    main()
