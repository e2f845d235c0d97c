"""Time the Inside page per stroke for every model, and its saliency maps on demand.

    python -m scripts.benchmarks.bench_inside                  # every model, 40 drawings each
    python -m scripts.benchmarks.bench_inside --drawings 20 --models cnn,cnn_robust

Each drawing is an MNIST test digit, enlarged to the 280 px canvas and handed
to the page as the canvas would send it. "Page" is one whole script run of
/inside (Streamlit's AppTest, no browser): canvas PNG decoded, preprocessed,
predicted, layer outputs, occlusion, every picture. The issue's budget is
150 ms p95 per stroke. "Saliency" is integrated gradients for the digit and
its runner-up, computed only when the toggle is on (budget: 1 s).

Wall time depends on what else runs: the load average is printed. CPU time
(this process, all its threads) is what the same work costs on a machine to
itself; it is larger than wall time when NumPy or TensorFlow use both cores.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from model_zoo import data, inference, inside, model_files, store

APP = Path(__file__).resolve().parents[2] / "app.py"


def canvas_data_url(digit: np.ndarray) -> str:
    """A (28, 28) uint8 digit as the canvas component sends a drawing: a 280 px RGBA PNG."""
    picture = Image.fromarray(digit).resize((280, 280), Image.Resampling.BILINEAR).convert("RGBA")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def percentiles(seconds: list[float]) -> str:
    p50, p95 = np.percentile(np.array(seconds) * 1000, [50, 95])
    return f"{p50:.0f} | {p95:.0f}"


class Clock:
    """Wall and CPU seconds of each timed block."""

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __enter__(self):
        self._started = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self.wall.append(time.perf_counter() - self._started[0])
        self.cpu.append(time.process_time() - self._started[1])


def page_seconds(name: str, drawings: list[str]) -> Clock:
    """One /inside?model=NAME script run per drawing (after a warm-up run)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["model"] = name
    at.run()
    at.switch_page("app_pages/inside.py").run()
    at.session_state["inside_canvas_0"] = canvas_state(drawings[0])
    at.run()  # loads the model
    clock = Clock()
    for url in drawings:
        at.session_state["inside_canvas_0"] = canvas_state(url)
        with clock:
            at.run()
        if at.exception:
            raise RuntimeError(f"/inside?model={name} failed: {at.exception[0].message}")
    return clock


def canvas_state(url: str) -> dict:
    """What the canvas component puts in session state after a stroke."""
    return {"drawing": {"raw": {"objects": [{"type": "Path"}]}, "data": url}, "backgroundFit": None}


def saliency_seconds(model: inference.FastModel, images: np.ndarray) -> Clock:
    saliency = inside.Saliency(model)
    clock = Clock()
    for image in images:
        digits = list(inside.ranked(model.predict(image).probabilities))
        with clock:
            saliency(image, digits)
    return clock


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # defaults ---------------------------------------------------------------
    parser.add_argument("--models", default="", help="comma-separated names (default: every model)")
    parser.add_argument("--drawings", type=int, default=40, help="MNIST test digits drawn per model")
    parser.add_argument("--mnist", default=None, help="path to mnist.npz (default: found as usual)")
    # ------------------------------------------------------------------------
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    listing = store.scan()
    names = [n for n in args.models.split(",") if n] or listing.names
    (_, _), (x_test, _) = data.load_mnist(args.mnist)
    digits = x_test[: args.drawings]
    drawings = [canvas_data_url(digit) for digit in digits]
    images = digits.astype(np.float32) / 255

    print(
        f"ms per drawing, {len(drawings)} MNIST test digits drawn on the canvas; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n"
    )
    print(
        "| model | page p50 | page p95 | page CPU p50 | page CPU p95 "
        "| saliency p50 | saliency p95 | saliency CPU p50 | saliency CPU p95 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        model = model_files.read_model(listing.get(name).model_file())
        page, saliency = page_seconds(name, drawings), saliency_seconds(model, images)
        print(
            f"| {name} | {percentiles(page.wall)} | {percentiles(page.cpu)} "
            f"| {percentiles(saliency.wall)} | {percentiles(saliency.cpu)} |",
            flush=True,
        )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
