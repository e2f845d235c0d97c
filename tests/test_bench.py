"""scripts.bench runs end to end in its quick mode, so it cannot rot. No timing is asserted: load varies."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from scripts import bench, bench_browser
from tests.conftest import missing_service

ROOT = Path(__file__).resolve().parents[1]


def rows_of(capsys, argv: list[str]) -> list[dict]:
    bench.main(["--quick", "--json", *argv])
    return json.loads(capsys.readouterr().out)["rows"]


def test_drawing_and_training_parts_give_their_rows(mnist, capsys):
    rows = rows_of(capsys, ["--training"])
    measures = {row["measure"]: row for row in rows}
    total = next(row for row in rows if row["measure"].startswith("preprocessing + all"))
    assert total["baseline_name"] == "model.predict"
    assert total["met"] == (total["p50"] <= 3 and total["speedup"] >= 100)  # the target it states, not a timing
    assert "preprocessing (to_mnist)" in measures
    assert {"mlp_1x50, 1 epochs: digits/s, ours", "mlp_1x50, 1 epochs: test accuracy, ours",
            "mlp_1x50, 1 epochs: achieved GFLOP/s, ours"} <= set(measures)
    assert all(math.isfinite(row["p50"]) and row["p50"] > 0 for row in rows)


def test_forward_flops_count_dense_and_convolution_layers():
    from model_zoo import architectures

    assert bench.forward_flops(architectures.get("mlp_1x50").build()) == 2 * (784 * 50 + 50 * 10)
    cnn = bench.forward_flops(architectures.get("cnn").build())
    assert cnn == 2 * (24 * 24 * 25 * 25 + 8 * 8 * 25 * 25 * 25 + 16 * 25 * 25 + 25 * 50 + 500)


def test_browser_parts_split_each_stroke_with_the_servers_log(mnist):
    """Also guards run_timings' private Streamlit hook: without it the server's rows would be missing.

    Run as a user runs it, in a process of its own: the browser tests' Playwright
    keeps an event loop in this one, where asyncio.run() may not start another.
    """
    if not Path(bench_browser.CHROMIUM).exists():
        missing_service(f"no Chromium at {bench_browser.CHROMIUM}")
    done = subprocess.run([sys.executable, "-m", "scripts.bench", "--quick", "--json", "--browser"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)["rows"]
    measures = {row["measure"] for row in rows}
    for page in ("draw", "compare"):
        assert {f"{page}: stroke → answer", f"{page}: server: received → last message",
                f"{page}: mouse-up → request received"} <= measures
    assert {"bare import tensorflow", "launch → first Prediction in the browser", "launch → the server answers",
            f"launch → first Prediction, before ({bench.BEFORE})"} <= measures
    memory = [row for row in rows if row["part"] == "4. server memory"]
    assert [row["measure"] for row in memory] == ["after drawing on Draw", "after drawing on Compare",
                                                  "after drawing on Inside", "after opening Class", "after opening Zoo"]
    assert all(row["p50"] > 0 and row["baseline"] > 0 and row["met"] in (True, False) for row in memory)
    classroom = [row for row in rows if row["part"].startswith("5.")]
    assert {row["measure"] for row in classroom} >= {"server's own share per run", "errors"}
