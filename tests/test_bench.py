"""scripts.benchmarks.bench runs end to end in its quick mode, so it cannot rot. No timing is asserted: load varies."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.benchmarks import bench, bench_browser
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
    assert {
        "mlp_1x50, 1 epochs: digits/s, ours",
        "mlp_1x50, 1 epochs: test accuracy, ours",
        "mlp_1x50, 1 epochs: achieved GFLOP/s, ours",
    } <= set(measures)
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
    done = subprocess.run(
        [sys.executable, "-m", "scripts.benchmarks.bench", "--quick", "--json", "--browser"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)["rows"]
    measures = {row["measure"] for row in rows}
    for page in ("draw", "compare"):
        assert {
            f"{page}: stroke → answer",
            f"{page}: server: received → last message",
            f"{page}: mouse-up → request received",
        } <= measures
    assert {
        "bare import tensorflow",
        "launch → first Prediction in the browser",
        "launch → the server answers",
        f"launch → first Prediction, before ({bench.BEFORE})",
    } <= measures
    memory = [row for row in rows if row["part"] == "4. server memory"]
    assert [row["measure"] for row in memory] == [
        "after drawing on Draw",
        "after drawing on Compare",
        "after drawing on Inside",
        "after opening Class",
        "after opening Zoo",
    ]
    assert all(row["p50"] > 0 and row["baseline"] > 0 and row["met"] in (True, False) for row in memory)
    classroom = [row for row in rows if row["part"].startswith("5.")]
    assert {row["measure"] for row in classroom} >= {"server's own share per run", "errors"}


def test_write_docs_replaces_only_the_measured_parts_tables():
    """--write-docs rewrites what lies between a measured part's markers, and nothing else (no benchmark run)."""
    begin_1, end_1 = bench.docs_markers("1")
    begin_3, end_3 = bench.docs_markers("3")
    old_table_3 = "| 3. training | old row |"
    text = "\n".join(
        [
            "# Performance",
            "",
            "Hand-written: why part 1 is what it is.",
            begin_1,
            "| stale | row |",
            end_1,
            "",
            "Between the parts.",
            begin_3,
            old_table_3,
            end_3,
            "What limits part 3.",
            "",
        ]
    )
    rows = [
        bench.Row("1. drawing → all models", "preprocessing (to_mnist)", 4.42, 17.6),
        bench.Row(
            "1. drawing → all models",
            "preprocessing + all 8 models",
            7.54,
            46.6,
            baseline=1455,
            baseline_name="model.predict",
            speedup=193,
            target="≤ 3 ms median, ≥ 100×",
            met=False,
        ),
    ]
    about = {
        "cpu": "Some CPU",
        "cores": 2,
        "python": "3.11.2",
        "load_average_at_start": 3.45,
        "load_average_at_end": 6.42,
    }
    written = bench.docs_with_rows(text, rows, about, "python -m scripts.benchmarks.bench")

    before_1, _, rest = written.partition(begin_1)
    inside_1, _, after_1 = rest.partition(end_1)
    assert before_1 == text.partition(begin_1)[0]
    assert after_1 == text.partition(end_1)[2]  # part 3, unmeasured, and every explanation: as they were
    assert "| stale | row |" not in inside_1
    assert (
        "Run: `python -m scripts.benchmarks.bench` on Some CPU, 2 cores, Python 3.11.2; "
        "load average 3.45 at the start, 6.42 at the end." in inside_1
    )
    assert bench.markdown(rows) in inside_1
    assert (
        "| 1. drawing → all models | preprocessing + all 8 models | 7.54 | 46.6 | ms | 1,455 (model.predict) "
        "| 193× | ≤ 3 ms median, ≥ 100× | **no** |" in inside_1
    )
    assert bench.docs_with_rows(written, rows, about, "python -m scripts.benchmarks.bench") == written  # idempotent

    part_2 = [bench.Row("2. stroke → answer, one session", "draw: stroke → answer", 351, 537)]
    with pytest.raises(ValueError, match="part 2's table has no place"):  # not silently dropped
        bench.docs_with_rows(text, part_2, about, "python -m scripts.benchmarks.bench --browser")


def test_the_docs_have_a_place_for_every_part():
    text = bench.DOCS.read_text()
    for part in "123456":
        begin, end = bench.docs_markers(part)
        assert text.count(begin) == 1 and text.count(end) == 1 and text.index(begin) < text.index(end), part
