"""The first minute of a lesson: a class opens a freshly started server at the same moment.

Thirty learners (websocket clients speaking Streamlit's protocol, as tabs do)
open a new server together, each gets its page and then an answer to a drawn 1.
A fresh server each time, ten times on Draw and twice on each other first page,
because what can go wrong is the first runs racing each other. A server that
stops answering gets SIGUSR1, which makes it write every thread's stack to its
log (startup.prepare_process), and the failure shows that stack.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from scripts.benchmarks.streamlit_client import ANSWERS, StreamlitSession, canvas_png
from tests.browser.conftest import running_app

LEARNERS = 30
SECONDS = 60  # page, then answer, for every learner: far beyond a healthy server's ~15 s on 2 cores
ONE = canvas_png([[(140, 40), (140, 240)]])  # a vertical stroke: every model reads a 1
FIRST_PAGES = ["draw"] * 10 + ["compare", "inside", "class"] * 2


def learner(url: str, first_page: str, start: threading.Barrier, answers: dict, index: int) -> None:
    try:
        with StreamlitSession(url, timeout=SECONDS) as session:
            start.wait()
            session.open(first_page)
            drawing_page = first_page if first_page in ANSWERS else "draw"
            if drawing_page != first_page:
                session.open(drawing_page)  # from Class to Draw, as a learner clicks in the sidebar
            answers[index] = session.draw(ONE).text_matching(ANSWERS[drawing_page])
    except Exception as error:  # reported with the others below, with the server's stacks
        answers[index] = f"{type(error).__name__}: {error}"


@pytest.mark.parametrize("trial, first_page", list(enumerate(FIRST_PAGES)))
def test_a_class_opens_a_fresh_server_at_once(trial, first_page, tmp_path):
    servers = []
    with running_app(f"sqlite:///{tmp_path / 'digit_zoo.db'}", tmp_path / "streamlit.log", process=servers) as url:
        answers: dict[int, str | None] = {}
        start = threading.Barrier(LEARNERS)
        threads = [
            threading.Thread(target=learner, args=(url, first_page, start, answers, i), daemon=True)
            for i in range(LEARNERS)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + SECONDS + 10  # the clients' own timeouts fire first
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        wrong = {i: answers.get(i, "no answer yet") for i in range(LEARNERS) if answers.get(i) != "1"}
        if wrong:
            os.kill(servers[0].pid, signal.SIGUSR1)  # every thread's stack into the log
            time.sleep(2)
            log = (tmp_path / "streamlit.log").read_text(errors="replace")
            pytest.fail(
                f"{len(wrong)} of {LEARNERS} learners opening {first_page} got no 1: "
                f"{dict(list(wrong.items())[:5])}\nserver log (stacks last):\n{log[-20000:]}"
            )
