"""The class's digits in a real browser: draw, keep, browse, delete, export, import, fine-tune, draw with it.

One learner's whole loop, from "it read my 4 as a 9" to a version trained on
the class's digits, on the real app with its own database and Ray instance;
at the end the browser-drawn class set is imported through the page and the
Class page is saved as docs/class.png.
"""

from __future__ import annotations

import re

import numpy as np
from playwright.sync_api import Page, expect

from model_zoo import class_digits, db, store

from .class_set import FIXTURE
from .conftest import (
    FIRST_PAGE_SECONDS,
    RESULT_SECONDS,
    draw_and_wait,
    open_app,
    screenshot,
    sign_in_as_teacher,
    wait_until_idle,
)
from .strokes import Sample
from .test_train import saved_name

# In "second class" the first 7 and the first 1 join the train part (class_digits' rule), so the
# two imported digits can be trained on.
KEPT = {"7": Sample("7"), "1": Sample("1_flag"), "3": Sample("3")}


def draw(page: Page, sample: Sample) -> None:
    strokes = sample.points()
    draw_and_wait(page, strokes, f"cnn read your drawing ({len(strokes)} stroke")


def keep(page: Page, label: str, count: int) -> None:
    page.locator(".st-key-draw_keep").get_by_role("button", name=label, exact=True).click()
    expect(page.get_by_test_id("stAlert").filter(has_text=f"Kept as a {label}")).to_be_visible(
        timeout=RESULT_SECONDS * 1000
    )
    expect(
        page.get_by_test_id("stCaptionContainer").filter(has_text=f"Your digits in my class: {count} (")
    ).to_be_visible()
    wait_until_idle(page)


def pick(page: Page, box: str, option: str) -> None:
    """Choose in a select box: type to narrow the list, click the option."""
    combobox = page.get_by_role("combobox", name=box)
    combobox.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).click()
    expect(combobox).to_have_value(option)
    wait_until_idle(page)


def test_draw_keep_browse_delete_export_import_fine_tune_and_draw_with_it(
    page, app_url, app_database, app_log, monkeypatch, tmp_path
):
    monkeypatch.setenv(db.URL_VARIABLE, app_database)
    open_app(page, app_url, "draw?model=cnn")
    draw(page, KEPT["7"])
    name = page.get_by_role("textbox", name="Your name (once per visit; else anonymous)")
    name.fill("Ada")
    name.press("Enter")
    wait_until_idle(page)
    keep(page, "7", 1)
    for count, label in enumerate(("1", "3"), start=2):
        draw(page, KEPT[label])
        keep(page, label, count)

    # The Class page shows them, grouped by label, with what the model reads.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Class").click()
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text="3 digits from 1 learner")).to_be_visible(
        timeout=FIRST_PAGE_SECONDS * 1000
    )
    thumbnails = page.locator('[class*="st-key-class_digit_"]')
    expect(thumbnails).to_have_count(3)
    pick(page, "Model", "cnn")
    for label in KEPT:
        expect(
            page.locator(f".st-key-class_label_{label}").get_by_text(re.compile(r"reads \d \(\d+%\)"))
        ).to_have_count(1)
    kept = class_digits.digits("my class")
    assert sorted(d.label for d in kept) == [1, 3, 7] and {d.learner for d in kept} == {"Ada"}
    assert all(d.readings["cnn"][0] == d.label for d in kept)  # what cnn read on Draw, kept with each

    # Delete the 3 (the learner's own); the teacher signs in and exports what is left.
    page.locator(".st-key-class_label_3").get_by_role("button", name="Delete").click()
    expect(thumbnails).to_have_count(2, timeout=RESULT_SECONDS * 1000)
    wait_until_idle(page)
    sign_in_as_teacher(page, app_log)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export as .npz (x, y)").click()
    exported = tmp_path / "my_class.npz"
    download.value.save_as(exported)
    with np.load(exported) as archive:
        assert archive["x"].shape == (2, 28, 28) and archive["x"].dtype == np.uint8
        assert sorted(archive["y"].tolist()) == [1, 7]

    # A second class, named by the teacher, gets the export.
    page.get_by_text("Name a new class").click()
    page.get_by_role("textbox", name="Class name").fill("second class")
    page.get_by_role("button", name="Create class").click()
    expect(page.get_by_test_id("stAlert").filter(has_text="No digits in second class yet")).to_be_visible(
        timeout=RESULT_SECONDS * 1000
    )
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(exported)
    wait_until_idle(page)
    page.get_by_role("button", name="Import into second class").click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Imported 2 digits into second class")).to_be_visible(
        timeout=RESULT_SECONDS * 1000
    )
    assert class_digits.split_sizes("second class") == (2, 0)

    # Fine-tune mlp_1x50 on them from the Train page; the version lands on Draw.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    expect(page.get_by_role("heading", name="Train")).to_be_visible(timeout=RESULT_SECONDS * 1000)
    page.get_by_text("the shipped model's weights (fine-tune)").click()
    expect(page.get_by_role("spinbutton", name="Learning rate")).to_have_value("0.00010")  # the rerun came
    wait_until_idle(page)
    pick(page, "Add the class's digits", "second class (2 to train on, 0 held out)")
    for label, value in [("Training digits", 1000), ("Epochs", 1)]:
        page.get_by_role("spinbutton", name=label).fill(str(value))
    page.get_by_role("button", name="Start training").click()
    expect(
        page.get_by_role("heading", name="mlp_1x50, fine-tuned, 1 epochs on 1,000 digits + the class second class")
    ).to_be_visible(timeout=FIRST_PAGE_SECONDS * 1000)
    version = saved_name(page)
    record = store.scan().get(version).record
    assert record["settings"]["fine_tune"] and record["class_digits"]["train"] == 2
    page.get_by_role("link", name=f"Draw with {version}").click()
    expect(page.get_by_role("combobox", name="Model")).to_have_value(
        re.compile(re.escape(version)), timeout=RESULT_SECONDS * 1000
    )
    draw_and_wait(page, KEPT["7"].points(), f"{version} read your drawing")

    # The browser-drawn class set, imported through the page: the Class page's screenshot.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Class").click()
    expect(page.get_by_role("heading", name="Class", exact=True)).to_be_visible(timeout=RESULT_SECONDS * 1000)
    pick(page, "Class", "my class")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(FIXTURE)
    wait_until_idle(page)
    page.get_by_role("button", name="Import into my class").click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Imported")).to_be_visible(timeout=FIRST_PAGE_SECONDS * 1000)
    wait_until_idle(page)
    pick(page, "Model", "mlp_1x50")
    page.get_by_text("Only the ones mlp_1x50 gets wrong").click()
    expect(
        page.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"Showing \d+, framed red"))
    ).to_be_visible()
    wait_until_idle(page)
    page.get_by_role("heading", name="Class", exact=True).scroll_into_view_if_needed()
    screenshot(page, "class")
