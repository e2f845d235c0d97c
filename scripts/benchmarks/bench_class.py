"""A class of simulated learners against a fresh server, measured with Locust (scripts/benchmarks/locustfile.py).

    python -m scripts.benchmarks.bench_class                          # 1, 10, 30 and 60 learners, 60 s each
    python -m scripts.benchmarks.bench_class --learners 5 --seconds 20 --no-jobs --json

First the load client is checked against a real browser: a Chromium tab draws
on Draw, the client sends the PNG that tab's canvas made, and both must be read
as the same digit with the server spending about the same CPU on each run. Then,
for each class size, a fresh server (``scripts.benchmarks.bench_browser.start_server``,
one training slot), warmed by one tab on Draw, Compare and Inside, then Locust's
learners each drawing an MNIST test digit every 2 s out of step, first with no
job, then while a job fills the training slot (started on the Train page in
Chromium, as a learner does). Per row: the answer time as Locust saw it
(request sent → the run's ``script_finished`` read) p50 / p95 / p99, and the
server's own share of it from its log (request received → ``script_finished``
queued; the rest is the network and Locust itself, on the same cores), answers a second, errors,
dropped sessions (a tab whose page never opened or whose connection broke),
the server process's CPU in cores and its resident memory at the end.
Timings depend on the machine and its load: compare rows within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from scripts.benchmarks import bench, bench_browser
from scripts.benchmarks.bench import Row, machine, markdown, percentile
from scripts.benchmarks.streamlit_client import StreamlitSession, read_digit

ROOT = Path(__file__).resolve().parents[2]
PART = "6. a class under Locust"
PAGES = ("draw", "compare", "inside")  # the locustfile's pages
CHECK = "load client against a Chromium tab"
TARGETS = {30: "p95 ≤ 250 ms, p99 ≤ 500 ms, 0 errors", 60: "0 errors, 0 dropped"}


def locust_command(url: str, learners: int, seconds: float, stats: Path) -> list[str]:
    """Locust, headless, with ``learners`` simulated learners for ``seconds``, its tables at ``stats``_*.csv."""
    command = [sys.executable, "-m", "locust", "-f", "scripts/benchmarks/locustfile.py", "--headless"]
    command += ["--host", url, "-u", str(learners), "-r", str(learners), "-t", f"{seconds:.0f}s"]
    return command + ["--csv", str(stats), "--only-summary"]


def locust(url: str, learners: int, seconds: float, stats: Path) -> dict:
    """One Locust run: the Aggregated row of its answers and how many sessions it lost."""
    command = locust_command(url, learners, seconds, stats)
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=seconds + 120)
    with open(f"{stats}_stats.csv") as table:
        rows = list(csv.DictReader(table))
    answers = next(row for row in rows if row["Name"] == "Aggregated")
    opened = [row for row in rows if row["Name"].startswith("open ")]
    answers_only = [row for row in rows if row["Name"] != "Aggregated" and not row["Name"].startswith("open ")]
    dropped = sum(int(row["Failure Count"]) for row in opened)
    with open(f"{stats}_failures.csv") as table:
        dropped += sum(
            int(row["Occurrences"])
            for row in csv.DictReader(table)
            if "onnection" in row["Error"] and not row["Name"].startswith("open ")
        )
    count = sum(int(row["Request Count"]) for row in answers_only)
    weighted = {
        q: sum(float(row[q]) * int(row["Request Count"]) for row in answers_only) / max(count, 1)
        for q in ("50%", "95%", "99%")
    }  # answers' percentiles, page by page, weighted by count
    return {
        "p50": weighted["50%"],
        "p95": weighted["95%"],
        "p99": weighted["99%"],
        "per_second": count / seconds,
        "errors": int(answers["Failure Count"]),
        "dropped": dropped,
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass
class Checked:
    """The same drawings from a Chromium tab and from the load client, on one server."""

    browser_digits: list[str]  # what the tab showed, drawing by drawing
    client_digits: list[str | None]  # what the client read from the PNG the tab's canvas made
    browser_runs: list[dict]  # the server's log of each tab's run (run_timings)
    client_runs: list[dict]  # and of each of the client's


async def against_chromium(server: bench_browser.Server, drawings: int) -> Checked:
    """Draw in a Chromium tab on Draw (cnn), then send the canvas's own PNG from the load client.

    The client must read the digit the tab shows, and the server must spend about the
    same CPU on its run: the client stands in for a tab only if it asks the same work.
    """
    from playwright.async_api import async_playwright

    checked = Checked([], [], [], [])
    drawn = []  # (mouse-up, answer seen) of each of the tab's drawings
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=bench_browser.CHROMIUM, args=bench_browser.CHROMIUM_FLAGS
        )
        session = await bench_browser.open_session(browser, server.url, "draw")
        with StreamlitSession(server.url, timeout=180) as client:
            client.open("draw", query="model=cnn")
            for path in bench_browser.one_stroke_drawings(drawings):
                await bench_browser.draw(session, path)
                drawn.append((session.drawings[-1].released, session.drawings[-1].seen))
                checked.browser_digits.append(await session.tab.get_by_test_id("stMetricValue").first.inner_text())
                url = await session.tab.locator("canvas.dc-canvas.lower-canvas").first.evaluate(
                    "c => c.toDataURL('image/png')"
                )
                sent = time.time()
                run = client.draw(base64.b64decode(url.split(",", 1)[1]))
                checked.client_digits.append(read_digit(run, "draw"))
                drawn.append((sent, time.time()))
        await browser.close()
    runs = server.runs("draw")
    for i, (since, until) in enumerate(drawn):  # the tab's and the client's in turn
        logged = next(run for run in runs if since <= run["received"] <= until)
        (checked.client_runs if i % 2 else checked.browser_runs).append(logged)
    return checked


def chromium_rows(checked: Checked) -> list[Row]:
    same = sum(b == c for b, c in zip(checked.browser_digits, checked.client_digits))
    rows = [
        Row(
            PART,
            f"{CHECK}: the same digit read",
            same,
            unit=f"of {len(checked.browser_digits)}",
            target="all",
            met=same == len(checked.browser_digits),
        )
    ]
    # CPU is the run's own work; its wall time also waits for the cores, which a tab's run
    # shares with Chromium drawing the answer.
    for measure, value, target in (("CPU", "cpu", "within ~20 %"), ("time", None, "")):
        tab, client = (
            percentile([run[value] if value else run["finished"] - run["received"] for run in runs], 50) * 1000
            for runs in (checked.browser_runs, checked.client_runs)
        )
        rows.append(
            Row(
                PART,
                f"{CHECK}: the server's {measure} per run",
                client,
                baseline=tab,
                baseline_name="the tab's",
                speedup=tab / client,
                target=target,
                met=abs(client / tab - 1) <= 0.2 if target else None,
                note=f"medians of {len(checked.browser_runs)} runs each",
            )
        )
    return rows


def check_rows(drawings: int) -> list[Row]:
    """``against_chromium`` on a fresh server of its own, warmed as the classes' are."""
    with tempfile.TemporaryDirectory(prefix="digit_zoo_bench_check_") as scratch:
        server = bench_browser.start_server(Path(scratch))
        try:
            with StreamlitSession(server.url, timeout=180) as warm_up:
                warm_up.open("draw", query="model=cnn")
            return chromium_rows(asyncio.run(against_chromium(server, drawings)))
        finally:
            bench_browser.stop_server(server.process)


async def fill_the_training_slot(url: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=bench_browser.CHROMIUM, args=bench_browser.CHROMIUM_FLAGS
        )
        await bench_browser.start_training(browser, url)
        await browser.close()


def class_rows(sizes: list[int], seconds: float, with_jobs: bool) -> list[Row]:
    rows = []
    for training in (False, True) if with_jobs else (False,):
        for learners in sizes:
            with tempfile.TemporaryDirectory(prefix="digit_zoo_bench_class_") as scratch:
                server = bench_browser.start_server(Path(scratch))
                try:
                    with StreamlitSession(server.url, timeout=180) as warm_up:
                        for page in ("draw", "compare", "inside"):
                            warm_up.open(page)
                    if training:
                        asyncio.run(fill_the_training_slot(server.url))
                    cpu, started, since = cpu_seconds(server.process.pid), time.monotonic(), time.time()
                    measured = locust(server.url, learners, seconds, Path(scratch) / "load")
                    cores = (cpu_seconds(server.process.pid) - cpu) / (time.monotonic() - started)
                    own = [1000 * s for s in bench_browser.server_share(server, PAGES, since, time.time())]
                    memory = bench_browser.resident_bytes(server.process.pid) / 2**20
                finally:
                    bench_browser.stop_server(server.process)
            condition = f"{learners} learners, {'a job training' if training else 'no job'}"
            target = TARGETS.get(learners, "") if training or learners != 30 else ""
            answer_target = target if target.startswith("p95") else ""
            errors_target = target if target and not answer_target else ""
            rows += [
                Row(
                    PART,
                    f"{condition}: answer",
                    measured["p50"],
                    measured["p95"],
                    p99=measured["p99"],
                    target=answer_target,
                    met=measured["p95"] <= 250 and measured["p99"] <= 500 and not measured["errors"]
                    if answer_target
                    else None,
                ),
                Row(
                    PART,
                    f"{condition}: the server's own share",
                    percentile(own, 50),
                    percentile(own, 95),
                    p99=percentile(own, 99),
                ),
                Row(PART, f"{condition}: answers per second", measured["per_second"], unit="/s"),
                Row(
                    PART,
                    f"{condition}: errors",
                    measured["errors"],
                    unit="errors",
                    target=errors_target,
                    met=not measured["errors"] and not measured["dropped"] if errors_target else None,
                ),
                Row(PART, f"{condition}: dropped sessions", measured["dropped"], unit="sessions"),
                Row(PART, f"{condition}: server CPU", cores, unit="cores"),
                Row(PART, f"{condition}: server memory", memory, unit="MB"),
            ]
    return rows


def class_table(rows: list[Row]) -> str:
    """Part 6 as docs/performance.md shows it: a line per class and job, then the check against Chromium."""
    classes: dict[str, dict[str, Row]] = {}
    checks = []
    for row in rows:
        condition, _, measure = row.measure.partition(": ")
        if condition == CHECK:
            checks.append(row)
        else:
            classes.setdefault(condition, {})[measure] = row
    lines = [
        "| learners | job | answer p50 / p95 / p99 | server's own share p50 / p95 / p99 | answers/s "
        "| errors / dropped | server CPU | server memory | target |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for condition, measured in classes.items():
        learners, job = condition.split(" learners, ")
        answer, own, errors = (measured[m] for m in ("answer", "the server's own share", "errors"))
        judged = answer if answer.target else errors
        target = f"{judged.target}: {'yes' if judged.met else '**no**'}" if judged.target else ""
        lines.append(
            f"| {learners} | {job} | {_times(answer)} | {_times(own)} | {measured['answers per second'].p50:.1f} "
            f"| {errors.p50:.0f} / {measured['dropped sessions'].p50:.0f} | {measured['server CPU'].p50:.2f} cores "
            f"| {measured['server memory'].p50:,.0f} MB | {target} |"
        )
    return "\n".join(lines) + ("\n\n" + markdown(checks) if checks else "")


def _times(row: Row) -> str:
    return " / ".join(f"{value:,.0f}" for value in (row.p50, row.p95, row.p99)) + " ms"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", default="1,10,30,60", help="class sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=60, help="how long each class draws")
    parser.add_argument("--no-jobs", action="store_true", help="only the rows with no job training")
    parser.add_argument(
        "--check-drawings", type=int, default=10, help="drawings for the client against Chromium (0: none)"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--write-docs", action="store_true", help=f"also write the table into {bench.DOCS.name}")
    args = parser.parse_args(argv)
    about = machine()
    rows = check_rows(args.check_drawings) if args.check_drawings else []
    rows += class_rows([int(n) for n in args.learners.split(",")], args.seconds, not args.no_jobs)
    about["load_average_at_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps({"machine": about, "rows": [asdict(row) for row in rows]}, indent=1))
    else:
        print(bench.run_line(about, "python -m scripts.benchmarks.bench_class") + "\n")
        print(class_table(rows))
    if args.write_docs:  # after printing, so a missing marker loses no run
        given = sys.argv[1:] if argv is None else argv
        command = " ".join(["python -m scripts.benchmarks.bench_class", *(a for a in given if a != "--write-docs")])
        bench.DOCS.write_text(bench.docs_with_rows(bench.DOCS.read_text(), rows, about, command, table=class_table))
        print(f"Wrote part 6 into {bench.DOCS}", file=sys.stderr)


if __name__ == "__main__":
    main()
