"""A class of simulated learners for Locust: each a tab speaking Streamlit's own protocol.

    locust -f scripts/benchmarks/locustfile.py --headless --host http://127.0.0.1:8501 -u 30 -r 30 -t 60s

Each learner opens a page (Draw, Compare or Inside, 3 : 1 : 1, in turn), then
every ``DIGIT_ZOO_LOAD_PACE`` seconds (default 2) on average, out of step with
the others, sends what the canvas sends after a stroke: a real MNIST test digit enlarged onto the
canvas, so the server does a real drawing's work. An answer is one request in
Locust's statistics, named after its page, timed from the request to the run's
``script_finished``; a run that ends in an exception or never ends is a failure.
Which digit the page read is not judged here (a model may misread a digit): with
``DIGIT_ZOO_LOAD_ANSWERS=FILE`` every answer is appended to FILE as a JSON line
(learner, when the stroke was sent, page, model, MNIST index, digit read) for a
test to check against the models read offline. ``DIGIT_ZOO_LOAD_MODEL`` fixes the model (``?model=``).
MNIST comes from ``MNIST_PATH`` (see ``model_zoo.data``).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from functools import cache

import numpy as np
from locust import User, events, task

from model_zoo import data
from scripts.benchmarks.streamlit_client import ServerError, StreamlitSession, digit_png, read_digit

PAGES = ["draw", "draw", "draw", "compare", "inside"]
# Learners take the pages in turn, not by chance: a class of 30 is always 18 : 6 : 6, so runs
# compare (an Inside run costs several Draw runs; by chance one class had 3 times another's).
_learner_numbers = itertools.count()
PACE = float(os.environ.get("DIGIT_ZOO_LOAD_PACE", "2"))
JITTER = 0.25  # each pause is PACE × 0.75 to 1.25
_answers_lock = threading.Lock()


@cache
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    _, test = data.load_mnist()
    return test


class Learner(User):
    def on_start(self) -> None:
        self.number = next(_learner_numbers)
        self.page = PAGES[self.number % len(PAGES)]
        self.model = os.environ.get("DIGIT_ZOO_LOAD_MODEL", "")
        self.session = StreamlitSession(self.host)
        time.sleep(random.uniform(0, PACE))  # out of step with the others
        self._timed(
            "open " + self.page, lambda: self.session.open(self.page, query=f"model={self.model}" if self.model else "")
        )
        self.next_stroke = time.monotonic()

    def wait_time(self) -> float:
        """Until this learner's next stroke: PACE s on average, ±JITTER, a slow answer skipping none.

        Not Locust's constant_pacing: it counts from the spawn, before on_start's random sleep,
        so a class spawned at once drew in the same instant every PACE s (docs/facts.md). Nor
        a metronome: a hand is not one, and learners at fixed phases would meet (or miss) each
        other at every stroke for the whole run, making a class's tail one draw of chance.
        """
        self.next_stroke += PACE * random.uniform(1 - JITTER, 1 + JITTER)
        return max(0.0, self.next_stroke - time.monotonic())

    # No on_stop closing the socket: under Locust's gevent, closing a websockets (17) sync
    # connection while its reader waits in a selector aborted Locust at the end of 4 runs in 5
    # (libev: "I/O watcher with invalid fd found in epoll_ctl"), after its tables were written;
    # 0 in 10 without. The sessions end with the process, as a closed tab's do.

    @task
    def stroke(self) -> None:
        x, _ = mnist_test()
        index = random.randrange(len(x))
        sent = time.time()
        run = self._timed(self.page, lambda: self.session.draw(digit_png(x[index])))
        if run is not None and (path := os.environ.get("DIGIT_ZOO_LOAD_ANSWERS")):
            line = {
                "learner": self.number,
                "sent": sent,
                "page": self.page,
                "model": self.model,
                "index": index,
                "read": read_digit(run, self.page, self.model),
            }
            with _answers_lock, open(path, "a") as answers:
                answers.write(json.dumps(line) + "\n")

    def _timed(self, name: str, send):
        started = time.perf_counter()
        run, error = None, None
        try:
            run = send()
        except (ServerError, OSError) as failure:  # OSError: the connection dropped or timed out
            error = failure
        events.request.fire(
            request_type="streamlit",
            name=name,
            exception=error,
            context={},
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
        )
        return run
