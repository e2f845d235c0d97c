"""The Draw page in a real browser: digits drawn with the mouse, read back from the page.

Each test opens a fresh page and draws several samples, pressing Clear in
between, so that ~50 drawings fit in a minute; a failure lists every sample
that was misread.
"""

from __future__ import annotations

import re

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from model_zoo import config, store

from .conftest import (
    FIRST_PAGE_SECONDS,
    READINGS,
    RESULT_SECONDS,
    canvas,
    clear,
    draw_and_wait,
    open_app,
    running_app,
    screenshot,
    set_pen_width,
    wait_until_idle,
)
from .strokes import CORNERS, LARGE, NATURAL, SMALL, TINY, Sample

ROBUST = config.TRAINED_DIR / "cnn_robust.keras"
needs_robust = pytest.mark.skipif(
    not ROBUST.exists(), reason=f"{ROBUST.name} is not trained yet (python -m scripts.train_zoo)"
)

GROUPS = {"natural": NATURAL, "large": LARGE, "small": SMALL, "corners": CORNERS}
# Thick: the pen at 40 px instead of the default 12 on natural and large digits
# (on a small digit a pen that fat fills the loops in: nothing can reopen them).
THICK_PEN = 40
THICK = NATURAL[::2] + LARGE[:2]


def prediction(page: Page):
    return page.get_by_test_id("stMetric").filter(has_text="Prediction").get_by_test_id("stMetricValue")


def picker(page: Page):
    return page.get_by_role("combobox", name="Model")


def hint(page: Page):
    return page.get_by_test_id("stAlert").filter(has_text="Draw a digit")


def draw_and_read(page: Page, sample: Sample, model: str) -> str:
    """Draw `sample`, wait until the page has read every stroke, return the predicted digit."""
    strokes = sample.points()
    # The caption is written after the metric, in the same run: once it counts
    # every stroke, the metric shows the prediction for the whole drawing.
    draw_and_wait(page, strokes, f"{model} read your drawing ({len(strokes)} stroke")
    return prediction(page).inner_text().strip()


def misread(page: Page, samples: list[Sample], model: str, group: str) -> list[str]:
    """Draw each sample (Clear in between); return "<sample> read as <digit>" for each miss."""
    wrong = []
    for sample in samples:
        read = draw_and_read(page, sample, model)
        READINGS[group, model][sample.id] = (sample.digit, read)
        if read != sample.digit:
            wrong.append(f"{sample.id} read as {read}")
        clear(page)
    return wrong


@pytest.mark.parametrize("group", GROUPS)
def test_cnn_reads_digits_drawn_with_the_mouse(page, app_url, group):
    open_app(page, app_url, "draw?model=cnn")
    assert misread(page, GROUPS[group], "cnn", "Draw") == []


@needs_robust
def test_cnn_robust_reads_small_and_off_centre_digits(page, app_url):
    open_app(page, app_url, "draw?model=cnn_robust")
    assert misread(page, SMALL + TINY + CORNERS, "cnn_robust", "Draw") == []


@needs_robust
def test_cnn_robust_reads_thick_digits(page, app_url):
    open_app(page, app_url, "draw?model=cnn_robust")
    set_pen_width(page, THICK_PEN)
    assert misread(page, THICK, "cnn_robust", f"Draw, pen {THICK_PEN}") == []


def test_opens_on_the_model_that_reads_drawings_best(page, app_url):
    open_app(page, app_url, "draw")
    best = "cnn_robust" if ROBUST.exists() else store.scan().names[-1]
    expect(picker(page)).to_have_value(re.compile(rf"^{best} \("))
    expect(page).to_have_url(re.compile(rf"/draw\?model={best}$"))
    assert draw_and_read(page, Sample("3", 200), best) == "3"
    expect(page.get_by_test_id("stImage")).to_be_visible()  # the 28 × 28 the model sees
    screenshot(page, "draw")


def test_clear_empties_the_canvas(page, app_url):
    open_app(page, app_url, "draw?model=cnn")
    expect(hint(page)).to_be_visible()
    assert draw_and_read(page, Sample("7"), "cnn") == "7"
    expect(hint(page)).to_have_count(0)

    page.get_by_role("button", name="Clear").click()
    expect(hint(page)).to_be_visible()
    expect(prediction(page)).to_have_count(0)
    wait_until_idle(page)
    # The new, empty canvas takes a new drawing from scratch.
    assert draw_and_read(page, Sample("4"), "cnn") == "4"


def test_model_in_the_link_is_preselected_and_the_link_follows_the_picker(page, app_url):
    open_app(page, app_url, "draw?model=mlp_1x500")
    expect(picker(page)).to_have_value(re.compile(r"^mlp_1x500 \("))
    assert draw_and_read(page, Sample("0"), "mlp_1x500") == "0"

    picker(page).click()
    page.get_by_role("option", name=re.compile(r"^cnn \(")).click()
    expect(page).to_have_url(re.compile(r"model=cnn$"))
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text="cnn read your drawing")).to_be_visible()


def test_a_shared_link_opens_the_app_on_a_fresh_server(page, tmp_path):
    """The first visitor of a just-started server may arrive by a link to a page.

    Streamlit runs a `pages/` folder's scripts on their own (no app.py: no
    sidebar, no wide layout, no Keras hook) until some session has run app.py,
    and answers the default page's own path with "Page not found".
    """
    with running_app(tmp_path / "user_models", tmp_path / "streamlit.log") as url:
        page.goto(f"{url}/draw?model=cnn")
        navigation = page.get_by_test_id("stSidebarNav")
        expect(navigation).to_be_visible(timeout=FIRST_PAGE_SECONDS * 1000)
        expect(navigation.get_by_role("link", name="app", exact=True)).to_have_count(0)
        expect(page.get_by_test_id("stSidebar")).to_contain_text("Digit Recogniser")
        expect(page.get_by_role("dialog").filter(has_text="Page not found")).to_have_count(0)
        expect(page.locator("h1").first).to_have_text("Draw")


def test_an_uploaded_photo_is_read_until_the_user_draws(page, app_url, tmp_path):
    """The picture and the canvas take turns: the one changed last is read."""
    photo = tmp_path / "seven.jpg"
    paper = Image.new("RGB", (640, 480), (226, 222, 210))  # a grey-white page, a dark pen
    ImageDraw.Draw(paper).line(
        [(250, 110), (390, 100), (350, 230), (310, 380)], fill=(40, 40, 60), width=18, joint="curve"
    )
    paper.save(photo, quality=85)

    open_app(page, app_url, "draw?model=cnn")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(photo)
    done = page.get_by_test_id("stCaptionContainer").filter(has_text="cnn read the picture seven.jpg")
    expect(done).to_be_visible(timeout=RESULT_SECONDS * 1000)
    expect(prediction(page)).to_have_text("7")

    assert draw_and_read(page, Sample("3"), "cnn") == "3"


def test_a_stroke_may_start_in_the_top_right_corner_without_hovering_first(page, app_url):
    """The canvas's toolbar waits above the square: a press in its corner draws, as anywhere else."""
    open_app(page, app_url, "draw")
    square = canvas(page)
    square.scroll_into_view_if_needed()
    box = square.bounding_box()
    page.mouse.move(5, 5)  # away from the canvas, as a replayed drawing may start
    page.mouse.move(box["x"] + 272, box["y"] + 6)  # straight in and down, no pause to hover
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(box["x"] + 272 - 4 * step, box["y"] + 6 + 12 * step)
    page.mouse.up()
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text="read your drawing (1 stroke)")).to_be_visible(
        timeout=RESULT_SECONDS * 1000
    )
