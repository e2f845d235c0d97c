"""Drawing latency in the browser, idle and while a classmate's job trains: mouse-up to Prediction.

    python -m scripts.bench_draw                               # this checkout, 50 drawings each
    python -m scripts.bench_draw --drawings 80 --before /tmp/old_checkout   # and another, same run

Starts the app (`streamlit run app.py` on 127.0.0.1, state in a throwaway
database and user folder), opens Draw in Debian's Chromium, and draws a one-stroke
digit again and again, timing each from the mouse-up to the Prediction on the
page (the canvas's own ~200 ms debounce included). Then a second browser tab
starts a long job on the Train page (mlp_1x50, 60,000 digits in batches of 8)
and the drawings are timed again while it trains. With --before, the same for
another checkout (e.g. `git archive <commit> | tar -x -C /tmp/old_checkout`),
so both are measured on the same machine in one run. Prints p50/p95 in ms,
and the cold start: launch to the first Prediction in the browser, beside a
bare `python -c "import tensorflow"` timed in the same run.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(app_dir: Path, scratch: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2", "DIGIT_ZOO_DATABASE_URL": f"sqlite:///{scratch}/bench.db",
                        "DIGIT_ZOO_USER_DIR": str(scratch / "user_models"), "DIGIT_ZOO_TRAINING_SLOTS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address",
                               "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
                               "--server.fileWatcherType", "none"], cwd=app_dir, env=env,
                              stdout=open(scratch / "server.log", "wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the app in {app_dir} did not start: see {scratch / 'server.log'}")


def stop_app(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    try:
        os.killpg(server.pid, signal.SIGKILL)  # Ray's processes, if any
    except ProcessLookupError:
        pass


def idle(page: Page) -> None:
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning",
                                                           timeout=STARTUP_SECONDS * 1000)


def draw_once(page: Page, shift: int) -> float:
    """Clear, draw a one-stroke 7, and return the seconds from mouse-up to the Prediction."""
    canvas = page.locator("canvas.upper-canvas").first
    old = canvas.element_handle()
    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Draw a digit")).to_be_visible(timeout=30_000)
    idle(page)
    page.wait_for_function("element => !element.isConnected", arg=old)  # Clear mounts a new canvas
    expect(canvas).to_be_visible()
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x0, y0 = box["x"] + 60 + shift, box["y"] + 60 + shift
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # hover shows the canvas
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x0 + 14 * i, y0)  # the bar
    for i in range(1, 16):
        page.mouse.move(x0 + 140 - 6 * i, y0 + 10 * i)  # the stem
    page.mouse.up()
    started = time.perf_counter()
    page.get_by_test_id("stMetric").filter(has_text="Prediction").wait_for(state="visible", timeout=60_000)
    return time.perf_counter() - started


def measure(page: Page, drawings: int) -> list[float]:
    draw_once(page, 0)  # warm-up: the first run loads the model
    return [draw_once(page, i % 20) for i in range(drawings)]


def start_training(page: Page, url: str) -> None:
    page.goto(f"{url}/train")
    expect(page.get_by_role("heading", name="Train")).to_be_visible(timeout=STARTUP_SECONDS * 1000)
    idle(page)
    for label, value in [("Training digits", 60_000), ("Epochs", 3), ("Batch size", 8)]:
        page.get_by_role("spinbutton", name=label).fill(str(value))
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_role("button", name="Stop training")).to_be_visible(timeout=STARTUP_SECONDS * 1000)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def bench(app_dir: Path, drawings: int, browser) -> tuple[float, dict[str, list[float]]]:
    """(cold start in seconds, {condition: latencies})."""
    with tempfile.TemporaryDirectory(prefix="digit_zoo_bench_") as scratch:
        launched = time.perf_counter()
        server, url = start_app(app_dir, Path(scratch))
        try:
            drawer = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            drawer.goto(f"{url}/draw?model=cnn")
            idle(drawer)
            draw_once(drawer, 0)
            cold = time.perf_counter() - launched
            results = {"no job": measure(drawer, drawings)}
            trainer = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            start_training(trainer, url)
            results["one job training"] = measure(drawer, drawings)
            return cold, results  # the server, and its job, stop with stop_app
        finally:
            stop_app(server)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # defaults ---------------------------------------------------------------
    parser.add_argument("--drawings", type=int, default=50, help="timed drawings per condition")
    parser.add_argument("--before", type=Path, default=None, help="another checkout to measure in the same run")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    # ------------------------------------------------------------------------
    args = parser.parse_args(argv)
    checkouts = {"this checkout": ROOT} | ({f"{args.before}": args.before} if args.before else {})
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tensorflow"], check=True, capture_output=True)
    import_seconds = time.perf_counter() - started
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        rows = {name: bench(path, args.drawings, browser) for name, path in checkouts.items()}
        browser.close()
    print(f"\nmouse-up → Prediction on Draw (cnn), ms, {args.drawings} drawings each\n")
    print("| checkout | condition | p50 | p95 | p95 / idle p95 |")
    print("|---|---|---:|---:|---:|")
    for name, (_, results) in rows.items():
        idle_p95 = percentile(results["no job"], 95)
        for condition, values in results.items():
            p95 = percentile(values, 95)
            print(f"| {name} | {condition} | {statistics.median(values) * 1000:.0f} | {p95 * 1000:.0f} | "
                  f"{p95 / idle_p95:.2f} |")

    print(f"\ncold start, launch → first Prediction in the browser (`import tensorflow` alone: "
          f"{import_seconds:.1f} s)\n")
    print("| checkout | seconds | minus import tensorflow |")
    print("|---|---:|---:|")
    for name, (cold, _) in rows.items():
        print(f"| {name} | {cold:.1f} | {cold - import_seconds:+.1f} |")


if __name__ == "__main__":
    main()
