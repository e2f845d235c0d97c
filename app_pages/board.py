"""Board: the class on the projector. How to join, who is drawing, what the class keeps, its jobs."""

from __future__ import annotations

import streamlit as st

from model_zoo import class_digits, db
from ui import board_panels

REFRESH_SECONDS = 2


# Two fragments, one per column: a fragment draws only into its own container.
@st.fragment(run_every=REFRESH_SECONDS)
def live_class(class_name: str) -> None:
    try:
        board_panels.class_now(class_name)
        board_panels.challenge_board(class_name)
    except db.DatabaseError as error:
        board_panels.unreadable(error)


@st.fragment(run_every=REFRESH_SECONDS)
def live_jobs() -> None:
    try:
        board_panels.class_jobs()
    except db.DatabaseError as error:
        board_panels.unreadable(error)


st.html(board_panels.STYLE)
names = class_digits.classes()
wanted = st.query_params.get("class", class_digits.DEFAULT_CLASS)
class_name = wanted if wanted in names else class_digits.DEFAULT_CLASS
join, now = st.columns([2, 3], gap="large")
with join:
    with st.container(key="board_join"):
        board_panels.join_panel()
    live_jobs()
with now:
    live_class(class_name)
if len(names) > 1:
    st.selectbox(
        "Class on the board",
        names,
        index=names.index(class_name),
        key="board_class",
        on_change=lambda: st.query_params.update({"class": st.session_state.board_class}),
    )
