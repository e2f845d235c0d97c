"""Two web processes behind nginx (`python -m scripts.serve`): a class and a real tab through it, then a clean stop.

One run of the script, on a free loopback port with a throwaway database:
both web processes train on the script's one Ray head; Locust's simulated
learners (scripts/benchmarks/locustfile.py) draw through nginx with no error
and every answer right (as in test_load.py), and their sessions land on both
processes; a Chromium tab draws a digit and gets its Prediction, every one of
its requests on one process (its sticky cookie); SIGTERM then leaves no
process of the run behind (Streamlit, nginx, Ray). No timing is asserted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from playwright.sync_api import expect

from scripts import serve
from scripts.benchmarks.streamlit_client import StreamlitSession
from tests.browser.conftest import RESULT_SECONDS, ROOT, _free_port, draw_and_wait, open_app
from tests.browser.locust_class import assert_each_read_as_offline, run_a_class
from tests.browser.strokes import Sample
from tests.conftest import missing_service

PROCESSES = 2
# Each new session goes to a process at random: all ten learners and the tab on one of
# two processes would happen once in 1024 runs.
LEARNERS = 10
SECONDS = 20
MODEL = "cnn"
READY_SECONDS = serve.START_SECONDS + 60
STOP_SECONDS = serve.STOP_SECONDS + 30
# A line of nginx's access log (scripts/serve.py): … "request" status time upstream sticky-key
ACCESS_LINE = re.compile(r'"(?P<request>[^"]*)" (?P<status>\d+) \S+ (?P<upstream>.+) (?P<key>\S+)$')


def test_two_web_processes_behind_nginx_serve_a_class_and_a_tab_and_stop_clean(page, mnist, tmp_path):
    if serve.find_nginx() is None:
        missing_service("nginx is not installed: apt-get install nginx (make install-test does)")
    (_, _), (x_test, _) = mnist
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "DIGIT_ZOO_DATABASE_URL": f"sqlite:///{tmp_path / 'digit_zoo.db'}",
        "DIGIT_ZOO_TRAINING_SLOTS": "1",
        serve.PROCESSES_VARIABLE: str(PROCESSES),
    }
    env.pop("RAY_ADDRESS", None)  # the script starts the Ray head
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "scripts.serve", "--server.address", "127.0.0.1", "--server.port", str(port)]
    with open(log, "wb") as output:
        script = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        run_dir = _wait_until_serving(script, log)
        web_ports = re.findall(r"server 127\.0\.0\.1:(\d+);", (run_dir / "nginx.conf").read_text())
        assert len(web_ports) == PROCESSES
        for web_port in web_ports:  # each process's cold start is not the class's load; Train connects to Ray
            with StreamlitSession(f"http://127.0.0.1:{web_port}", timeout=120) as warm_up:
                for name in ("draw", "compare", "inside", "train"):
                    warm_up.open(name, query=f"model={MODEL}")

        _check_a_class_under_locust(url, x_test, tmp_path)

        open_app(page, url, f"draw?model={MODEL}")
        draw_and_wait(page, Sample("3").points(), f"{MODEL} read your drawing (")
        prediction = page.get_by_test_id("stMetric").filter(has_text="Prediction").get_by_test_id("stMetricValue")
        expect(prediction).to_have_text("3", timeout=RESULT_SECONDS * 1000)
        tab = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "digit_zoo_web")
        page.close()  # nginx logs a websocket when it closes

        requests = _requests_once_logged(run_dir / "access.log", tab)
        sessions = [
            r["upstream"] for r in requests if r["request"].startswith("GET /_stcore/stream") and r["status"] == "101"
        ]
        assert {upstream.rpartition(":")[2] for upstream in sessions} == set(web_ports), sessions
        tab_requests = [r for r in requests if r["key"] == tab]
        assert len({r["upstream"] for r in tab_requests}) == 1, tab_requests  # the page, its websocket, its media

        run = _processes_of(script.pid, run_dir)
        commands = list(run.values())
        assert sum("gcs_server" in command for command in commands) == 1, commands  # one Ray instance
        assert sum("nginx: master" in command for command in commands) == 1, commands
        web_pids = [pid for (pid, _), command in run.items() if "streamlit run" in command]
        assert len(web_pids) == PROCESSES, commands
        drivers = "\n".join(path.name for path in run_dir.glob("ray/session_latest/logs/python-core-driver-*"))
        assert all(re.search(rf"_{pid}\.log$", drivers, re.M) for pid in web_pids), drivers  # both on that one
    finally:
        script.send_signal(signal.SIGTERM)
        try:
            stopped = script.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            stopped = f"still running after {STOP_SECONDS} s"
            script.kill()
        try:
            os.killpg(script.pid, signal.SIGKILL)  # whatever it left behind in its session
        except ProcessLookupError:
            pass
    assert stopped == 0, log.read_text()[-3000:]
    now = _process_table()
    left = [command for (pid, started), command in run.items() if pid in now and now[pid][1] == started]
    assert left == [] and _processes_of(None, run_dir) == {}, left
    assert not run_dir.exists()


def _wait_until_serving(script: subprocess.Popen, log: Path) -> Path:
    """The script's run folder, once it has printed where to open the app."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if script.poll() is not None:
            raise AssertionError(f"scripts.serve exited with {script.returncode}:\n{log.read_text()[-3000:]}")
        if found := re.search(r"Logs: (\S+)", log.read_text(errors="replace")):
            return Path(found.group(1))
        time.sleep(0.5)  # polling a script that is starting; nothing to wait on instead
    raise AssertionError(f"scripts.serve not serving after {READY_SECONDS} s:\n{log.read_text()[-3000:]}")


def _requests_once_logged(access_log: Path, tab: str) -> list[dict]:
    """nginx's access log as dicts, once it holds the tab's websocket."""
    deadline = time.monotonic() + RESULT_SECONDS
    while True:
        lines = access_log.read_text().splitlines()
        requests = [found.groupdict() for line in lines if (found := ACCESS_LINE.search(line))]
        if any(r["key"] == tab and "/_stcore/stream" in r["request"] for r in requests):
            return requests
        assert time.monotonic() < deadline, f"the tab's websocket is not in {access_log}"
        time.sleep(0.2)  # nginx writes the line when the websocket closes


def _check_a_class_under_locust(url: str, x_test: np.ndarray, tmp_path: Path) -> None:
    """test_load.py's checks through nginx: no failure, and each answer the cnn's offline reading."""
    lines = run_a_class(url, LEARNERS, SECONDS, MODEL, tmp_path)
    assert len(lines) >= LEARNERS * 3  # a stroke every 2 s each, for ~20 s
    assert_each_read_as_offline(lines, MODEL, x_test)


def _process_table() -> dict[int, tuple[int, int, str]]:
    """Every live process: pid → (parent's pid, start time in clock ticks, command line)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        state, parent, *rest = stat[stat.rindex(")") + 2 :].split()  # the fields after "pid (name) "
        if state != "Z":
            table[int(entry.name)] = (int(parent), int(rest[17]), command)
    return table


def _processes_of(root: int | None, run_dir: Path) -> dict[tuple[int, int], str]:
    """The processes under `root` or naming `run_dir` (Ray's, nginx's), and theirs: (pid, start) → command."""
    table = _process_table()
    found = {pid for pid, (_, _, command) in table.items() if str(run_dir) in command}
    roots = found | {root}
    while grown := {pid for pid, (parent, _, _) in table.items() if parent in roots} - roots:
        roots |= grown
    return {(pid, table[pid][1]): table[pid][2] for pid in roots - {root} if pid in table}
