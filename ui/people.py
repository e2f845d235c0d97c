"""Who is using the app: the teacher's sign-in, the learner's id and name, their jobs, their class."""

from __future__ import annotations

import re
import secrets
import sys
from functools import cache

import sqlalchemy as sa
import streamlit as st

from model_zoo import class_digits, db, teacher


def is_teacher() -> bool:
    """Signed in with the teacher's password (this browser session only)."""
    return bool(st.session_state.get("teacher"))


def announce_teacher_password() -> None:
    """Print a password made at the first start in the server's log, once, as Jupyter prints its token."""
    try:
        _announce_teacher_password(db.url().render_as_string(hide_password=False))
    except (db.DatabaseError, sa.exc.OperationalError):  # the pages say what is wrong with the database
        pass


@cache  # once per server process and database; the database makes the password once for good
def _announce_teacher_password(_database: str) -> None:
    password = teacher.first_start()
    if password is not None:
        print(
            f"\n  Teacher password: {password}\n  (made for this database at its first start; "
            "sign in from the sidebar. A new one: python -m scripts.teacher_password)\n",
            file=sys.stderr,
            flush=True,
        )


def teacher_sign_in() -> None:
    """A password field for what only a teacher does."""
    announce_teacher_password()
    with st.expander("Teacher", icon=":material/school:"):
        if is_teacher():
            st.caption("Signed in: you can stop, save or discard any learner's job and delete any version.")
            st.button("Sign out", key="teacher_sign_out", on_click=st.session_state.pop, args=("teacher", None))
            return
        entered = st.text_input(
            "Teacher password",
            type="password",
            key="teacher_password",
            help="Set by DIGIT_ZOO_TEACHER_PASSWORD, or printed in the server's log "
            "at its first start (README: The teacher).",
        )
        if entered:
            try:
                right = teacher.check(entered)
            except db.DatabaseError as error:
                st.error(f"The teacher's password cannot be checked: {error}", icon=":material/database:")
                return
            if right:
                st.session_state.teacher = True
                st.rerun()
            st.error("That is not the teacher password.")


def remember_job_key(key: str) -> None:
    """Keep a job's secret for the session: it also lets the learner delete the version saved from it."""
    keys = st.session_state.setdefault("job_keys", [])
    if key not in keys:
        keys.append(key)


def job_keys() -> list[str]:
    """The secrets of the jobs this session started (or reopened from a link)."""
    return st.session_state.get("job_keys", [])


LEARNER_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # as secrets.token_urlsafe makes them


def learner_key() -> str:
    """This learner's id, a random secret: their digits and their one job go with it.

    Kept in the session, and in the Train page's link (``?learner=``, as the
    job's key is), so a reload there is the same learner; a new browser, or a
    link without it, is a new one.
    """
    if "learner_key" not in st.session_state:
        given = st.query_params.get("learner", "")
        st.session_state.learner_key = given if LEARNER_ID.match(given) else secrets.token_urlsafe(16)
    return st.session_state.learner_key


def learner_name() -> str:
    return st.session_state.get("learner_name", "").strip() or class_digits.ANONYMOUS


def class_picker(key: str) -> str:
    """The class the session's digits go to: "my class", or one the teacher named (shared by pages)."""
    try:
        names = class_digits.classes()
    except db.DatabaseError as error:
        st.error(f"The class's digits cannot be read: {error}", icon=":material/database:")
        st.stop()
    if st.session_state.get("class_name") not in names:
        st.session_state.class_name = class_digits.DEFAULT_CLASS
    if len(names) > 1:
        # The widget's own state goes with its page and would lag a class named meanwhile: class_name leads.
        st.session_state[key] = st.session_state.class_name
        st.selectbox("Class", names, key=key, on_change=_remember_class, args=(key,))
    return st.session_state.class_name


def _remember_class(widget: str) -> None:
    st.session_state.class_name = st.session_state[widget]
