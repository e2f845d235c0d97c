"""Time the Inside page per stroke for every model, and its saliency maps on demand.

    python -m scripts.bench_inside                  # every model, 40 drawings each
    python -m scripts.bench_inside --drawings 20 --models cnn,cnn_robust

Each drawing is an MNIST test digit, enlarged to the 280 px canvas and handed
to the page as the canvas would send it. "Page" is one whole script run of
/inside (Streamlit's AppTest, no browser): canvas PNG decoded, preprocessed,
predicted, layer outputs, occlusion, every picture. The issue's budget is
150 ms p95 per stroke. "Saliency" is integrated gradients for the digit and
its runner-up, computed only when the toggle is on (budget: 1 s). Timings
depend on the machine and its load: say what else was running.
"""

from __future__ import annotations

import argparse
import base64
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from model_zoo import data, inference, inside, store

APP = Path(__file__).resolve().parents[1] / "app.py"


def canvas_data_url(digit: np.ndarray) -> str:
    """A (28, 28) uint8 digit as the canvas component sends a drawing: a 280 px RGBA PNG."""
    picture = Image.fromarray(digit).resize((280, 280), Image.Resampling.BILINEAR).convert("RGBA")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def percentiles(seconds: list[float]) -> str:
    p50, p95 = np.percentile(np.array(seconds) * 1000, [50, 95])
    return f"{p50:.0f} | {p95:.0f}"


def page_seconds(name: str, drawings: list[str]) -> list[float]:
    """One /inside?model=NAME script run per drawing (after a warm-up run)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["model"] = name
    at.run()
    at.switch_page("app_pages/inside.py").run()
    times = []
    for i, url in enumerate([drawings[0], *drawings]):
        at.session_state["inside_canvas_0"] = {
            "drawing": {"raw": {"objects": [{"type": "Path"}]}, "data": url}, "backgroundFit": None}
        started = time.perf_counter()
        at.run()
        if i:  # the first run loads the model
            times.append(time.perf_counter() - started)
        if at.exception:
            raise RuntimeError(f"/inside?model={name} failed: {at.exception[0].message}")
    return times


def saliency_seconds(model: inference.FastModel, images: np.ndarray) -> list[float]:
    saliency = inside.Saliency(model.model)
    times = []
    for image in images:
        digits = list(inside.ranked(model.predict(image).probabilities))
        started = time.perf_counter()
        saliency(image, digits)
        times.append(time.perf_counter() - started)
    return times


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

    print(f"ms per drawing, {len(drawings)} MNIST test digits drawn on the canvas\n")
    print("| model | page p50 | page p95 | saliency p50 | saliency p95 |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        model = inference.FastModel(store.load_model(listing.get(name).path))
        print(f"| {name} | {percentiles(page_seconds(name, drawings))} | "
              f"{percentiles(saliency_seconds(model, images))} |", flush=True)


if __name__ == "__main__":
    main()
