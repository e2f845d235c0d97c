"""Who is drawing right now, for the board: tabs that sent a drawing lately, in this server process.

Process memory, not the database: a presence count is worth nothing a minute
later, and a tab that stops drawing simply ages out.
"""

from __future__ import annotations

import secrets
import threading
import time

import streamlit as st

WINDOW_SECONDS = 60  # "drawing now" means a drawing read within the last minute
_seen: dict[str, float] = {}  # tab's random id → when it last sent a drawing (monotonic)
_lock = threading.Lock()


def drawing() -> None:
    """Called when a page has read this tab's drawing."""
    tab = st.session_state.setdefault("presence_tab", secrets.token_hex(8))
    with _lock:
        _seen[tab] = time.monotonic()


def learners_drawing(seconds: float = WINDOW_SECONDS) -> int:
    now = time.monotonic()
    with _lock:
        for tab in [tab for tab, at in _seen.items() if now - at > seconds]:
            del _seen[tab]  # bounded by the tabs of the last minute
        return len(_seen)
