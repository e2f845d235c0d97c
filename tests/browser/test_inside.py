"""The Inside page and Draw's "why" panel in a real browser: a digit drawn with the mouse, the panels seen."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import draw_and_wait, open_app, screenshot, wait_until_idle
from .strokes import Sample

# A screenshot tall enough for the canvas, the "why" maps and the first layers.
SCREENSHOT_VIEWPORT = {"width": 1400, "height": 2300}


def caption(page: Page, text: str):
    return page.get_by_test_id("stCaptionContainer").filter(has_text=text)


def switch_on(page: Page, label: str) -> None:
    page.get_by_test_id("stCheckbox").filter(has_text=label).click()  # st.toggle's test id


def test_inside_shows_the_panels_for_a_drawn_digit(page, app_url):
    open_app(page, app_url, "inside?model=cnn")
    strokes = Sample("7").points()
    draw_and_wait(page, strokes, f"Inside cnn on your drawing ({len(strokes)} stroke")
    expect(page.get_by_role("heading", name="cnn reads 7")).to_be_visible()
    expect(page.get_by_text("Why this digit", exact=True)).to_be_visible()
    expect(page.get_by_text("Layer by layer", exact=True)).to_be_visible()
    expect(page.get_by_text("conv_1 · (N, 24, 24, 25)")).to_be_visible()
    # The model input, occlusion for 7 and its runner-up, six stages, conv_1's filters.
    images = page.get_by_test_id("stImage")
    expect(images).to_have_count(1 + 2 + 6 + 1)

    switch_on(page, "Saliency maps")
    expect(caption(page, "integrated gradients")).to_be_visible()
    expect(images).to_have_count(1 + 4 + 6 + 1)

    switch_on(page, "Side by side")
    expect(caption(page, f"Inside cnn and mlp_1x50 on your drawing ({len(strokes)} stroke")).to_be_visible()
    expect(page.get_by_role("heading", name="mlp_1x50 reads")).to_be_visible()
    expect(caption(page, "integrated gradients")).to_have_count(2)
    wait_until_idle(page)
    page.set_viewport_size(SCREENSHOT_VIEWPORT)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "inside")


def test_draw_why_panel_opens_on_the_maps(page, app_url):
    open_app(page, app_url, "draw?model=cnn")
    strokes = Sample("4").points()
    draw_and_wait(page, strokes, f"cnn read your drawing ({len(strokes)} stroke")
    expect(caption(page, "Erasing: a black")).to_have_count(0)  # collapsed: nothing computed
    page.get_by_test_id("stExpander").get_by_text("Why this digit?").click()
    expect(caption(page, "Erasing: a black")).to_be_visible()
    expect(page.get_by_test_id("stExpander").get_by_test_id("stImage")).to_have_count(2)
    expect(page.get_by_role("link", name="Inside cnn: every layer, and saliency")).to_be_visible()
