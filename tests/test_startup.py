"""The web server's once-per-process set-up, each check in a fresh Python process (NumPy not yet loaded)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"} | env
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


BLAS_THREADS = """
import startup
startup.limit_blas_threads()
import numpy
from threadpoolctl import threadpool_info  # here, with one thread: nothing else can load a library
print("threads", sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}))
"""


def test_numpy_gets_one_blas_thread_without_a_scan_of_the_loaded_libraries():
    assert "threads [1]" in run_python(BLAS_THREADS)


def test_an_operators_blas_setting_is_kept():
    assert "threads [2]" in run_python(BLAS_THREADS, OPENBLAS_NUM_THREADS="2")


def test_a_server_that_loaded_numpy_too_early_says_how_to_limit_its_threads():
    output = run_python("import numpy, logging; logging.basicConfig(); import startup; startup.limit_blas_threads()")
    assert "set OPENBLAS_NUM_THREADS=1 in the server's environment" in output


def test_every_later_run_of_app_py_is_silent():
    # app.py calls it at the top of every script run; NumPy is loaded from the first run on.
    code = "import logging; logging.basicConfig(); import startup; startup.limit_blas_threads(); import numpy; "
    output = run_python(code + "startup.limit_blas_threads(); startup.limit_blas_threads()")
    assert "NumPy was imported" not in output


def test_thirty_first_runs_at_once_prepare_the_process_once():
    # Each first run calls prepare_process; its work (here: clearing a killed job's scratch) runs once.
    output = run_python("""
import logging, os, tempfile, threading, time
from pathlib import Path
logging.basicConfig(level=logging.INFO)
import startup
from model_zoo import config, data, housekeeping
calls = []
remove_leftovers = housekeeping.remove_leftovers
housekeeping.remove_leftovers = lambda: calls.append(1) or remove_leftovers()
leftover = Path(tempfile.mkdtemp(prefix=config.SCRATCH_PREFIX + "crowd-test-"))
(leftover / "weights.h5").write_bytes(b"half a model")
os.utime(leftover, (time.time() - 3 * 86400,) * 2)  # from a process killed days ago
start = threading.Barrier(30)
def first_run():
    start.wait()
    startup.prepare_process()
threads = [threading.Thread(target=first_run) for _ in range(30)]
[t.start() for t in threads]
[t.join() for t in threads]
print("left", leftover.exists(), "calls", len(calls))
""")
    assert "left False calls 1" in output
    assert output.count("crowd-test-") == 1  # one "Removed …, left by a process that was killed"
