"""Train: retrain any zoo architecture with your own settings and watch the curves grow."""

from __future__ import annotations

import dataclasses
import importlib.util
import secrets

import plotly.graph_objects as go
import streamlit as st

from model_zoo import architectures, class_digits, data, db, jobs, store
from model_zoo.jobs import JobState
from model_zoo.training import MAX_SEED, OPTIMIZERS, PEN_RENDERS, SettingsError, TrainingLimits, TrainingSettings
from ui import models, people, quoting, runtime

# Reset to the architecture's own on a change.
ARCH_FIELDS = ("epochs", "batch_size", "learning_rate", "lr_decay", "optimizer", "dropout",
               "width", "hidden_layers", "augment", "usps", "strokes", "unipen")
OTHER_FIELDS = ("train_size", "val_fraction", "seed")  # the same for every architecture
HELD_OUT_CURVES = {"class_accuracy": "class, held out", "pen_val_accuracy": "pen, validation writers"}
FAST_POLL, SLOW_POLL = 0.5, 2.0  # seconds: your job running / only other people's
RAY_POLL = 2.0  # seconds: while Ray is starting or unavailable
STATE_LABELS = {JobState.QUEUED: "waiting", JobState.RUNNING: "training", JobState.FINISHED: "finished",
                JobState.STOPPED: "stopped", JobState.FAILED: "failed", JobState.SAVED: "saved",
                JobState.DISCARDED: "discarded", JobState.LOST: "lost"}


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
    """The job this page shows: the session's latest, or the one in ``?job=`` after a reload."""
    wanted = st.query_params.get("job") or st.session_state.get("train_job")
    view = jobs.view(wanted) if wanted else None
    if view is not None and job_key() and jobs.owns(view.id, job_key()):
        st.session_state.train_key = job_key()
        people.remember_job_key(job_key())
    if wanted and view is None:
        st.info(f"There is no job {quoting.literal(wanted)} in the database: check the link. "
                "Every version ever saved is still in the zoo.")
        st.query_params.pop("job", None)
        st.session_state.pop("train_job", None)
    if view is not None:
        st.session_state.train_job = view.id
        st.query_params["job"] = view.id
    return view


# ------------------------------------------------------------------ settings


START = {False: "random weights (from scratch)", True: "the shipped model's weights (fine-tune)"}
# Fine-tuning: a few epochs at a low rate, on a share of MNIST beside the class's digits, so that a
# class's few hundred digits matter in a minute or two without the model forgetting MNIST.
FINE_TUNE_DEFAULTS = dict(epochs=3, learning_rate=1e-4, lr_decay=False)
FINE_TUNE_TRAIN_SIZE = 10_000


def load_defaults() -> None:
    """Fill the form with the chosen architecture's tutorial settings (or fine-tuning's)."""
    defaults = TrainingSettings.for_architecture(st.session_state.train_arch)
    for name in ARCH_FIELDS:
        st.session_state[f"train_{name}"] = getattr(defaults, name)
    if st.session_state.get("train_fine_tune"):
        for name, value in FINE_TUNE_DEFAULTS.items():
            st.session_state[f"train_{name}"] = value


def start_changed() -> None:
    load_defaults()
    st.session_state.train_train_size = (FINE_TUNE_TRAIN_SIZE if st.session_state.train_fine_tune
                                         else TrainingSettings.train_size)


def settings_form(limits: TrainingLimits) -> tuple[TrainingSettings, str] | None:
    """The settings a learner submits, with the version name; None until "Start training"."""
    if "train_arch" not in st.session_state:
        st.session_state.train_arch = "mlp_1x50"
        load_defaults()
    defaults = {f.name: f.default for f in dataclasses.fields(TrainingSettings) if f.name in OTHER_FIELDS}
    for name, value in defaults.items():
        st.session_state.setdefault(f"train_{name}", value)
    st.session_state.setdefault("train_name", "")
    arch = architectures.get(st.selectbox(
        "Architecture", list(architectures.ZOO), key="train_arch", on_change=load_defaults,
        format_func=lambda name: f"{name} — {architectures.ZOO[name].summary}",
        help="The starting point: its tutorial settings fill the form."))
    st.caption(arch.lesson)
    st.session_state.setdefault("train_fine_tune", False)
    fine_tune = st.radio("Start from", list(START), format_func=START.get, key="train_fine_tune",
                         on_change=start_changed, horizontal=True,
                         help=f"Fine-tuning starts from the shipped {arch.name} and trains it a little more, "
                              "gently: what makes a class's own digits matter in a minute or two.")
    low_lr, high_lr = limits.learning_rate
    usps_found = data.usps_available()
    pen_found = data.pen_digits_available()
    pen_renderer = importlib.util.find_spec("skimage") is not None  # model_zoo.strokes traces with it
    with st.form("train_settings", border=False):
        left, right = st.columns(2)
        left.number_input("Epochs", step=1, key="train_epochs",
                          help=f"Passes over the training digits, 1 to {limits.max_epochs}.")
        right.number_input("Batch size", step=32, key="train_batch_size",
                           help="Digits per weight update, {} to {}.".format(*limits.batch_size))
        left.number_input("Learning rate", step=1e-4, format="%.5f", key="train_learning_rate",
                          help=f"Step size of each update, {low_lr:g} to {high_lr:g}.")
        right.selectbox("Optimizer", list(OPTIMIZERS), format_func=OPTIMIZERS.get, key="train_optimizer")
        left.number_input("Dropout", step=0.05, format="%.2f", key="train_dropout",
                          help="Share of units switched off at random while training, "
                               "{:g} to {:g}.".format(*limits.dropout))
        right.checkbox("Decay the learning rate (cosine, to 0)", key="train_lr_decay")
        if arch.family == "mlp" and not fine_tune:  # a fine-tuned model keeps the shipped one's layers
            left.number_input("Width (units per hidden layer)", step=50, key="train_width",
                              help=f"1 to {limits.max_width}.")
            right.number_input("Hidden layers", step=1, key="train_hidden_layers",
                               help=f"1 to {limits.max_hidden_layers}.")
        left.number_input("Training digits", step=1000, key="train_train_size",
                          help=f"Taken from MNIST's 60,000, {limits.min_train_size:,} to "
                               f"{limits.max_train_size:,}. Fewer train faster.")
        right.number_input("Validation fraction", step=0.05, format="%.2f", key="train_val_fraction",
                           help="Share of those digits held out to watch overfitting, "
                                "{:g} to {:g}.".format(*limits.val_fraction))
        left.checkbox("Augment (small shifts, rotations, zoom)", key="train_augment",
                      help="Teaches the model how people really draw; a little slower.")
        right.number_input("Seed", step=1, min_value=0, max_value=MAX_SEED, key="train_seed",
                           help="Same seed, same weights.")
        left.checkbox("Add USPS's 7,291 training digits", key="train_usps", disabled=not usps_found,
                      help="Handwriting from other writers (US postal codes), added to the training "
                           "digits; validation stays MNIST. " + ("" if usps_found else
                           "Not available: this server has no usps.npz (see README, Data)."))
        right.checkbox("Add the digits redrawn with this canvas's pen", key="train_strokes", disabled=not pen_renderer,
                       help="Each training digit once more as a round pen on this canvas would draw it "
                            "(loops that overshoot, tails, wobbles), and every 1 with a European flag: "
                            "models read drawings better. The first job on a server draws them, ~10 ms "
                            "a digit; later jobs reuse them. " + ("" if pen_renderer else
                            "Not available: this server has no scikit-image (pip install -r "
                            "requirements-dev.txt)."))
        left.checkbox("Add real people's pen strokes (UNIPEN)", key="train_unipen", disabled=not pen_found,
                      help="Digits written on tablets by UNIPEN's train writers (two thirds of them), each drawn "
                           f"{PEN_RENDERS} times with this canvas's pen by a varied hand; the other "
                           "writers' digits are never trained on (the Zoo's pen column is scored on "
                           "them). The first job on a server draws them (~10 ms a digit, minutes); "
                           "later jobs reuse them. "
                           + ("" if pen_found else "Not available: this server has no "
                              "unipen_pen.json.gz (see README, Data)."))
        class_choice(right)
        st.text_input("Version name (optional)", key="train_name", max_chars=store.MAX_NAME_LENGTH,
                      placeholder=f"{arch.name}@<date>T<time>")
        st.caption(f"This server allows up to {limits.max_epochs} epochs, "
                   f"{limits.max_train_size:,} training digits, width {limits.max_width} and "
                   f"{limits.max_hidden_layers} hidden layers.")
        started = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    if not started:
        return None
    state = st.session_state
    mlp = arch.family == "mlp"
    shape = ((arch.width, arch.hidden_layers) if fine_tune  # the shipped model's layers
             else (state.get("train_width"), state.get("train_hidden_layers")))
    settings = TrainingSettings(
        arch=arch.name, epochs=int(state.train_epochs), batch_size=int(state.train_batch_size),
        learning_rate=float(state.train_learning_rate), lr_decay=bool(state.train_lr_decay),
        optimizer=state.train_optimizer, dropout=float(state.train_dropout),
        width=int(shape[0]) if mlp else 0, hidden_layers=int(shape[1]) if mlp else 0,
        train_size=int(state.train_train_size), val_fraction=float(state.train_val_fraction),
        augment=bool(state.train_augment), usps=bool(state.train_usps) and usps_found,
        strokes=bool(state.train_strokes) and pen_renderer, unipen=bool(state.train_unipen) and pen_found,
        class_digits=state.train_class_digits or "", fine_tune=fine_tune, seed=int(state.train_seed))
    return settings, state.train_name


def class_choice(column) -> None:
    """ "Add the class's digits": none, or a class, with the size of its two parts."""
    try:
        sizes = {name: class_digits.split_sizes(name) for name in class_digits.classes()}
    except db.DatabaseError:
        sizes = {}
    options = ["", *(name for name, (train, _) in sizes.items() if train)]
    if st.session_state.get("train_class_digits") not in options:
        st.session_state.train_class_digits = ""
    column.selectbox(
        "Add the class's digits", options, key="train_class_digits",
        format_func=lambda name: f"{name} ({sizes[name][0]} to train on, {sizes[name][1]} held out)"
        if name else "no", help="The digits kept with \"Keep this drawing as a …\" (see the Class page): "
                                "their train part is added, repeated to make about a quarter of each "
                                "epoch; the held-out part scores the model before and after.")


# ------------------------------------------------------------------ live view


def _line(x, y, name, **style) -> go.Scatter:
    return go.Scatter(x=x, y=y, name=name, mode="lines+markers" if len(x) < 30 else "lines", **style)


def _figure(title: str, traces: list, y_title: str, x_range: list[float], whole_epochs: bool) -> go.Figure:
    """A chart whose x axis spans the whole run from the start, so the curve grows into it."""
    figure = go.Figure(traces)
    figure.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=40, b=10),
                         legend=dict(orientation="h", y=-0.25), xaxis_title="epoch", yaxis_title=y_title)
    figure.update_xaxes(range=x_range, dtick=1 if whole_epochs and x_range[1] <= 20 else None)
    return figure


def curves(view: jobs.JobView) -> None:
    """Per-batch loss (raw and smoothed) and per-epoch loss and accuracy, train and validation."""
    per_epoch = max(1, view.steps_per_epoch)
    x = [step / per_epoch for step in view.batch_steps]  # in epochs, so the charts line up
    batch = _figure("Loss per batch", [
        _line(x, view.batch_loss, "batch", line=dict(color="#c6d4e8", width=1)),
        _line(x, view.batch_loss_smoothed, "smoothed", line=dict(color="#1f5fa8", width=2)),
    ], "loss", [0, view.epochs], whole_epochs=False)
    epochs = list(range(1, len(view.history.get("loss", [])) + 1))
    whole_run = [0.8, view.epochs + 0.2]
    loss = _figure("Loss per epoch", [
        _line(epochs, view.history.get("loss", []), "train"),
        _line(epochs, view.history.get("val_loss", []), "validation"),
    ], "loss", whole_run, whole_epochs=True)
    accuracy = _figure("Accuracy per epoch", [
        _line(epochs, view.history.get("accuracy", []), "train"),
        _line(epochs, view.history.get("val_accuracy", []), "validation"),
        *(_line(epochs, view.history[key], label) for key, label in HELD_OUT_CURVES.items() if key in view.history),
    ], "accuracy", whole_run, whole_epochs=True)
    with st.container(key="train_curves"):
        for column, figure, key in zip(st.columns(3), (batch, loss, accuracy),
                                       ("train_batch_chart", "train_loss_chart", "train_accuracy_chart")):
            column.plotly_chart(figure, width="stretch", key=key, config={"displayModeBar": False})


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def job_panel(view: jobs.JobView) -> None:
    settings = view.settings
    extra = (" + the class " + quoting.literal(settings.class_digits)) if settings.class_digits else ""
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
        st.info(f"Waiting in the queue at position {view.position}: each training slot trains one "
                "job at a time, and yours starts when a slot is free.", icon=":material/hourglass:")
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
            st.button("Stop training", key="train_stop", icon=":material/stop_circle:",
                      on_click=_act, args=(jobs.stop, view.id),
                      help="Ends after the current batch; you can then save what it learned.")
    elif view.state == JobState.FAILED:
        st.error(f"Training failed: {view.error}", icon=":material/error:")
    elif view.state == JobState.LOST:
        st.error(view.error, icon=":material/link_off:")
    elif view.state == JobState.SAVED:
        st.success(f"Saved as **{view.saved_name}** — select it on Draw. "
                   f"It reads {view.test_accuracy:.2%} of the 10,000 MNIST test digits correctly.",
                   icon=":material/check_circle:")
        try:
            saved = store.scan().get(view.saved_name)
        except (db.DatabaseError, ValueError):  # unreadable, or deleted since
            saved = None
        if saved is not None:
            class_result(saved)
        st.page_link("app_pages/draw.py", label=f"Draw with {view.saved_name}", icon=":material/draw:",
                     query_params={"model": view.saved_name})
        if saved is not None:
            models.download_model(saved, key="train")
        logs = store.tensorboard_zip(view.saved_name)
        if logs:
            st.download_button("TensorBoard logs (.zip)", logs, file_name=f"{view.saved_name}-tensorboard.zip",
                               key="train_logs", icon=":material/download:",
                               help="Unzip them into one folder per run and compare runs with "
                                    "tensorboard --logdir <that folder>.")
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
    st.info(f"On the {result['held_out']} held-out digits of {quoting.literal(result['class'])}: "
            f"{before_text}{version.name} reads {result['held_out_accuracy']:.1%}.", icon=":material/groups:")


def _act(action, job_id: str, *args) -> None:
    """A button's action, run before the page reruns, so a click is never lost to a rerun."""
    try:
        action(job_id, *args, key=job_key(), teacher=people.is_teacher())
    except (jobs.JobError, store.VersionError, db.DatabaseError) as error:
        st.session_state.train_messages = [("error", f"{error}")]


def stopped_where(view: jobs.JobView) -> str:
    """"Stopped after 2 of 3 epochs." or, in the middle of one, "Stopped during epoch 1 of 3 (batch 40 of 469)."."""
    batches = view.batch_steps[-1] if view.batch_steps else 0
    whole, part = divmod(batches, view.steps_per_epoch or 1)
    if part == 0:
        return f"Stopped after {whole} of {view.epochs} epochs."
    return f"Stopped during epoch {whole + 1} of {view.epochs} (batch {part:,} of {view.steps_per_epoch:,})."


def save_or_discard(view: jobs.JobView) -> None:
    if view.error:
        st.error(view.error, icon=":material/error:")
    if view.stopped_early:
        st.warning(f"{stopped_where(view)} What it learned so far reads "
                   f"{view.test_accuracy:.2%} of the MNIST test digits correctly: save it as a version, "
                   "or discard it.", icon=":material/stop_circle:")
    name_key = f"train_save_name_{view.id}"
    st.session_state.setdefault(name_key, view.requested_name)
    st.text_input("Version name (optional)", key=name_key, max_chars=store.MAX_NAME_LENGTH)
    save, discard = st.columns(2)
    save.button("Save version", key="train_save", type="primary", icon=":material/save:",
                on_click=lambda: _act(jobs.save, view.id, st.session_state[name_key]))
    discard.button("Discard", key="train_discard", icon=":material/delete:",
                   on_click=_act, args=(jobs.discard, view.id))


def class_jobs(views: list[jobs.JobView], me: str) -> None:
    st.subheader("The class's jobs")
    capacity = jobs.capacity()
    where = f" Jobs and versions are kept in the {db.describe()}." if people.is_teacher() else ""  # the server's paths
    st.caption((f"Training capacity: {capacity}." if capacity else
                f"Training runs on Ray, which starts with the first job ({jobs.training_slots()} "
                "training slot(s) on this machine).") + where)
    if not views:
        st.caption("No jobs yet: yours will be the first.")
        return
    rows = [{
        "Queue": ("training now" if v.position == 0 else f"{v.position}") if v.position is not None else "",
        "Who": f"{v.owner} (you)" if v.owner == me else v.owner,
        "Architecture": v.settings.arch,
        "Epochs": f"{v.epoch} of {v.epochs}",
        "Digits": v.settings.train_size,
        "State": STATE_LABELS[v.state],
        "Done": v.fraction_done,
        "Test accuracy": v.test_accuracy,
        "Version": v.saved_name,
        "Where": v.worker.split(":")[0],
    } for v in reversed(views)]
    st.dataframe(rows, hide_index=True, width="stretch", key="train_jobs_table", column_config={
        "Done": st.column_config.ProgressColumn("Done", min_value=0.0, max_value=1.0, format="percent"),
        "Test accuracy": st.column_config.NumberColumn(format="percent"),
        "Digits": st.column_config.NumberColumn(format="localized"),
    })


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
    if job is not None:
        job_panel(job)
        st.divider()
    class_jobs(views, owner())


def ray_status(declared: float | None) -> None:
    """Training unavailable, and why, as soon as it is known; polled until Ray is up."""
    jobs.prepare_cluster()
    pace = None if jobs.cluster_ready() else RAY_POLL
    if pace != declared:
        st.rerun()
    if problem := jobs.cluster_problem():
        st.warning(f"Training is unavailable: {problem}. Drawing and every other page work as usual; "
                   "tell the teacher. This page tries again by itself.", icon=":material/cloud_off:")


# ------------------------------------------------------------------ page

runtime.keep_keras_between_runs()  # also when this page runs on its own (AppTest)
st.title("Train")
st.write("Retrain any architecture of the zoo with your own settings and watch the loss and "
         "accuracy curves grow; the result becomes a new version you can draw with.")
try:
    limits = TrainingLimits.from_env()
    jobs.training_slots(), jobs.max_active_jobs()  # the class's settings, checked before any job
except SettingsError as error:
    st.error(f"This server's training settings are misconfigured: {error}", icon=":material/error:")
    st.stop()

jobs.prepare_cluster()  # Ray is ready by the time the form is filled in
ray_pace = None if jobs.cluster_ready() else RAY_POLL
st.fragment(ray_status, run_every=ray_pace)(ray_pace)
form_column, live_column = st.columns([1, 2], gap="large")
try:
    me = owner()
    with form_column:
        submitted = settings_form(limits)
        if submitted is not None:
            settings, name = submitted
            try:
                with st.spinner("Handing the job to Ray…"):
                    key = secrets.token_urlsafe(12)  # in the job's link: whoever has it owns the job
                    new_job = jobs.submit(settings, owner=me, name=name, limits=limits, key=key,
                                          learner=people.learner_key())
            except (SettingsError, jobs.JobError) as error:
                st.error(str(error), icon=":material/error:")
            else:
                st.session_state.train_job, st.session_state.train_key = new_job, key
                people.remember_job_key(key)
                st.query_params["job"], st.query_params["key"] = new_job, key
    with live_column:
        job = watched_job()
        interval = poll_interval(job, jobs.views())
        st.fragment(live, run_every=interval)(job.id if job else None, interval)
except db.DatabaseError as error:
    st.error(f"The jobs database cannot be used: {error}", icon=":material/database:")
