"""The Compare page in a real browser: each drawing read by every model, one row each."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from model_zoo import db, store

from .conftest import (
    READINGS,
    RESULT_SECONDS,
    clear,
    draw_and_wait,
    open_app,
    screenshot,
    set_pen_width,
    wait_until_idle,
)
from .strokes import CORNERS, LARGE, NATURAL, SAMPLES, SLOPPY, Sample


def zoo_names(app_database, monkeypatch) -> list[str]:
    """The models the server lists: the shipped ones and any versions tests trained."""
    monkeypatch.setenv(db.URL_VARIABLE, app_database)
    return store.scan().names


def draw_and_read_all(page: Page, sample: Sample, models: int) -> dict[str, str]:
    """Draw `sample` on /compare; return {model: digit it reads}, row by row from the table."""
    strokes = sample.points()
    draw_and_wait(page, strokes, f"Read from your drawing ({len(strokes)} stroke")
    table = page.get_by_test_id("stTable")
    expect(table.locator("tbody tr")).to_have_count(models, timeout=RESULT_SECONDS * 1000)  # a row per model
    header = [cell.strip() for cell in table.locator("thead th").all_inner_texts()]
    model, reads = header.index("Model"), header.index("Reads")
    rows = [
        [cell.strip() for cell in row.locator("th, td").all_inner_texts()] for row in table.locator("tbody tr").all()
    ]
    return {row[model]: row[reads] for row in rows}


def read_samples(page: Page, samples: list[Sample], names: list[str], group: str) -> None:
    """Draw each sample (Clear in between); check the rows; record what every model read."""
    for sample in samples:
        readings = draw_and_read_all(page, sample, len(names))
        assert list(readings) == names, sample.id
        expect(page.get_by_test_id("stAlert").filter(has_text="agree")).to_be_visible()
        for name, read in readings.items():
            READINGS[group, name][sample.id] = (sample.digit, read)
        if sample is SHOWN:
            screenshot(page, "compare")
        clear(page)


SHOWN = Sample("3", 200)  # the README's picture
FEW = [SHOWN, CORNERS[2], LARGE[-1]]  # a natural 3, a small 5 in a corner, a big slanted 8


def test_each_drawing_gets_one_row_per_model(page, app_url, app_database, monkeypatch):
    names = zoo_names(app_database, monkeypatch)
    open_app(page, app_url, "compare")
    read_samples(page, FEW, names, "Compare")


@pytest.mark.skipif(
    os.environ.get("MEASURE_DRAWINGS") != "1",
    reason=("set MEASURE_DRAWINGS=1 to score every model on every browser-drawn sample (~3 min)"),
)
def test_every_model_on_every_drawing(page, app_url, app_database, monkeypatch):
    """The table printed at the end of the run: our proxy for real users' drawings.

    Careful and sloppy digits with the default pen (12 px), then with a hairline,
    the old default (22 px) and a fat pen.
    """
    names = zoo_names(app_database, monkeypatch)
    open_app(page, app_url, "compare")
    read_samples(page, SAMPLES, names, "careful")
    read_samples(page, SLOPPY, names, "sloppy")
    for pen in (6, 22, 36):
        set_pen_width(page, pen)
        read_samples(page, NATURAL + SLOPPY, names, f"pen {pen}")
    if "cnn_robust" in names:  # the model meant for drawings reads the careful ones all
        assert [s for s, (digit, read) in READINGS["careful", "cnn_robust"].items() if read != digit] == []


def test_zoo_page_screenshot(page, app_url):
    """The README's picture of /zoo, as the page is now (the Zoo's own tests check its content)."""
    page.goto(f"{app_url}/zoo")
    expect(page.locator("h1").first).to_be_visible(timeout=90_000)
    wait_until_idle(page, timeout=120)
    screenshot(page, "zoo")
