"""Draw and Compare on a phone: a finger draws, the answer shows on the same screen.

A 390 × 844 touch screen (an iPhone 12 to 14). Strokes go through Chromium's
DevTools protocol as touch events, the way a finger's do. While a finger is on
the canvas the page cannot scroll, so whatever answers the drawing must be on
the first screen with the canvas, and must not move it.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from model_zoo import config

from .conftest import RESULT_SECONDS, canvas, draw_and_wait, open_app, screenshot, wait_until_idle
from .strokes import Sample

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}

# A natural 4 is two strokes: the answer shows after each.
FOUR = Sample("4")
THREE = Sample("3", 200)
SHIPPED = sorted(path.stem for path in config.TRAINED_DIR.glob("*.keras"))


@pytest.fixture
def phone(browser: Browser) -> Page:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    yield page
    context.close()


def touch_stroke(page: Page, stroke) -> None:
    """One finger stroke on the canvas: touchStart, a touchMove per point, touchEnd."""
    box = canvas(page).bounding_box()
    points = [{"x": box["x"] + x, "y": box["y"] + y} for x, y in stroke]
    devtools = page.context.new_cdp_session(page)
    devtools.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points[:1]})
    for point in points[1:]:
        devtools.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    devtools.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    devtools.detach()


def wait_for_caption(page: Page, text: str) -> None:
    """Wait for the caption a page writes last in a run (it names the strokes read)."""
    caption = page.get_by_test_id("stCaptionContainer").filter(has_text=text)
    expect(caption).to_be_attached(timeout=RESULT_SECONDS * 1000)


def on_first_screen(page: Page, locator: Locator) -> dict[str, float]:
    """The element's box, asserting it lies wholly on the screen as it is (never scrolled here)."""
    box = locator.bounding_box()
    screen = page.viewport_size
    assert box is not None and box["width"] > 0, f"{locator} is not shown"
    assert box["x"] >= 0 and box["x"] + box["width"] <= screen["width"], box
    assert box["y"] >= 0 and box["y"] + box["height"] <= screen["height"], box
    return box


def assert_no_sideways_scroll(page: Page) -> None:
    # Streamlit's page scrolls in its main block, not in the document: check both.
    widths = page.evaluate("""() => [document.documentElement, document.querySelector('[data-testid=stMain]')]
        .map(element => [element.scrollWidth, element.clientWidth])""")
    assert all(scroll <= client for scroll, client in widths), widths


def assert_answer_row_above_canvas(page: Page, glance: Locator) -> dict[str, float]:
    """Glance and Clear side by side right above the canvas, all on the first screen; the canvas's box."""
    pad = on_first_screen(page, canvas(page))
    answer = on_first_screen(page, glance)
    clear = on_first_screen(page, page.get_by_role("button", name="Clear"))
    for box in (answer, clear):
        assert 0 <= pad["y"] - (box["y"] + box["height"]) <= 24, (box, pad)
    assert clear["x"] >= answer["x"] + answer["width"], (clear, answer)
    assert_no_sideways_scroll(page)
    return pad


def test_draw_answers_above_the_canvas_stroke_by_stroke(phone, app_url):
    open_app(phone, app_url, "draw")  # the model a student gets: its note makes the page longest
    glance = phone.locator(".st-key-draw_glance")
    expect(glance).to_contain_text("the reading shows here")
    pad = assert_answer_row_above_canvas(phone, glance)

    strokes = FOUR.points()
    for done, stroke in enumerate(strokes, start=1):
        touch_stroke(phone, stroke)
        wait_for_caption(phone, f"read your drawing ({done} stroke")
        expect(glance).to_contain_text("sure")
        assert assert_answer_row_above_canvas(phone, glance) == pad  # nothing moved under the finger
    # The glance says what the full results below say.
    metric = phone.get_by_test_id("stMetric").filter(has_text="Prediction").get_by_test_id("stMetricValue")
    expect(glance.locator(".glance-digit b")).to_have_text(FOUR.digit)
    expect(metric).to_have_text(FOUR.digit)
    screenshot(phone, "phone", scale="css")

    phone.get_by_role("button", name="Clear").tap()
    expect(glance).to_contain_text("the reading shows here")
    wait_until_idle(phone)
    expect(canvas(phone)).to_be_visible()
    assert assert_answer_row_above_canvas(phone, glance) == pad


def test_compare_lists_every_models_answer_above_the_canvas(phone, app_url):
    open_app(phone, app_url, "compare")
    glance = phone.locator(".st-key-compare_glance")
    pad = assert_answer_row_above_canvas(phone, glance)
    names = list(glance_rows(glance))  # every model the server lists, waiting for a drawing
    assert set(SHIPPED) <= set(names) and set(glance_rows(glance).values()) == {("–", "–")}

    for stroke in THREE.points():
        touch_stroke(phone, stroke)
    wait_for_caption(phone, "Read from your drawing (1 stroke)")
    rows = glance_rows(glance)
    assert list(rows) == names and all(confidence.endswith("%") for _, confidence in rows.values())
    # The shipped models all read this 3 (a version a test trained may not).
    assert {name: rows[name][0] for name in SHIPPED} == dict.fromkeys(SHIPPED, THREE.digit)
    # The glance says what the full table below says.
    assert {name: digit for name, (digit, _) in rows.items()} == table_readings(phone, len(names))
    assert assert_answer_row_above_canvas(phone, glance) == pad
    screenshot(phone, "phone_compare", scale="css")


def glance_rows(glance: Locator) -> dict[str, tuple[str, str]]:
    """Compare's glance as {model: (digit, confidence)}: cells come in threes, name last."""
    cells = [cell.strip() for cell in glance.locator(".glance-list > *").all_inner_texts()]
    return {name: (digit, confidence) for digit, confidence, name in zip(*[iter(cells)] * 3)}


def table_readings(page: Page, models: int) -> dict[str, str]:
    """Compare's table, once it has a row per model, as {model: digit it reads}."""
    table = page.get_by_test_id("stTable")
    expect(table.locator("tbody tr")).to_have_count(models)
    header = [cell.strip() for cell in table.locator("thead th").all_inner_texts()]
    model, reads = header.index("Model"), header.index("Reads")
    rows = [
        [cell.strip() for cell in row.locator("th, td").all_inner_texts()] for row in table.locator("tbody tr").all()
    ]
    return {row[model]: row[reads] for row in rows}


@pytest.mark.parametrize(
    "path, done, answer",
    [
        ("draw", "read your drawing (1 stroke)", "stMetric"),  # Prediction and Confidence
        ("compare", "Read from your drawing (1 stroke)", "stTable"),
    ],
)
def test_wide_screens_keep_the_results_beside_the_canvas(page, app_url, path, done, answer):
    """No glance on a wide screen: the full answer already stands beside the canvas."""
    open_app(page, app_url, path)
    draw_and_wait(page, THREE.points(), done)
    expect(page.locator(f".st-key-{path}_glance")).to_be_hidden()
    pad = canvas(page).bounding_box()
    result = page.get_by_test_id(answer).first.bounding_box()
    assert result["x"] > pad["x"] + pad["width"] and result["y"] < pad["y"] + pad["height"], (result, pad)
