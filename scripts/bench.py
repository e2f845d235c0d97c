"""Time the drawing → prediction path against plain Keras, in one run.

    python -m scripts.bench                 # every shipped model, 200 repeats
    python -m scripts.bench --repeats 50 --models cnn,cnn_robust
    python -m scripts.bench --class-jobs 10 # a class's training jobs on Ray (RAY_ADDRESS or local)

Reports median milliseconds per call for one 28×28 image: ``model.predict``
(the plain baseline), ``model.predict_on_batch``, and our NumPy fast path,
with the speed-up against the baseline measured in the same run; then the
whole path from a 280×280 canvas image to every model's probabilities.
With ``--class-jobs N`` it measures a class instead: N learners submit
mlp_1x50 jobs (10,000 digits, 2 epochs) at once; the wall time to all done on
Ray (a local instance with DIGIT_ZOO_TRAINING_SLOTS slots, or RAY_ADDRESS's
cluster) against the same N trainings, each saved as a version, one after
another in this process, as the app trained before Ray. The jobs' versions go to a throwaway database.
Timings are machine- and load-dependent: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from model_zoo import data, db, inference, preprocess, store, training


def median_ms(call, repeats: int) -> float:
    call()  # warm-up: tracing, caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def canvas_with_a_seven(size: int = 280) -> np.ndarray:
    """An RGBA canvas image with a thick white "7", like streamlit-drawable-canvas returns."""
    canvas = np.zeros((size, size, 4), np.uint8)
    canvas[60:80, 70:210] = 255  # the bar
    for row in range(80, 230):  # the stem, slanting left
        col = 200 - (row - 80) * 2 // 3
        canvas[row, col - 10:col + 10] = 255
    return canvas


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # defaults ---------------------------------------------------------------
    parser.add_argument("--models", default="", help="comma-separated names (default: every model)")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per measurement")
    parser.add_argument("--class-jobs", type=int, default=0, help="measure N training jobs instead")
    # ------------------------------------------------------------------------
    return parser.parse_args(argv)


def class_throughput(count: int) -> None:
    """N jobs at once on Ray against the same N one after another in this process."""
    from model_zoo import cluster, jobs  # Ray only for this measurement

    settings = training.TrainingSettings.for_architecture("mlp_1x50", epochs=2, train_size=10_000)
    mnist = data.load_mnist()
    started = time.perf_counter()
    for _ in range(count):  # each saved as a version, as a job's is
        store.save_result(training.train(settings, mnist=mnist), trained_in="scripts.bench")
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
    print(f"| Ray: {capacity} | {on_ray:.1f} s ({in_process / on_ray:.2f}× the baseline's speed) "
          f"| {saved} |")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.class_jobs:
        os.environ.setdefault(db.URL_VARIABLE, f"sqlite:///{tempfile.mkdtemp()}/bench.db")
        class_throughput(args.class_jobs)
        return
    listing = store.scan()
    names = [n for n in args.models.split(",") if n] or listing.names
    models = {name: inference.FastModel(store.load_model(listing.get(name).path)) for name in names}
    canvas = canvas_with_a_seven()
    image = preprocess.to_mnist(canvas)
    batch = image[np.newaxis]

    print(f"median ms per call, one image, {args.repeats} repeats\n")
    print("| model | model.predict (baseline) | predict_on_batch | NumPy fast path | speed-up |")
    print("|---|---:|---:|---:|---:|")
    baseline_total = fast_total = 0.0
    for name, fast in models.items():
        keras_model = fast.model
        plain = median_ms(lambda: keras_model.predict(batch, verbose=0), max(10, args.repeats // 10))
        on_batch = median_ms(lambda: keras_model.predict_on_batch(batch), args.repeats)
        ours = median_ms(lambda: fast.predict(image), args.repeats)
        baseline_total, fast_total = baseline_total + plain, fast_total + ours
        print(f"| {name} | {plain:.2f} | {on_batch:.3f} | {ours:.3f} | {plain / ours:.0f}× |")

    prep = median_ms(lambda: preprocess.to_mnist(canvas), args.repeats)
    whole = median_ms(lambda: inference.predict_all(models, preprocess.to_mnist(canvas)), args.repeats)
    print(f"\npreprocess 280×280 canvas → 28×28: {prep:.2f} ms")
    print(f"canvas → all {len(models)} models' probabilities: {whole:.2f} ms "
          f"(model.predict for each: {baseline_total + prep:.0f} ms, "
          f"{(baseline_total + prep) / whole:.0f}× slower)")


if __name__ == "__main__":
    main()
