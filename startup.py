"""What the web server sets up once per process, before or under the first script run.

A lesson starts with a whole class opening a freshly started server at the same
moment, so the first runs of thirty sessions start together, each in its own
thread. Whatever a page needs once per process is done here, by the first run,
under one lock; the other runs wait for it rather than race it.

NumPy's BLAS gets one thread through ``OPENBLAS_NUM_THREADS``, which OpenBLAS
reads when it loads, so app.py calls ``limit_blas_threads`` before anything
imports NumPy (Streamlit itself does not before the first run). threadpoolctl
cannot be used in the server: its scan of the loaded libraries holds the dynamic
loader's lock while it calls back into Python, so a scan in one session's thread
and an extension-module import in another (which holds the GIL while it loads
the library) wait for each other forever (docs/facts.md).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading

LOG = logging.getLogger(__name__)
BLAS_THREADS_VARIABLE = "OPENBLAS_NUM_THREADS"

_lock = threading.Lock()
_prepared = False


def limit_blas_threads() -> None:
    """NumPy's matrix products on one thread: a stroke's products are small.

    OpenBLAS's thread per core spins more than it helps, doubling the CPU a
    stroke costs on a 2-core server that also trains (docs/facts.md). A value
    the operator set is kept.
    """
    if BLAS_THREADS_VARIABLE in os.environ:  # the operator's, or ours from the process's first run
        return
    os.environ[BLAS_THREADS_VARIABLE] = "1"
    if "numpy" in sys.modules:  # too late: OpenBLAS read its threads when NumPy loaded
        LOG.warning(
            "NumPy was imported before app.py limited its BLAS threads: set %s=1 in the server's environment",
            BLAS_THREADS_VARIABLE,
        )


def prepare_process() -> None:
    """Once per process, whichever session's run gets here first; the others wait until it is done."""
    global _prepared
    with _lock:
        if _prepared:
            return
        # `kill -USR1 <server pid>` writes every thread's stack to the server's log: a hung
        # server can say where it hangs. faulthandler needs no GIL to do it.
        if hasattr(signal, "SIGUSR1"):
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        import run_timings
        from model_zoo import housekeeping
        from ui import runtime

        runtime.keep_keras_between_runs()
        for path in housekeeping.remove_leftovers():
            LOG.info("Removed %s, left by a process that was killed", path)
        run_timings.record_if_asked()  # for scripts.benchmarks.bench --browser
        _prepared = True
