"""A small class under Locust (scripts/benchmarks/locustfile.py) against the real server: every answer right, no errors.

The learners draw out of step, as a class does: a load tool whose learners all
drew in the same instant measured bursts, not a class (docs/performance.md).

Five simulated learners, each a websocket tab speaking Streamlit's protocol,
send enlarged MNIST test digits to Draw, Compare and Inside for ~30 s with the
cnn picked. Each page's answer must be the digit the cnn reads offline from the
very same canvas PNG, through the same preprocessing. No timing is asserted.
"""

from __future__ import annotations

import cmath
import csv
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from model_zoo import model_files, preprocess, store
from scripts.benchmarks import bench_class
from scripts.benchmarks.streamlit_client import StreamlitSession, digit_png
from tests.browser.conftest import ROOT, running_app

LEARNERS = 5
PACE = 2.0  # s between a learner's strokes: the locustfile's default (not imported: Locust patches the process)
MODEL = "cnn"


def test_five_learners_under_locust_get_the_cnns_reading_of_every_digit(mnist, tmp_path):
    (_, _), (x_test, _) = mnist
    answers = tmp_path / "answers.jsonl"
    with running_app(f"sqlite:///{tmp_path / 'digit_zoo.db'}", tmp_path / "streamlit.log") as url:
        with StreamlitSession(url, timeout=120) as warm_up:  # the cold start is not the class's load
            for page in ("draw", "compare", "inside"):
                warm_up.open(page, query=f"model={MODEL}")
        env = os.environ | {"DIGIT_ZOO_LOAD_ANSWERS": str(answers), "DIGIT_ZOO_LOAD_MODEL": MODEL}
        command = bench_class.locust_command(url, LEARNERS, 30, tmp_path / "load")
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "load_stats.csv") as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    assert int(total["Failure Count"]) == 0, done.stderr[-3000:]

    lines = [json.loads(line) for line in answers.read_text().splitlines()]
    assert len(lines) >= LEARNERS * 5  # a stroke every 2 s each, for ~30 s
    assert {line["page"] for line in lines} <= {"draw", "compare", "inside"}
    # Each learner at its own phase of the pace: in step, all would draw within a few ms of each other.
    phases = sorted(
        phase([line["sent"] for line in lines if line["learner"] == learner][1:])  # the first is right after opening
        for learner in {line["learner"] for line in lines}
    )
    assert len(phases) == LEARNERS
    widest_gap = max(b - a for a, b in zip(phases, phases[1:] + [phases[0] + PACE]))
    assert PACE - widest_gap > 0.2, f"the learners drew in step: phases {phases} s"
    cnn = model_files.read_model(store.scan().get(MODEL).model_file())
    for line in lines:
        canvas = np.asarray(Image.open(io.BytesIO(digit_png(x_test[line["index"]]))))
        offline = cnn.predict(preprocess.to_mnist(canvas)).digit
        assert line["read"] == str(offline), line


def test_the_load_client_reads_what_a_chromium_tab_reads(mnist):
    """bench_class, small, in a process of its own (asyncio there): the client against Chromium, then a class.

    The tab draws; the client sends the PNG the tab's canvas made; both must show
    the same digit. The server's time per run of each is logged (no timing asserted).
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


def phase(times: list[float]) -> float:
    """Where in the pace a learner draws, 0 ≤ phase < PACE: the circular mean of its strokes' times."""
    mean = sum(cmath.exp(2j * math.pi * t / PACE) for t in times)
    return cmath.phase(mean) / (2 * math.pi) * PACE % PACE
