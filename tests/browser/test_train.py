"""Train in a real browser: the curves grow while a classmate draws, and the version lands on Draw.

The first job is sized to run for minutes (60,000 digits in batches of 8), so
it is surely still training while the classmate draws; it is then stopped and
saved. A short second job (2,000 digits) finishes by itself.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from model_zoo import db, store

from .conftest import FIRST_PAGE_SECONDS, RESULT_SECONDS, VIEWPORT, canvas, draw_strokes, open_app
from .strokes import Sample

JOB_SECONDS = 240  # the whole job, on a busy 2-core machine
# What a stopped job says: in the middle of an epoch, never "after 1 of 3 epochs" for a part of one.
STOPPED_EARLY = re.compile(r"Stopped (after \d of 3 epochs|during epoch \d of 3 \(batch [\d,]+ of [\d,]+\))")
REACHED = """() => {
    const chart = document.querySelector('.st-key-train_curves .js-plotly-plot');
    const x = chart && chart.data ? chart.data[0].x : [];
    return x.length ? x[x.length - 1] : 0;
}"""  # how far (in epochs) the "Loss per batch" chart has drawn


@pytest.fixture
def new_tab(browser: Browser):
    """Tabs of their own browser contexts: their own Streamlit sessions, like two laptops."""
    contexts = []

    def open_tab() -> Page:
        contexts.append(browser.new_context(viewport=VIEWPORT))
        return contexts[-1].new_page()

    yield open_tab
    for context in contexts:
        context.close()


def reached(page: Page) -> float:
    return page.evaluate(REACHED)


def wait_for_the_curve_to_grow(page: Page, beyond: float) -> float:
    page.wait_for_function(f"n => ({REACHED})() > n", arg=beyond, timeout=JOB_SECONDS * 1000)
    return reached(page)


def draw_a_seven(page: Page) -> None:
    strokes = Sample("7").points()
    draw_strokes(page, canvas(page), strokes)
    done = page.get_by_test_id("stCaptionContainer").filter(has_text=f"read your drawing ({len(strokes)} stroke")
    expect(done).to_be_visible(timeout=RESULT_SECONDS * 1000)
    # Under a training job's load the columns above the caption can still be drawing (seen once in CI).
    expect(page.get_by_test_id("stMetric").filter(has_text="Prediction")).to_be_visible(timeout=RESULT_SECONDS * 1000)


def start_job(page: Page, digits: int, epochs: int, batch_size: int) -> None:
    for label, value in [("Training digits", digits), ("Epochs", epochs), ("Batch size", batch_size)]:
        page.get_by_role("spinbutton", name=label).fill(str(value))
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_role("heading", name=f"mlp_1x50, {epochs} epochs on {digits:,} digits")).to_be_visible(
        timeout=FIRST_PAGE_SECONDS * 1000
    )  # the new job's panel, not the last one's (Ray may be starting)


def saved_name(page: Page) -> str:
    saved = page.get_by_test_id("stAlertContentSuccess").filter(has_text="Saved as")
    expect(saved).to_be_visible(timeout=JOB_SECONDS * 1000)
    return re.search(r"Saved as (\S+) — select it on Draw", saved.inner_text()).group(1)


def versions(database_url: str, monkeypatch) -> dict[str, dict]:
    """The versions in the server's database: {name: record}."""
    monkeypatch.setenv(db.URL_VARIABLE, database_url)
    return {entry.name: entry.record for entry in store.scan().entries if not entry.shipped}


def test_curves_grow_while_a_classmate_draws_then_stop_save_and_draw_with_it(
    new_tab, app_url, app_database, monkeypatch
):
    classmate = open_app(new_tab(), app_url)  # Draw is the app's first page
    learner = open_app(new_tab(), app_url, "train")
    start_job(learner, 60_000, 3, 8)  # 6,750 batches an epoch: minutes, so it is surely running below
    stop = learner.get_by_role("button", name="Stop training")
    expect(stop).to_be_visible(timeout=FIRST_PAGE_SECONDS * 1000)

    # The chart redraws by itself: its per-batch curve grows with no click.
    first = wait_for_the_curve_to_grow(learner, 0)
    assert wait_for_the_curve_to_grow(learner, first) > first
    expect(learner.get_by_text(re.compile(r"Epoch 1 of 3 · batch \d+ of 6750"))).to_be_visible()

    # A classmate's drawing is read while the job trains, and the job goes on.
    draw_a_seven(classmate)
    expect(stop).to_be_visible()
    wait_for_the_curve_to_grow(learner, reached(learner))

    # Leaving the page and coming back finds the job still training.
    learner.get_by_test_id("stSidebarNav").get_by_role("link", name="Draw").click()
    expect(learner.get_by_role("heading", name="Draw")).to_be_visible(timeout=RESULT_SECONDS * 1000)
    learner.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    expect(learner.get_by_text("mlp_1x50, 3 epochs on 60,000 digits")).to_be_visible(timeout=RESULT_SECONDS * 1000)
    expect(stop).to_be_visible()

    # Stop keeps what it learned, for the learner to save under a name.
    stop.click()
    expect(learner.get_by_text(STOPPED_EARLY)).to_be_visible(timeout=JOB_SECONDS * 1000)
    learner.get_by_role("textbox", name="Version name (optional)").last.fill("first try")
    learner.get_by_role("button", name="Save version").click()
    assert saved_name(learner) == "first-try"
    assert versions(app_database, monkeypatch)["first-try"]["stopped_early"] is True

    # A short job finishes by itself and becomes a version, with its logs.
    start_job(learner, 2_000, 3, 128)
    name = saved_name(learner)
    assert versions(app_database, monkeypatch)[name]["epochs_done"] == 3 and store.tensorboard_zip(name)
    expect(learner.get_by_role("button", name="TensorBoard logs (.zip)")).to_be_visible()
    epoch_chart = learner.locator(".st-key-train_curves .js-plotly-plot").nth(1)
    assert epoch_chart.evaluate("chart => chart.data[0].x.length") == 3  # train loss, every epoch

    # Its link opens Draw with the new version picked, and it reads a drawing.
    learner.get_by_role("link", name=f"Draw with {name}").click()
    expect(learner.get_by_role("combobox", name="Model")).to_have_value(
        re.compile(re.escape(name)), timeout=RESULT_SECONDS * 1000
    )
    draw_a_seven(learner)

    # The classmate's Draw page lists both versions.
    classmate.reload()
    classmate.get_by_role("combobox", name="Model").click()
    for version in ("first-try", name):
        expect(classmate.get_by_role("option", name=re.compile(re.escape(version)))).to_be_visible(
            timeout=RESULT_SECONDS * 1000
        )
