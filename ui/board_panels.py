"""The Board's panels, in type read from the back of a room: how to join, the class now, its jobs, the challenge."""

from __future__ import annotations

import base64
import html
import io
import os
from datetime import datetime, timedelta, timezone

import numpy as np
import segno
import streamlit as st
from PIL import Image
from streamlit import net_util

import presence
from model_zoo import challenge, class_digits, db, jobs
from ui import models

ADDRESS_VARIABLE = "DIGIT_ZOO_PUBLIC_URL"  # the address learners open, when the server is behind a name
RECENT_MINUTES = 10  # "kept lately"
THUMBNAILS = 8
LEADERS = 8  # rows of the leaderboard, the shipped models' lines among them
MISREADINGS = 4
LOOPBACK = ("127.0.0.1", "localhost", "::1")

# Read from the back of a room: 1920 × 1080, nothing under ~24 px; no sidebar, no header.
STYLE = """<style>
section[data-testid="stSidebar"], header[data-testid="stHeader"] {display: none}
.stMainBlockContainer {max-width: 100%; padding: 1.5rem 3rem}
.board, .board p, .board li, .board td {font-size: 28px; line-height: 1.3}
.board h1 {font-size: 56px; margin: 0} .board h2 {font-size: 36px; margin: 0.6rem 0 0.3rem}
.board .address {font-size: 40px; font-weight: 700; word-break: break-all}
.board .big {font-size: 96px; font-weight: 700; line-height: 1}
.board table {border-collapse: collapse; width: 100%}
.board td {padding: 0.15rem 0.6rem; border-bottom: 1px solid #ddd}
.board .counts td {text-align: center; font-size: 40px}
.board .bar {background: #9bb3c9; height: 18px; display: inline-block}
.tiles {display: flex; flex-wrap: wrap; gap: 12px}
.tiles figure {margin: 0; text-align: center; font-size: 26px; max-width: 200px}
.tiles img {width: 112px; height: 112px; image-rendering: pixelated; border-radius: 6px}
</style>"""


def join_address() -> tuple[str, str | None]:
    """The address learners open (as Streamlit's "Network URL"), and a warning when they cannot reach it."""
    if configured := os.environ.get(ADDRESS_VARIABLE, "").strip():
        return configured.rstrip("/"), None
    port = st.get_option("server.port")
    if st.get_option("server.address") in LOOPBACK:
        return f"http://127.0.0.1:{port}", (
            "This server listens on this computer only: learners cannot reach it. Start it with `make run`, "
            f"or set {ADDRESS_VARIABLE} to the address learners open."
        )
    ip = net_util.get_internal_ip()
    if ip is None:
        return f"http://localhost:{port}", (
            f"This computer's network address was not found: set {ADDRESS_VARIABLE} to the address learners open."
        )
    return f"http://{ip}:{port}", None


@st.cache_data(max_entries=8, show_spinner=False)
def qr_png(text: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=12, border=2)
    return buffer.getvalue()


def block(markup: str) -> None:
    st.markdown(f'<div class="board">{markup}</div>', unsafe_allow_html=True)


def join_panel() -> None:
    address, warning = join_address()
    target = f"{address}/draw"
    block(
        "<h1>Join the class</h1><p>Scan the code, or open</p>"
        f'<p class="address" data-testid="join-address">{html.escape(target)}</p>'
    )
    st.image(qr_png(target), width=360)
    if warning:
        st.warning(warning, icon=":material/wifi_off:")


def tiles(images_and_captions: list[tuple[np.ndarray, str]]) -> str:
    """Digits enlarged 4 × (sharp pixels), each with its caption in the board's type."""
    figures = []
    for image, caption in images_and_captions:
        buffer = io.BytesIO()
        Image.fromarray(np.kron(image, np.ones((4, 4), np.uint8))).save(buffer, format="PNG")
        figures.append(
            f'<figure><img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    return f'<div class="tiles">{"".join(figures)}</div>'


def class_now(class_name: str) -> None:
    digits = class_digits.digits(class_name)
    since = (datetime.now(timezone.utc) - timedelta(minutes=RECENT_MINUTES)).isoformat(timespec="microseconds")
    recent = [digit for digit in digits if digit.created >= since]
    counts = np.bincount([digit.label for digit in digits], minlength=10)
    block(
        f'<h2>Drawing now</h2><p><span class="big" data-testid="drawing-now">{presence.learners_drawing()}'
        f"</span> learners · {len(digits)} digits kept in {html.escape(class_name)}, "
        f"{len(recent)} in the last {RECENT_MINUTES} minutes</p>"
        '<table class="counts"><tr>'
        + "".join(f"<td><b>{d}</b></td>" for d in range(10))
        + "</tr><tr>"
        + "".join(f"<td>{n}</td>" for n in counts)
        + "</tr></table>"
    )
    if recent:
        st.html(tiles([(digit.image, f"<b>{digit.label}</b>") for digit in recent[-THUMBNAILS:][::-1]]))
    misread = [
        (digit, model, read)
        for digit in reversed(recent)
        for model, (read, _) in list(digit.readings.items())[:1]
        if read != digit.label
    ][:MISREADINGS]
    if misread:
        block("<h2>Misread just now</h2>")
        st.html(
            tiles(
                [
                    (digit.image, f"{html.escape(model)} read this {digit.label} as a <b>{read}</b>")
                    for digit, model, read in misread
                ]
            )
        )


def job_line(view: jobs.JobView) -> str:
    who = f"{html.escape(view.owner)} · {html.escape(view.settings.arch)}"
    if view.state is jobs.JobState.RUNNING and view.epochs:
        done = (view.epoch + view.step / max(view.steps_per_epoch, 1)) / view.epochs
        what = f'<span class="bar" style="width:{done * 200:.0f}px"></span> {done:.0%}'
    elif view.state is jobs.JobState.QUEUED:
        what = f"waiting, number {view.position} in the queue"
    elif view.state is jobs.JobState.SAVED:
        what = f"saved as <b>{html.escape(view.saved_name)}</b>" + (
            f", {view.test_accuracy:.1%} on MNIST" if view.test_accuracy is not None else ""
        )
    else:
        what = html.escape(view.state.value)
    return f"<tr><td>{who}</td><td>{what}</td></tr>"


def class_jobs() -> None:
    shown = [view for view in jobs.views() if view.active or view.state is jobs.JobState.SAVED]
    block(
        "<h2>Training</h2>"
        + (
            f'<table data-testid="jobs">{"".join(job_line(view) for view in shown)}</table>'
            if shown
            else "<p>No jobs yet: start one on the Train page.</p>"
        )
    )


def challenge_board(class_name: str) -> None:
    """The challenge's leaderboard; once ended, the held-out digits, marked where every model failed."""
    current = challenge.current(class_name)
    if current is None:
        return
    (_, _), (x, y) = class_digits.split_arrays(class_name)
    listing = models.zoo(mention_unusable=False)
    loaded = models.fast_models(listing)
    rows = challenge.leaderboard(listing.entries, loaded, x, y, current)
    lines, rank = [], 0
    for row in rows[:LEADERS]:
        rank += not row.reference
        place = "shipped" if row.reference else f"<b>{rank}</b>"
        style = ' style="color: #777"' if row.reference else ""
        lines.append(
            f"<tr{style}><td>{place}</td><td>{html.escape(row.name)}</td>"
            f"<td><b>{row.score:.1%}</b></td><td>MNIST {row.mnist:.2%}</td></tr>"
        )
    state = "running" if current.running else "ended"
    block(
        f"<h2>Challenge ({state}): who reads our handwriting best</h2>"
        f"<p>Scored on {len(x)} held-out digit{'s' * (len(x) != 1)} of {html.escape(class_name)}"
        + (", hidden until the teacher ends it" if current.running else "")
        + "</p>"
        f'<table data-testid="leaderboard">{"".join(lines)}</table>'
    )
    if not current.running and len(x):
        hardest = set(challenge.unbeaten({row.name: loaded[row.name] for row in rows}, x, y))
        block(f"<h2>The held-out digits: {len(hardest)} beat every model</h2>")
        st.html(
            tiles(
                [
                    (image, f"<b>{label}</b>" + (" beat them all" if i in hardest else ""))
                    for i, (image, label) in enumerate(zip(x, y))
                ]
            )
        )


def unreadable(error: db.DatabaseError) -> None:
    st.error(f"The class's digits and jobs cannot be read: {error}", icon=":material/database:")
