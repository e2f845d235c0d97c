"""Time the drawing → prediction path against plain Keras, in one run.

    python -m scripts.bench                 # every shipped model, 200 repeats
    python -m scripts.bench --repeats 50 --models cnn,cnn_robust

Reports median milliseconds per call for one 28×28 image: ``model.predict``
(the plain baseline), ``model.predict_on_batch``, and our NumPy fast path,
with the speed-up against the baseline measured in the same run; then the
whole path from a 280×280 canvas image to every model's probabilities.
Timings are machine- and load-dependent: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from model_zoo import inference, preprocess, store


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
    # ------------------------------------------------------------------------
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
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
