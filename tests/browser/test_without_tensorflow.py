"""The web server answers drawings on every page without ever importing TensorFlow or Keras.

A fresh server logs, after every script run, which of ``tensorflow`` and ``keras``
are in its ``sys.modules`` (run_timings.py, switched on by DIGIT_ZOO_TIMINGS); Chromium
draws on Draw (and opens its "why" panel), Compare and Inside (with saliency),
keeps the drawing, then opens the Class and Zoo pages.
"""

from __future__ import annotations

import json

from playwright.sync_api import expect

import run_timings

from .conftest import RESULT_SECONDS, draw_and_wait, open_app, running_app, wait_until_idle
from .strokes import Sample

PAGES = ("draw", "compare", "inside", "class", "zoo")


def test_draw_compare_inside_class_and_zoo_never_import_tensorflow_or_keras(page, tmp_path):
    runs = tmp_path / "runs.jsonl"
    strokes = Sample("7").points()
    with running_app(
        f"sqlite:///{tmp_path / 'digit_zoo.db'}", tmp_path / "streamlit.log", env={run_timings.VARIABLE: str(runs)}
    ) as url:
        open_app(page, url, "draw?model=cnn")
        draw_and_wait(page, strokes, f"cnn read your drawing ({len(strokes)} stroke")
        page.get_by_test_id("stExpander").get_by_text("Why this digit?").click()
        expect(page.get_by_test_id("stCaptionContainer").filter(has_text="Erasing: a black")).to_be_visible()
        page.locator(".st-key-draw_keep").get_by_role("button", name="7", exact=True).click()
        expect(page.get_by_test_id("stAlert").filter(has_text="Kept as a 7")).to_be_visible(
            timeout=RESULT_SECONDS * 1000
        )

        open_app(page, url, "compare")
        draw_and_wait(page, strokes, f"Read from your drawing ({len(strokes)} stroke")

        open_app(page, url, "inside?model=cnn_robust")
        draw_and_wait(page, strokes, f"Inside cnn_robust on your drawing ({len(strokes)} stroke")
        page.get_by_test_id("stCheckbox").filter(has_text="Saliency maps").click()
        expect(page.get_by_test_id("stCaptionContainer").filter(has_text="integrated gradients")).to_be_visible(
            timeout=RESULT_SECONDS * 1000
        )

        open_app(page, url, "class")
        expect(page.get_by_role("heading", name="How each model reads the class")).to_be_visible()
        open_app(page, url, "zoo")
        expect(page.get_by_role("heading", name="One model up close")).to_be_visible()
        wait_until_idle(page)
    logged = [json.loads(line) for line in runs.read_text().splitlines()]
    assert {run.get("page") for run in logged} >= set(PAGES), logged
    assert [run for run in logged if run["imported"]] == [], "TensorFlow or Keras was imported by these runs"
