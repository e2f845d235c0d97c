"""The server's own time per script run, for the benchmark: off unless DIGIT_ZOO_TIMINGS names a file.

    DIGIT_ZOO_TIMINGS=/tmp/runs.jsonl streamlit run app.py

Appends one JSON line per finished run: when the browser's rerun request
(a canvas update, a click) reached the server, when the run's first message
was queued (the script started), and when its last one was (the script
finished), all as `time.time()`, with the page's URL path (a fragment's run:
its page's), the server process's CPU seconds meanwhile (every thread's: a
run's own when it ran alone), whether it was a fragment's run, the server's
resident memory then, and which of TensorFlow and Keras were imported by then.
``python -m scripts.benchmarks.bench --browser`` reads the file to split stroke
→ answer into the browser's share and the server's and to weigh the server;
``bench_class`` to weigh a tab's run against the load client's; the browser
tests to check that pages leave TensorFlow alone.

Streamlit has no public hook for this: two private `AppSession` methods are
wrapped, and a Streamlit that moved them is logged, not fatal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time

VARIABLE = "DIGIT_ZOO_TIMINGS"
WATCHED = {"tensorflow", "keras"}  # what the web server should never need to import
LOG = logging.getLogger(__name__)


def record_if_asked() -> None:
    path = os.environ.get(VARIABLE)
    if not path:
        return
    from streamlit.runtime.app_session import AppSession

    if not all(hasattr(AppSession, name) for name in ("handle_backmsg", "_enqueue_forward_msg")):
        LOG.warning("streamlit moved AppSession's message handlers: no run timings in %s", path)
        return
    pending: dict[str, dict] = {}  # session id → the run under way
    pages: dict[str, str] = {}  # session id → its page: a fragment's run sends no navigation message
    lock = threading.Lock()  # lines from several sessions' threads, one file
    handle_backmsg, enqueue = AppSession.handle_backmsg, AppSession._enqueue_forward_msg

    def timed_handle_backmsg(session, msg):
        if msg.WhichOneof("type") == "rerun_script":
            pending[session.id] = {
                "session": session.id,
                "fragment": bool(msg.rerun_script.fragment_id),
                "received": time.time(),
                "page": pages.get(session.id, ""),
                "cpu": time.process_time(),
            }
        return handle_backmsg(session, msg)

    def timed_enqueue(session, msg):
        kind = msg.WhichOneof("type")
        run = pending.get(session.id)
        if run is not None and kind == "new_session":
            run.setdefault("started", time.time())
        elif kind == "navigation":  # st.navigation says which page runs (also in the run that installed this)
            running = msg.navigation.page_script_hash
            pages[session.id] = next(
                (page.url_pathname for page in msg.navigation.app_pages if page.page_script_hash == running), ""
            )
            if run is not None:
                run["page"] = pages[session.id]
        elif run is not None and kind == "script_finished":
            run["finished"] = time.time()
            run["cpu"] = time.process_time() - run["cpu"]
            run["rss_bytes"] = resident_bytes()
            run["imported"] = sorted(WATCHED & sys.modules.keys())
            del pending[session.id]
            with lock, open(path, "a") as log:
                log.write(json.dumps(run) + "\n")
        return enqueue(session, msg)

    AppSession.handle_backmsg = timed_handle_backmsg
    AppSession._enqueue_forward_msg = timed_enqueue


def resident_bytes() -> int:
    """This process's resident memory now (Linux's /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
