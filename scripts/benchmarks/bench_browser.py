"""The browser half of ``python -m scripts.benchmarks.bench --browser``: a real server, Chromium, the mouse.

Starts the app (`streamlit run app.py` on 127.0.0.1, state in a throwaway
database and user folder, DIGIT_ZOO_TIMINGS on so the server logs each run's
own time, see run_timings.py) and draws one-stroke digits with the mouse: MNIST
test digits traced as a pen would draw them (model_zoo.strokes). Each drawing
is timed from mouse-up to the caption its page writes last (Draw: under the
Prediction; Compare: under the full table), and split with the server's log,
all on one clock: mouse-up → rerun request received (the canvas's ~200 ms
debounce and the websocket), received → the run's last message queued (the
server's own share; its script run alone is reported too), and that → on screen.
A fresh server's cold start and its memory page by page are measured on a tour
of the pages (``tour``), for this tree and for a baseline version's.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model_zoo import data, strokes

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"  # Debian's; never `playwright install` (docs/facts.md)


def streamlit_command(script: str, port: int) -> list[str]:
    """A Streamlit server of ``script`` on 127.0.0.1:``port``, headless, not watching its files."""
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.address", "127.0.0.1"]
    return command + ["--server.port", str(port), "--server.headless", "true", "--server.fileWatcherType", "none"]


# Headless and quiet: no GPU, no sandbox (root in a container), no calls home.
CHROMIUM_FLAGS = "--headless --no-sandbox --disable-gpu --disable-background-networking".split()
CHROMIUM_FLAGS += "--disable-component-update --disable-sync --no-first-run".split()
STARTUP_SECONDS = 180  # a fresh server's first page on a busy 2-core machine
RESULT_SECONDS = 60
VIEWPORT = {"width": 1400, "height": 1000}
# What each page writes last once a drawing is read: the whole answer is on screen when it shows.
DONE_TEXT = {
    "draw": "read your drawing (1 stroke)",
    "compare": "Read from your drawing (1 stroke)",
    "inside": "on your drawing (1 stroke)",
}
# The page tour of part 4, in this order: pages with a canvas get a drawing, the others are opened
# (Class then reads the drawing kept on Draw).
TOUR = ("draw", "compare", "inside", "class", "zoo")


def one_stroke_drawings(count: int, seed: int = 0) -> list[list[tuple[float, float]]]:
    """Mouse paths (canvas px) of MNIST test digits a pen draws in one stroke, a point every ~6 px."""
    (_, _), (x_test, _) = data.load_mnist()
    rng = np.random.default_rng(seed)
    paths = []
    for digit in x_test:
        drawn, _ = strokes.drawn_strokes(digit, rng)
        path = drawn[0] if len(drawn) == 1 else None
        if path is not None and _under_toolbar(path[0]):
            path = path[::-1]  # drawn from its other end
        if path is not None and not _under_toolbar(path[0]):
            paths.append(_every(path, 6.0))
        if len(paths) == count:
            return paths
    raise RuntimeError(f"only {len(paths)} one-stroke drawings among MNIST's test digits")


def _under_toolbar(point) -> bool:
    """The canvas's hidden toolbar takes presses in the top ~30 px of its right half (docs/facts.md)."""
    return point[0] > strokes.CANVAS / 2 - 10 and point[1] < 40


def _every(path: np.ndarray, spacing: float) -> list[tuple[float, float]]:
    """The path's points at least `spacing` px apart (and its last): mouse moves, not pixels."""
    kept = [path[0]]
    for point in path[1:]:
        if np.hypot(*(point - kept[-1])) >= spacing:
            kept.append(point)
    kept.append(path[-1])
    return [(float(x), float(y)) for x, y in kept]


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    timings: Path  # run_timings' log
    launched: float  # time.time() at launch
    healthy: float  # time.time() when it first answered its health check

    def runs(self, page: str) -> list[dict]:
        """The logged runs of `page`, a stroke's fragment runs with them."""
        if not self.timings.exists():
            return []
        lines = self.timings.read_text().splitlines()
        runs = [json.loads(line) for line in lines if line.strip()]
        return [run for run in runs if run.get("page") == page]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(scratch: Path, root: Path = ROOT) -> Server:
    """The app in ``root`` (this tree, or another version's, for a baseline) on a free port."""
    scratch.mkdir(parents=True, exist_ok=True)
    port, launched = _free_port(), time.time()
    env = os.environ | {
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "DIGIT_ZOO_DATABASE_URL": f"sqlite:///{scratch}/bench.db",
        "DIGIT_ZOO_TRAINING_SLOTS": "1",
        "DIGIT_ZOO_TIMINGS": str(scratch / "runs.jsonl"),
    }
    process = subprocess.Popen(
        streamlit_command("app.py", port),
        cwd=root,
        env=env,
        stdout=open(scratch / "server.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # its own group: Ray's processes go with it
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return Server(process, url, scratch / "runs.jsonl", launched, time.time())
        except OSError:
            time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"the app did not start: see {scratch / 'server.log'}")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    try:
        os.killpg(process.pid, signal.SIGKILL)  # Ray's processes, if a job started them
    except ProcessLookupError:
        pass


@dataclass
class Drawing:
    """One drawing's times, all `time.time()` seconds."""

    page: str
    released: float  # mouse-up
    seen: float  # the page's last caption on screen


@dataclass
class Session:
    """One browser tab drawing on one page."""

    page_name: str
    tab: object  # playwright.async_api.Page
    drawings: list[Drawing] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def open_session(browser, url: str, page_name: str) -> Session:
    context = await browser.new_context(viewport=VIEWPORT)
    tab = await context.new_page()
    await tab.goto(f"{url}/{page_name}?model=cnn" if page_name == "draw" else f"{url}/{page_name}")
    await _idle(tab, STARTUP_SECONDS)
    return Session(page_name, tab)


async def _idle(tab, seconds: float) -> None:
    from playwright.async_api import expect

    await expect(tab.get_by_test_id("stApp")).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=seconds * 1000
    )


# The page's own clock (the machine's, as time.time()) when a caption with the text enters the page:
# a watcher in the page, not Playwright's polling, which lags by a frame or more on a busy machine.
_WHEN_TEXT_APPEARS = """text => new Promise(resolve => {
    const shown = () => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
        .some(element => element.textContent.includes(text));
    if (shown()) return resolve(Date.now());
    const watcher = new MutationObserver(() => {
        if (shown()) { watcher.disconnect(); resolve(Date.now()); }
    });
    watcher.observe(document.body, {childList: true, subtree: true, characterData: true});
})"""


async def draw(session: Session, path: list[tuple[float, float]]) -> None:
    """Clear the canvas, draw `path` in one stroke, wait for the whole answer; record the times."""
    from playwright.async_api import expect

    tab = session.tab
    old = await tab.locator("canvas.upper-canvas").first.element_handle()
    await tab.get_by_role("button", name="Clear").click()
    await expect(tab.get_by_test_id("stAlert").filter(has_text="Draw a digit")).to_be_visible(
        timeout=RESULT_SECONDS * 1000
    )
    await _idle(tab, RESULT_SECONDS)
    await tab.wait_for_function("element => !element.isConnected", arg=old)  # Clear mounts a new canvas
    canvas = tab.locator("canvas.upper-canvas").first
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    scale = box["width"] / strokes.CANVAS
    points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in path]
    await tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # hover shows the canvas
    appears = asyncio.ensure_future(tab.evaluate(_WHEN_TEXT_APPEARS, DONE_TEXT[session.page_name]))
    await tab.mouse.move(*points[0])
    await tab.mouse.down()
    for point in points[1:]:
        await tab.mouse.move(*point)
    await tab.mouse.up()
    released = time.time()
    seen_ms = await asyncio.wait_for(appears, RESULT_SECONDS)
    session.drawings.append(Drawing(session.page_name, released, seen_ms / 1000))


async def draw_now_and_then(session: Session, paths, every: float, seconds: float) -> None:
    """Draw a digit every `every` s (or as soon as the last is read) for `seconds`; count failures."""
    ends = time.monotonic() + seconds
    for path in paths:
        started = time.monotonic()
        if started >= ends:
            return
        try:
            await draw(session, path)
            if await session.tab.get_by_test_id("stException").count():
                session.errors.append("an exception on the page")
        except Exception as error:  # a timeout is what a learner would see as "it hangs"
            session.errors.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
        await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))


async def start_training(browser, url: str) -> None:
    """A classmate's long job: mlp_1x50 on 60,000 digits in batches of 8 (several minutes on 2 cores)."""
    from playwright.async_api import expect

    tab = await (await browser.new_context(viewport=VIEWPORT)).new_page()
    await tab.goto(f"{url}/train")
    await expect(tab.get_by_role("heading", name="Train")).to_be_visible(timeout=STARTUP_SECONDS * 1000)
    await _idle(tab, STARTUP_SECONDS)
    for label, value in [("Training digits", 60_000), ("Epochs", 3), ("Batch size", 8)]:
        await tab.get_by_role("spinbutton", name=label).fill(str(value))
    await tab.get_by_role("button", name="Start training").click()
    await expect(tab.get_by_role("button", name="Stop training")).to_be_visible(timeout=STARTUP_SECONDS * 1000)


def split(drawings: list[Drawing], server: Server) -> dict[str, list[float]]:
    """Per drawing, seconds: stroke → answer, and its parts from the server's log.

    A drawing's run is the first logged run of its page received after its
    mouse-up (with several sessions on a page, possibly another tab's; the
    server-side figures are then every run's, which is what the server spends).
    """
    parts = {
        "stroke → answer": [],
        "mouse-up → request received": [],
        "server: received → last message": [],
        "server: script run": [],
        "last message → on screen": [],
    }
    runs: dict[str, list[dict]] = {}
    for drawing in drawings:
        page_runs = runs.setdefault(drawing.page, server.runs(drawing.page))
        run = next((r for r in page_runs if drawing.released <= r["received"] <= drawing.seen), None)
        parts["stroke → answer"].append(drawing.seen - drawing.released)
        if run is None:
            continue
        parts["mouse-up → request received"].append(run["received"] - drawing.released)
        parts["server: received → last message"].append(run["finished"] - run["received"])
        parts["server: script run"].append(run["finished"] - run.get("started", run["received"]))
        parts["last message → on screen"].append(drawing.seen - run["finished"])
    return parts


def server_share(server: Server, pages: tuple[str, ...], since: float, until: float) -> list[float]:
    """Received → last message of every logged run of `pages` in a time window."""
    return [
        run["finished"] - run["received"]
        for page in pages
        for run in server.runs(page)
        if since <= run["received"] <= until
    ]


@dataclass
class Tour:
    """A fresh server's start and its weight: launch → first Prediction, then every page in turn."""

    cold_start: float  # s, launch → the first Prediction on screen
    parts: dict[str, float]  # the cold start's parts, s
    resident_mb: dict[str, float] = field(default_factory=dict)  # page → the server's memory after it


async def tour(browser, scratch: Path, path: list[tuple[float, float]], root: Path = ROOT) -> Tour:
    """Start the app in ``root``, draw on Draw (cold start), keep the drawing, then draw on or open
    each page of ``TOUR``, reading the server's resident memory after each."""
    server = start_server(scratch, root)
    tabs = []
    try:
        first = await open_session(browser, server.url, "draw")
        tabs.append(first.tab)
        shown = time.time()
        await draw(first, path)  # launch → the first Prediction on screen
        measured = Tour(
            first.drawings[-1].seen - server.launched,
            {
                "launch → the server answers": server.healthy - server.launched,
                "→ Draw shown (its first run loads the model)": shown - server.healthy,
                "→ the first drawing answered (Clear, the stroke, the answer)": first.drawings[-1].seen - shown,
            },
        )
        await _keep_what_was_read(first.tab)
        for page_name in TOUR:
            if page_name != "draw":  # Draw has drawn already
                session = await open_session(browser, server.url, page_name)
                tabs.append(session.tab)
                if page_name in DONE_TEXT:
                    await draw(session, path)
            measured.resident_mb[page_name] = resident_bytes(server.process.pid) / 2**20
        return measured
    finally:
        stop_server(server.process)
        for tab in tabs:
            await tab.context.close()


async def _keep_what_was_read(tab) -> None:
    """Draw's "Keep this drawing as a …": the model's digit (the first button), for the Class page."""
    from playwright.async_api import expect

    await tab.locator(".st-key-draw_keep").get_by_role("button").first.click()
    await expect(tab.get_by_test_id("stAlert").filter(has_text="Kept as a")).to_be_visible(
        timeout=RESULT_SECONDS * 1000
    )
    await _idle(tab, RESULT_SECONDS)


def resident_bytes(pid: int) -> int:
    """A process's resident memory now (Linux's /proc)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def checkout(ref: str, folder: Path) -> Path:
    """The app as it was at git ``ref``, unpacked into ``folder`` (tracked files only)."""
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True)
    if archive.returncode:
        raise RuntimeError(
            f"git archive {ref} failed ({archive.stderr.decode().strip()}): a clone without "
            "that commit (shallow?) needs its history, or run with --before ''"
        )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


async def measure(
    *, drawings: int, class_sessions: int, class_seconds: float, scratch: Path, before: str = "", tours: int = 1
) -> dict:
    """Everything the browser shows: ``tours`` cold starts with their memory (also of ``before``, a
    git ref, when given; each beside a bare ``import tensorflow``, in turn, so that the machine's
    load changes all alike), one session on Draw and Compare, a classroom."""
    from playwright.async_api import async_playwright

    paths = one_stroke_drawings(max(drawings, 40))
    results: dict = {"import tensorflow": [], "before ref": before, "before": [], "now": []}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        old = checkout(before, Path(tempfile.mkdtemp(prefix="before_", dir=scratch))) if before else None
        for i in range(tours):
            results["import tensorflow"].append(_import_tensorflow_seconds())
            if old is not None:
                results["before"].append(await tour(browser, scratch / f"before_{i}", paths[0], old))
            results["now"].append(await tour(browser, scratch / f"now_{i}", paths[0]))
        server = start_server(scratch / "sessions")
        try:
            first = await open_session(browser, server.url, "draw")
            compare = await open_session(browser, server.url, "compare")
            for session in (first, compare):
                await draw(session, paths[0])  # warm-up
                session.drawings.clear()
            for session in (first, compare):
                for path in paths[:drawings]:
                    await draw(session, path)
                results[f"one session: {session.page_name}"] = split(session.drawings, server)
            for condition in ("idle", "while a job trains") if class_sessions else ():
                if condition == "while a job trains":
                    await start_training(browser, server.url)
                results[f"{class_sessions} sessions, {condition}"] = await classroom(
                    browser, server, paths, class_sessions, class_seconds
                )
        finally:
            stop_server(server.process)
            await browser.close()
    return results


async def classroom(browser, server: Server, paths, count: int, seconds: float) -> dict:
    """`count` tabs (8 in 10 on Draw, the rest on Compare) each drawing every 2 s for `seconds`."""
    pages = ["compare" if i % 5 == 4 else "draw" for i in range(count)]
    sessions = [await open_session(browser, server.url, page) for page in pages]
    started = time.time()
    await asyncio.gather(
        *(draw_now_and_then(session, paths[i::count] * 10, 2.0, seconds) for i, session in enumerate(sessions))
    )
    ended = time.time()
    for session in sessions:
        await session.tab.context.close()
    drawings = [drawing for session in sessions for drawing in session.drawings]
    return {
        "stroke → answer": [d.seen - d.released for d in drawings],
        "server: received → last message": server_share(server, ("draw", "compare"), started, ended),
        "errors": [error for session in sessions for error in session.errors],
    }


def _import_tensorflow_seconds() -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import tensorflow"],
        check=True,
        capture_output=True,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return time.perf_counter() - started
