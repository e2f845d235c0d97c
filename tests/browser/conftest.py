"""Browser-test fixtures: the real app on 127.0.0.1 and Debian's Chromium via Playwright.

One server and one browser serve the whole session; each test gets a fresh
page (its own browser context, so its own Streamlit session). Any browser
test can use them:

    def test_something(page, app_url):
        open_app(page, app_url, "train")
        expect(page.get_by_role("heading", name="Train")).to_be_visible()

The server keeps its versions and jobs in a temporary SQLite database
(`app_database`), so a test that trains never touches data/digit_zoo.db, and
trains on a Ray instance of its own with one training slot.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from scripts.benchmarks.bench_browser import CHROMIUM_FLAGS, streamlit_command

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
VIEWPORT = {"width": 1400, "height": 1000}
SERVER_START_SECONDS = 60
FIRST_PAGE_SECONDS = 90  # the first run imports TensorFlow and loads models (2 cores)
RESULT_SECONDS = 15  # a stroke's prediction: canvas debounce + one rerun

# What each model read for each browser-drawn sample, by group of drawings:
# {(group, model): {sample id: (digit, read)}}. Filled by the tests that draw
# (Compare reads every model at once); printed as a table at the end of the run.
READINGS: dict[tuple[str, str], dict[str, tuple[str, str]]] = defaultdict(dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_database(tmp_path_factory) -> str:
    """The URL of the browser tests' server's database."""
    return f"sqlite:///{tmp_path_factory.mktemp('database') / 'digit_zoo.db'}"


@pytest.fixture(scope="session")
def app_log(tmp_path_factory) -> Path:
    """The output of the browser tests' server."""
    return tmp_path_factory.mktemp("server") / "streamlit.log"


@pytest.fixture(scope="session")
def app_url(app_database, app_log):
    """Start `streamlit run app.py` on a free port; yield its base URL; stop it."""
    with running_app(app_database, app_log) as url:
        yield url


def sign_in_as_teacher(page: Page, log: Path) -> None:
    """Sign in from the sidebar with the password the server printed in its log at its first start."""
    password = re.search(r"Teacher password: (\S+)", log.read_text()).group(1)
    field = page.get_by_role("textbox", name="Teacher password")
    if not field.is_visible():  # the sidebar's Teacher box is closed
        page.get_by_test_id("stSidebar").get_by_text("Teacher", exact=True).click()
    field.fill(password)
    field.press("Enter")
    expect(page.get_by_text("Signed in: you can stop")).to_be_visible(timeout=RESULT_SECONDS * 1000)
    wait_until_idle(page)


@contextmanager
def running_app(
    database_url: str,
    log_path: Path,
    *,
    process: list | None = None,
    script: Path = ROOT / "app.py",
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """A fresh app server (its state in `database_url`, output in `log_path`): its base URL.

    The server's process is appended to `process` for a test that kills it.
    `script` runs in its own folder, with that folder's `.streamlit/config.toml`.
    `env`: more environment variables for the server.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # The board's join address is this server's loopback URL: tests never open a LAN address.
    env = (
        os.environ
        | {
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "DIGIT_ZOO_DATABASE_URL": database_url,
            "DIGIT_ZOO_TRAINING_SLOTS": "1",
            "DIGIT_ZOO_PUBLIC_URL": url,
        }
        | (env or {})
    )
    env.pop("RAY_ADDRESS", None)
    command = streamlit_command(script.name, port)
    with open(log_path, "wb") as log:
        # A session of its own: its Ray processes go with it, even after a kill -9 of the server.
        server = subprocess.Popen(
            command, cwd=script.parent, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    if process is not None:
        process.append(server)
    try:
        _wait_healthy(server, url, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)  # it stops its Ray instance on the way out
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        try:
            os.killpg(server.pid, signal.SIGKILL)  # whatever Ray left behind
        except ProcessLookupError:
            pass


def _wait_healthy(server: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)  # polling a server that is starting; nothing to wait on instead
    raise RuntimeError(f"streamlit not healthy after {SERVER_START_SECONDS} s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def browser() -> Browser:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Page:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    yield page
    context.close()


def open_app(page: Page, app_url: str, path: str = "") -> Page:
    """Go to a page of the app and wait until its script has run once without an exception."""
    page.goto(f"{app_url}/{path}")
    expect(page.locator("h1").first).to_be_visible(timeout=FIRST_PAGE_SECONDS * 1000)
    wait_until_idle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_role("dialog").filter(has_text="Page not found")).to_have_count(0)
    return page


def wait_until_idle(page: Page, timeout: float = FIRST_PAGE_SECONDS) -> None:
    """Wait until the app's script run is over (Streamlit's "Running…" widget is gone)."""
    expect(page.get_by_test_id("stApp")).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=timeout * 1000
    )


def canvas(page: Page) -> Locator:
    """The drawing canvas (the top Fabric.js layer takes the mouse)."""
    return page.locator("canvas.upper-canvas").first


# True when a press at (x, y) lands on a drawing canvas, looking into shadow roots.
_PRESSES_ON_CANVAS = """([x, y]) => {
    let element = document.elementFromPoint(x, y);
    while (element && element.shadowRoot) {
        const inner = element.shadowRoot.elementFromPoint(x, y);
        if (!inner || inner === element) break;
        element = inner;
    }
    return !!element && element.classList.contains("upper-canvas");
}"""


def draw_strokes(page: Page, canvas_locator: Locator, strokes, *, canvas_size: int = 280) -> None:
    """Draw with the mouse: each stroke a press, moves through its points, a release.

    Points are canvas pixels; they are scaled if the canvas is shown at another size.
    """
    canvas_locator.scroll_into_view_if_needed()
    box = canvas_locator.bounding_box()
    scale = box["width"] / canvas_size
    # Hover first, as a hand does (test_draw.py also starts a stroke without it).
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for stroke in strokes:
        points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in stroke]
        page.wait_for_function(_PRESSES_ON_CANVAS, arg=list(points[0]))
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def draw_and_wait(page: Page, strokes, done_text: str) -> None:
    """Draw on the page's canvas, then wait for a caption the page writes last.

    `done_text` must name the whole drawing (e.g. its stroke count), so it
    shows only once the run that read every stroke has finished writing.
    """
    draw_strokes(page, canvas(page), strokes)
    done = page.get_by_test_id("stCaptionContainer").filter(has_text=done_text)
    expect(done).to_be_visible(timeout=RESULT_SECONDS * 1000)


def clear(page: Page) -> None:
    """Press the page's Clear button; wait for the hint and a new, empty canvas."""
    old_canvas = canvas(page).element_handle()
    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Draw a digit")).to_be_visible()
    wait_until_idle(page)
    page.wait_for_function("element => !element.isConnected", arg=old_canvas)
    expect(canvas(page)).to_be_visible()


def set_pen_width(page: Page, width: int) -> None:
    """Move the "Pen width" slider with the keyboard, as a user would, and wait for the canvas.

    Each key press reaches Python a little later; a stroke drawn while the new
    width reaches the canvas loses its beginning. So wait until Python says
    the pen is `width` (written after the canvas, in the same run).
    """
    slider = page.get_by_test_id("stSlider").filter(has_text="Pen width").get_by_role("slider")
    slider.scroll_into_view_if_needed()
    slider.focus()
    current = int(slider.input_value())  # an <input type="range">
    key = "ArrowRight" if width > current else "ArrowLeft"
    for _ in range(abs(width - current)):
        page.keyboard.press(key)
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text=f"Pen {width} px")).to_be_visible()
    wait_until_idle(page)


def screenshot(page: Page, name: str, **options) -> Path:
    """Save the page as docs/<name>.png for README.md and docs/*.md, once its charts are drawn.

    Streamlit shows a grey skeleton while lazily loaded code (Plotly's, seconds
    the first time) arrives: wait until none is left. `options` go to
    `page.screenshot` (`scale="css"`: one pixel per CSS pixel on a phone's dense screen).
    """
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=30_000)
    DOCS.mkdir(exist_ok=True)
    path = DOCS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    return path


def pytest_terminal_summary(terminalreporter):
    if not READINGS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("browser-drawn digits read correctly")
    groups = list(dict.fromkeys(group for group, _ in READINGS))
    models = list(dict.fromkeys(model for _, model in READINGS))
    width = max(map(len, groups))
    write(" " * 24 + "".join(f"{group:>{width + 2}}" for group in groups))
    for model in models:
        cells = []
        for group in groups:
            readings = READINGS.get((group, model), {})
            right = sum(read == digit for digit, read in readings.values())
            cells.append(f"{right}/{len(readings)}" if readings else "")
        write(f"{model:>24}" + "".join(f"{cell:>{width + 2}}" for cell in cells))
    for (group, model), readings in READINGS.items():
        wrong = [f"{sample} as {read}" for sample, (digit, read) in readings.items() if read != digit]
        if wrong:
            write(f"{model} misread ({group}): {', '.join(wrong)}")
