"""A small class under Locust (scripts/benchmarks/locustfile.py) against the real server: every answer right, no errors.

The learners draw out of step, as a class does: a load tool whose learners all
drew in the same instant measured bursts, not a class (docs/facts.md).

Five simulated learners, each a websocket tab speaking Streamlit's protocol,
send enlarged MNIST test digits to Draw, Compare and Inside for ~30 s with the
cnn picked. Each page's answer must be the digit the cnn reads offline from the
very same canvas PNG, through the same preprocessing. No timing is asserted.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

from scripts.benchmarks.streamlit_client import StreamlitSession
from tests.browser.conftest import ROOT, running_app
from tests.browser.locust_class import assert_each_read_as_offline, run_a_class

LEARNERS = 5
MODEL = "cnn"


def test_five_learners_under_locust_get_the_cnns_reading_of_every_digit(mnist, tmp_path):
    (_, _), (x_test, _) = mnist
    with running_app(f"sqlite:///{tmp_path / 'digit_zoo.db'}", tmp_path / "streamlit.log") as url:
        with StreamlitSession(url, timeout=120) as warm_up:  # the cold start is not the class's load
            for page in ("draw", "compare", "inside"):
                warm_up.open(page, query=f"model={MODEL}")
        lines = run_a_class(url, LEARNERS, 30, MODEL, tmp_path)

    assert len(lines) >= LEARNERS * 5  # a stroke every 2 s each, for ~30 s
    assert {line["page"] for line in lines} <= {"draw", "compare", "inside"}
    # Out of step: in step, every stroke would have another learner's within a few ms of it.
    sent = sorted((line["sent"], line["learner"]) for line in lines)
    crowded = sum(any(k != j and abs(t - u) < 0.05 for u, j in sent) for t, k in sent)
    assert crowded < 0.6 * len(sent), f"{crowded} of {len(sent)} strokes sent within 50 ms of another learner's"
    assert_each_read_as_offline(lines, MODEL, x_test)


def test_the_load_client_reads_what_a_chromium_tab_reads(mnist):
    """bench_class, small, in a process of its own (asyncio there): the client against Chromium, then a class.

    The tab draws; the client sends the PNG the tab's canvas made; both must show
    the same digit. The server's CPU per run of each is logged (no timing asserted).
    """
    command = [sys.executable, "-m", "scripts.benchmarks.bench_class", "--learners", "3", "--seconds", "10"]
    command += ["--no-jobs", "--check-drawings", "4", "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {row["measure"]: row for row in json.loads(done.stdout)["rows"]}
    same = rows["load client against a Chromium tab: the same digit read"]
    assert (same["p50"], same["unit"], same["met"]) == (4, "of 4", True), same
    timing = rows["load client against a Chromium tab: the server's CPU per run"]
    assert math.isfinite(timing["p50"]) and math.isfinite(timing["baseline"]), timing  # both logged
    assert rows["3 learners, no job: errors"]["p50"] == 0, rows["3 learners, no job: errors"]
    assert rows["3 learners, no job: dropped sessions"]["p50"] == 0, rows["3 learners, no job: dropped sessions"]
