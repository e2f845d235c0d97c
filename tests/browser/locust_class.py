"""A class under Locust (scripts/benchmarks/locustfile.py) for the tests: run it, then check what each learner read."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from model_zoo import model_files, preprocess, store
from scripts.benchmarks import bench_class
from scripts.benchmarks.streamlit_client import digit_png
from tests.browser.conftest import ROOT


def run_a_class(url: str, learners: int, seconds: float, model: str, tmp_path: Path) -> list[dict]:
    """Locust's learners on ``url`` with ``model`` picked, none failing: every answer, as the locustfile logs it."""
    answers = tmp_path / "answers.jsonl"
    env = os.environ | {"DIGIT_ZOO_LOAD_ANSWERS": str(answers), "DIGIT_ZOO_LOAD_MODEL": model}
    command = bench_class.locust_command(url, learners, seconds, tmp_path / "load")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 150)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "load_stats.csv") as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    assert int(total["Failure Count"]) == 0, done.stderr[-3000:]
    return [json.loads(line) for line in answers.read_text().splitlines()]


def assert_each_read_as_offline(lines: list[dict], model: str, x_test: np.ndarray) -> None:
    """Each answer is the digit ``model`` reads offline from the same canvas PNG through the same preprocessing."""
    offline = model_files.read_model(store.scan().get(model).model_file())
    for line in lines:
        canvas = np.asarray(Image.open(io.BytesIO(digit_png(x_test[line["index"]]))))
        assert line["read"] == str(offline.predict(preprocess.to_mnist(canvas)).digit), line
