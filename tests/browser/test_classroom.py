"""A class on real servers: two app servers on one database, and a server killed with kill -9 mid-job.

Each server is `streamlit run app.py` with its own local Ray instance; they
share a SQLite file, or a PostgreSQL database as a school's replicas do.
"""

from __future__ import annotations

import os
import re
import signal

import pytest
from playwright.sync_api import Browser, Page, expect

from tests import postgres

from .conftest import FIRST_PAGE_SECONDS, RESULT_SECONDS, VIEWPORT, open_app, running_app
from .test_train import JOB_SECONDS, STOPPED_EARLY, saved_name, start_job


def tab(browser: Browser) -> Page:
    return browser.new_context(viewport=VIEWPORT).new_page()


def job_of(page: Page) -> str:
    return re.search(r"[?&]job=(\w+)", page.url).group(1)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_servers_on_one_database_share_the_queue_and_the_versions(browser, tmp_path, request, kind):
    database = (
        f"sqlite:///{tmp_path / 'class.db'}"
        if kind == "sqlite"
        else postgres.fresh_database(request.getfixturevalue("postgres_server"))
    )
    with running_app(database, tmp_path / "a.log") as server_a, running_app(database, tmp_path / "b.log") as server_b:
        learner = open_app(tab(browser), server_a, "train")
        start_job(learner, 60_000, 3, 8)  # minutes: surely training while server B looks
        expect(learner.get_by_role("button", name="Stop training")).to_be_visible(timeout=JOB_SECONDS * 1000)
        owner = re.search(r"started by (\S+)", learner.get_by_text("started by").first.inner_text()).group(1)

        classmate = open_app(tab(browser), server_b, "train")  # another server, another Ray
        table = classmate.get_by_test_id("stDataFrame")
        expect(table).to_contain_text(owner, timeout=RESULT_SECONDS * 1000)
        expect(table).to_contain_text("training now")

        learner.get_by_role("button", name="Stop training").click()
        expect(learner.get_by_text(STOPPED_EARLY)).to_be_visible(timeout=JOB_SECONDS * 1000)
        learner.get_by_role("textbox", name="Version name (optional)").last.fill("saved on a")
        learner.get_by_role("button", name="Save version").click()
        assert saved_name(learner) == "saved-on-a"

        open_app(classmate, server_b, "draw")
        classmate.get_by_role("combobox", name="Model").click()
        expect(classmate.get_by_role("option", name=re.compile("saved-on-a"))).to_be_visible(
            timeout=RESULT_SECONDS * 1000
        )


def test_a_server_killed_mid_job_keeps_its_versions_and_says_the_job_is_lost(browser, tmp_path):
    database = f"sqlite:///{tmp_path / 'class.db'}"
    process: list = []
    with running_app(database, tmp_path / "first.log", process=process) as first:
        learner = open_app(tab(browser), first, "train")
        start_job(learner, 2_000, 1, 128)
        kept = saved_name(learner)
        start_job(learner, 60_000, 3, 8)
        expect(learner.get_by_role("button", name="Stop training")).to_be_visible(timeout=JOB_SECONDS * 1000)
        job = job_of(learner)
        os.kill(process[0].pid, signal.SIGKILL)  # the web server dies mid-job, no goodbye
        process[0].wait()

    with running_app(database, tmp_path / "second.log") as second:
        returning = open_app(tab(browser), second, f"train?job={job}")
        lost = returning.get_by_test_id("stAlertContentError")
        # Either side may record it first: the new server (its pid is gone) or the dying dispatcher.
        expect(lost).to_contain_text(
            "Lost: the Ray instance it trained on stopped (its server", timeout=FIRST_PAGE_SECONDS * 1000
        )
        expect(returning.get_by_test_id("stDataFrame")).to_contain_text("lost")
        open_app(returning, second, "draw")
        returning.get_by_role("combobox", name="Model").click()
        expect(returning.get_by_role("option", name=re.compile(re.escape(kept)))).to_be_visible(
            timeout=RESULT_SECONDS * 1000
        )
