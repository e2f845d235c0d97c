"""A lesson on the board: a teacher's projector and three learners, each in a browser of their own.

The learners join through the address the board shows (in tests, the server's
127.0.0.1 URL, set as a teacher sets a public address), draw and keep digits;
the teacher starts a challenge; one learner trains and saves a version; the
teacher ends the challenge. The board shows each step within seconds, without
a reload, and is saved as docs/board.png (its join panel as docs/join.png) at
1920 × 1080.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from .conftest import DOCS, FIRST_PAGE_SECONDS, draw_and_wait, open_app, running_app, screenshot, sign_in_as_teacher
from .strokes import Sample
from .test_class import keep
from .test_train import saved_name, start_job

PROJECTOR = {"width": 1920, "height": 1080}
BOARD_SECONDS = 10  # it redraws itself every 2 s
KEPT = {"Ada": "7", "Bo": "1", "Cy": "3"}


def test_three_learners_join_from_the_board_keep_digits_and_a_version_while_it_watches(browser: Browser, tmp_path):
    with running_app(f"sqlite:///{tmp_path / 'digit_zoo.db'}", tmp_path / "streamlit.log") as url:
        teacher = browser.new_context(viewport=PROJECTOR).new_page()
        open_app(teacher, url, "board")
        address = teacher.locator(".board .address").inner_text()
        assert address == f"{url}/draw"  # the join address, as a phone's camera reads the QR code
        expect(teacher.get_by_role("img").first).to_be_visible()

        learners = {}
        for count, (name, label) in enumerate(KEPT.items(), start=1):
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(address)
            open_app(page, url, "draw?model=cnn")
            strokes = Sample(label).points()
            draw_and_wait(page, strokes, f"cnn read your drawing ({len(strokes)} stroke")
            field = page.get_by_role("textbox", name="Your name (once per visit; else anonymous)")
            field.fill(name)
            field.press("Enter")
            keep(page, label, 1)
            learners[name] = page
            expect(teacher.locator(".board").filter(has_text=f"{count} digits kept in my class")).to_be_visible(
                timeout=BOARD_SECONDS * 1000
            )
        expect(teacher.locator("[data-testid=drawing-now]")).to_have_text("3", timeout=BOARD_SECONDS * 1000)
        expect(teacher.locator(".tiles figure")).to_have_count(3)

        # The teacher signs in on the Class page and starts a challenge.
        class_page = browser.new_context(viewport=PROJECTOR).new_page()
        open_app(class_page, url, "class")
        sign_in_as_teacher(class_page, tmp_path / "streamlit.log")  # the password the server printed
        class_page.get_by_role("button", name="Start a challenge").click()
        expect(teacher.locator("[data-testid=leaderboard]")).to_be_visible(timeout=BOARD_SECONDS * 1000)

        ada = learners["Ada"]
        ada.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
        expect(ada.get_by_role("button", name="Start training")).to_be_visible(timeout=FIRST_PAGE_SECONDS * 1000)
        start_job(ada, 2_000, 1, 128)
        expect(teacher.locator("[data-testid=jobs]").filter(has_text="mlp_1x50")).to_be_visible(
            timeout=BOARD_SECONDS * 1000
        )
        name = saved_name(ada)
        expect(teacher.locator("[data-testid=jobs]").filter(has_text=f"saved as {name}")).to_be_visible(
            timeout=BOARD_SECONDS * 1000
        )
        expect(teacher.locator("[data-testid=leaderboard]").get_by_text(name, exact=True)).to_be_visible(
            timeout=BOARD_SECONDS * 1000
        )

        screenshot(teacher, "board")
        teacher.locator(".st-key-board_join").screenshot(path=str(DOCS / "join.png"))

        # The teacher ends it: the board reveals the held-out digits, marking those that beat every model.
        class_page.get_by_role("button", name="End the challenge and reveal the held-out digits").click()
        expect(teacher.locator(".board").filter(has_text="Challenge (ended)")).to_be_visible(
            timeout=BOARD_SECONDS * 1000
        )
        expect(teacher.get_by_text(re.compile(r"The held-out digits: \d+ beat every model"))).to_be_visible()
