"""The Train page's job monitor: the session's job (live curves, stop, save or discard), the queue, Ray's state."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from model_zoo import db, estimates, jobs, store
from model_zoo.jobs import JobState
from ui import models, people
from ui.quoting import literal

HELD_OUT_CURVES = {"class_accuracy": "class, held out", "pen_val_accuracy": "pen, validation writers"}
FAST_POLL, SLOW_POLL = 0.5, 2.0  # seconds: your job running / only other people's
RAY_POLL = 2.0  # seconds: while Ray is starting or unavailable
STATE_LABELS = {
    JobState.QUEUED: "waiting",
    JobState.RUNNING: "training",
    JobState.FINISHED: "finished",
    JobState.STOPPED: "stopped",
    JobState.FAILED: "failed",
    JobState.SAVED: "saved",
    JobState.DISCARDED: "discarded",
    JobState.LOST: "lost",
}


def owner() -> str:
    """This learner's nickname in the queue: theirs on every visit, nobody else's."""
    st.query_params["learner"] = people.learner_key()  # in the page's link: a reload is the same learner
    if "train_owner" not in st.session_state:
        st.session_state.train_owner = jobs.nickname(people.learner_key())
    return st.session_state.train_owner


def job_key() -> str | None:
    """The secret that makes this session the owner of its job: from the job's link, or kept here."""
    return st.query_params.get("key") or st.session_state.get("train_key")


def may_act(view: jobs.JobView) -> bool:
    return jobs.owns(view.id, job_key(), people.is_teacher())


def watched_job() -> jobs.JobView | None:
    """The job the Train page shows: the session's latest, or the one in ``?job=`` after a reload."""
    wanted = st.query_params.get("job") or st.session_state.get("train_job")
    view = jobs.view(wanted) if wanted else None
    if view is not None and job_key() and jobs.owns(view.id, job_key()):
        st.session_state.train_key = job_key()
        people.remember_job_key(job_key())
    if wanted and view is None:
        st.info(
            f"There is no job {literal(wanted)} in the database: check the link. "
            "Every version ever saved is still in the zoo."
        )
        st.query_params.pop("job", None)
        st.session_state.pop("train_job", None)
    if view is not None:
        st.session_state.train_job = view.id
        st.query_params["job"] = view.id
    return view


def _line(x, y, name, **style) -> go.Scatter:
    return go.Scatter(x=x, y=y, name=name, mode="lines+markers" if len(x) < 30 else "lines", **style)


def _figure(title: str, traces: list, y_title: str, x_range: list[float], whole_epochs: bool) -> go.Figure:
    """A chart whose x axis spans the whole run from the start, so the curve grows into it."""
    figure = go.Figure(traces)
    figure.update_layout(
        title=title,
        height=300,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.25),
        xaxis_title="epoch",
        yaxis_title=y_title,
    )
    figure.update_xaxes(range=x_range, dtick=1 if whole_epochs and x_range[1] <= 20 else None)
    return figure


def curves(view: jobs.JobView) -> None:
    """Per-batch loss (raw and smoothed) and per-epoch loss and accuracy, train and validation."""
    per_epoch = max(1, view.steps_per_epoch)
    x = [step / per_epoch for step in view.batch_steps]  # in epochs, so the charts line up
    batch = _figure(
        "Loss per batch",
        [
            _line(x, view.batch_loss, "batch", line=dict(color="#c6d4e8", width=1)),
            _line(x, view.batch_loss_smoothed, "smoothed", line=dict(color="#1f5fa8", width=2)),
        ],
        "loss",
        [0, view.epochs],
        whole_epochs=False,
    )
    epochs = list(range(1, len(view.history.get("loss", [])) + 1))
    whole_run = [0.8, view.epochs + 0.2]
    loss = _figure(
        "Loss per epoch",
        [
            _line(epochs, view.history.get("loss", []), "train"),
            _line(epochs, view.history.get("val_loss", []), "validation"),
        ],
        "loss",
        whole_run,
        whole_epochs=True,
    )
    accuracy = _figure(
        "Accuracy per epoch",
        [
            _line(epochs, view.history.get("accuracy", []), "train"),
            _line(epochs, view.history.get("val_accuracy", []), "validation"),
            *(_line(epochs, view.history[key], label) for key, label in HELD_OUT_CURVES.items() if key in view.history),
        ],
        "accuracy",
        whole_run,
        whole_epochs=True,
    )
    with st.container(key="train_curves"):
        for column, figure, key in zip(
            st.columns(3), (batch, loss, accuracy), ("train_batch_chart", "train_loss_chart", "train_accuracy_chart")
        ):
            column.plotly_chart(figure, width="stretch", key=key, config={"displayModeBar": False})


def _duration(seconds: float | None) -> str:
    return "—" if seconds is None else estimates.duration(seconds)


def job_panel(view: jobs.JobView, times: dict[str, tuple[float, float]]) -> None:
    """One job: what it is, where it is, when it starts and ends, its buttons for its owner, its curves."""
    settings = view.settings
    extra = (" + the class " + literal(settings.class_digits)) if settings.class_digits else ""
    start = ", fine-tuned" if settings.fine_tune else ""
    st.subheader(f"{settings.arch}{start}, {settings.epochs} epochs on {settings.train_size:,} digits{extra}")
    where = f" · on {view.worker.split(':')[0]}" if view.worker else ""
    st.caption(f"Job {view.id} · started by {view.owner}{where} · {view.phase}")
    for level, message in st.session_state.pop("train_messages", []):
        getattr(st, level)(message, icon=":material/error:")
    mine = may_act(view)
    if not mine and (view.active or view.undecided):
        st.caption(f"This is {view.owner}'s job: only they, or the teacher, can stop, save or discard it.")
    if view.state == JobState.QUEUED:
        when = ""
        if view.id in times:
            start, end = times[view.id]
            when = f" It should start in about {_duration(start)} and end in about {_duration(end)}."
        st.info(
            f"Waiting in the queue at position {view.position}: each training slot trains one "
            f"job at a time, and yours starts when a slot is free.{when}",
            icon=":material/hourglass:",
        )
        if mine:
            st.button("Leave the queue", key="train_cancel", on_click=_act, args=(jobs.stop, view.id))
    elif view.state == JobState.RUNNING:
        batch = f" · batch {view.step} of {view.steps_per_epoch}" if view.steps_per_epoch else ""
        st.progress(view.fraction_done, text=f"Epoch {min(view.epoch + 1, view.epochs)} of {view.epochs}{batch}")
        speed, elapsed, left = st.columns(3)
        speed.metric("Digits per second", f"{view.digits_per_second:,.0f}" if view.digits_per_second else "—")
        elapsed.metric("Time so far", _duration(view.seconds))
        left.metric("Time left", _duration(view.seconds_left))
        if view.stop_requested:
            st.info("Stopping after this batch…", icon=":material/stop_circle:")
        elif mine:
            st.button(
                "Stop training",
                key="train_stop",
                icon=":material/stop_circle:",
                on_click=_act,
                args=(jobs.stop, view.id),
                help="Ends after the current batch; you can then save what it learned.",
            )
    elif view.state == JobState.FAILED:
        st.error(f"Training failed: {view.error}", icon=":material/error:")
    elif view.state == JobState.LOST:
        st.error(view.error, icon=":material/link_off:")
    elif view.state == JobState.SAVED:
        st.success(
            f"Saved as **{view.saved_name}** — select it on Draw. "
            f"It reads {view.test_accuracy:.2%} of the 10,000 MNIST test digits correctly.",
            icon=":material/check_circle:",
        )
        try:
            saved = store.scan().get(view.saved_name)
        except (db.DatabaseError, ValueError):  # unreadable, or deleted since
            saved = None
        if saved is not None:
            class_result(saved)
        st.page_link(
            "app_pages/draw.py",
            label=f"Draw with {view.saved_name}",
            icon=":material/draw:",
            query_params={"model": view.saved_name},
        )
        if saved is not None:
            models.download_model(saved, key="train")
        logs = store.tensorboard_zip(view.saved_name)
        if logs:
            st.download_button(
                "TensorBoard logs (.zip)",
                logs,
                file_name=f"{view.saved_name}-tensorboard.zip",
                key="train_logs",
                icon=":material/download:",
                help="Unzip them into one folder per run and compare runs with tensorboard --logdir <that folder>.",
            )
    elif view.state == JobState.DISCARDED:
        st.info("Discarded.", icon=":material/delete:")
    elif view.undecided and mine:
        save_or_discard(view)
    if view.state != JobState.QUEUED and view.batch_steps:
        curves(view)


def class_result(version: store.ZooEntry) -> None:
    """A version trained with a class's digits: its held-out digits read before and after."""
    record = version.record
    result = record.get("class_digits")
    if not result or result.get("held_out_accuracy") is None:
        return
    before = result.get("held_out_accuracy_before")
    before_text = f"the shipped {record['arch']} read {before:.1%}, " if before is not None else ""
    st.info(
        f"On the {result['held_out']} held-out digits of {literal(result['class'])}: "
        f"{before_text}{version.name} reads {result['held_out_accuracy']:.1%}.",
        icon=":material/groups:",
    )


def _act(action, job_id: str, *args) -> None:
    """A button's action, run before the page reruns, so a click is never lost to a rerun."""
    try:
        action(job_id, *args, key=job_key(), teacher=people.is_teacher())
    except (jobs.JobError, store.VersionError, db.DatabaseError) as error:
        st.session_state.train_messages = [("error", f"{error}")]


def stopped_where(view: jobs.JobView) -> str:
    """ "Stopped after 2 of 3 epochs." or, in the middle of one, "Stopped during epoch 1 of 3 (batch 40 of 469)."."""
    batches = view.batch_steps[-1] if view.batch_steps else 0
    whole, part = divmod(batches, view.steps_per_epoch or 1)
    if part == 0:
        return f"Stopped after {whole} of {view.epochs} epochs."
    return f"Stopped during epoch {whole + 1} of {view.epochs} (batch {part:,} of {view.steps_per_epoch:,})."


def save_or_discard(view: jobs.JobView) -> None:
    if view.error:
        st.error(view.error, icon=":material/error:")
    if view.stopped_early:
        st.warning(
            f"{stopped_where(view)} What it learned so far reads "
            f"{view.test_accuracy:.2%} of the MNIST test digits correctly: save it as a version, "
            "or discard it.",
            icon=":material/stop_circle:",
        )
    name_key = f"train_save_name_{view.id}"
    st.session_state.setdefault(name_key, view.requested_name)
    st.text_input("Version name (optional)", key=name_key, max_chars=store.MAX_NAME_LENGTH)
    save, discard = st.columns(2)
    save.button(
        "Save version",
        key="train_save",
        type="primary",
        icon=":material/save:",
        on_click=lambda: _act(jobs.save, view.id, st.session_state[name_key]),
    )
    discard.button(
        "Discard", key="train_discard", icon=":material/delete:", on_click=_act, args=(jobs.discard, view.id)
    )


def class_jobs(views: list[jobs.JobView], me: str, times: dict[str, tuple[float, float]]) -> None:
    st.subheader("The class's jobs")
    capacity = jobs.capacity()
    where = f" Jobs and versions are kept in the {db.describe()}." if people.is_teacher() else ""  # the server's paths
    st.caption(
        (
            f"Training capacity: {capacity}."
            if capacity
            else f"Training runs on Ray, which starts with the first job ({jobs.training_slots()} "
            "training slot(s) on this machine)."
        )
        + where
    )
    if not views:
        st.caption("No jobs yet: yours will be the first.")
        return
    rows = [
        {
            "Queue": ("training now" if v.position == 0 else f"{v.position}") if v.position is not None else "",
            "Who": f"{v.owner} (you)" if v.owner == me else v.owner,
            "Architecture": v.settings.arch,
            "Epochs": f"{v.epoch} of {v.epochs}",
            "Digits": v.settings.train_size,
            "State": STATE_LABELS[v.state],
            "Done": v.fraction_done,
            "Ends in": f"about {_duration(times[v.id][1])}" if v.id in times else "",
            "Test accuracy": v.test_accuracy,
            "Version": v.saved_name,
            "Where": v.worker.split(":")[0],
        }
        for v in reversed(views)
    ]
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        key="train_jobs_table",
        column_config={
            "Done": st.column_config.ProgressColumn("Done", min_value=0.0, max_value=1.0, format="percent"),
            "Test accuracy": st.column_config.NumberColumn(format="percent"),
            "Digits": st.column_config.NumberColumn(format="localized"),
        },
    )


def poll_interval(job: jobs.JobView | None, views: list[jobs.JobView]) -> float | None:
    if job is not None and job.active:
        return FAST_POLL
    return SLOW_POLL if any(v.active for v in views) else None


def live(job_id: str | None, declared: float | None) -> None:
    """Redrawn every ``declared`` seconds; a full rerun when that pace should change."""
    try:
        views = jobs.views()
        job = jobs.view(job_id) if job_id else None
    except db.DatabaseError as error:  # e.g. the database restarting: the next poll tries again
        st.error(f"The jobs database cannot be used: {error}", icon=":material/database:")
        return
    if poll_interval(job, views) != declared:
        st.rerun()  # e.g. your job ended: redraw the page once, then stop polling
    times = jobs.queue_times(views)
    if job is not None:
        job_panel(job, times)
        st.divider()
    class_jobs(views, owner(), times)


def ray_status(declared: float | None) -> None:
    """Training unavailable, and why, as soon as it is known; polled until Ray is up."""
    jobs.prepare_cluster()
    pace = None if jobs.cluster_ready() else RAY_POLL
    if pace != declared:
        st.rerun()
    if problem := jobs.cluster_problem():
        st.warning(
            f"Training is unavailable: {problem}. Drawing and every other page work as usual; "
            "tell the teacher. This page tries again by itself.",
            icon=":material/cloud_off:",
        )
