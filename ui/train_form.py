"""The Train page's settings form: an architecture's tutorial settings (or fine-tuning's), the server's limits."""

from __future__ import annotations

import dataclasses
import importlib.util

import streamlit as st

from model_zoo import architectures, class_digits, data, db, estimates, jobs, store
from model_zoo.config import SettingsError
from model_zoo.training import (
    FINE_TUNE_DEFAULTS,
    FINE_TUNE_TRAIN_SIZE,
    MAX_SEED,
    OPTIMIZERS,
    PEN_RENDERS,
    TrainingLimits,
    TrainingSettings,
)

# Reset to the architecture's own on a change.
ARCH_FIELDS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "lr_decay",
    "optimizer",
    "dropout",
    "width",
    "hidden_layers",
    "augment",
    "usps",
    "strokes",
    "unipen",
)
OTHER_FIELDS = ("train_size", "val_fraction", "seed")  # the same for every architecture

START = {False: "random weights (from scratch)", True: "the shipped model's weights (fine-tune)"}
PRESETS = ("class", "tutorial")


def load_defaults() -> None:
    """Fill the form with the chosen architecture's settings for a class or the tutorial's (or fine-tuning's)."""
    state = st.session_state
    defaults = TrainingSettings.for_architecture(state.train_arch, class_sized=state.get("train_preset") == "class")
    for name in ARCH_FIELDS:
        state[f"train_{name}"] = getattr(defaults, name)
    state.train_train_size = defaults.train_size
    if state.get("train_fine_tune"):
        for name, value in FINE_TUNE_DEFAULTS.items():
            state[f"train_{name}"] = value
        state.train_train_size = FINE_TUNE_TRAIN_SIZE


def settings_form(limits: TrainingLimits) -> tuple[TrainingSettings, str] | None:
    """The settings a learner submits, with the version name; None until "Start training"."""
    if "train_arch" not in st.session_state:
        st.session_state.train_arch = "mlp_1x50"
        st.session_state.train_preset = "class"
        load_defaults()
    defaults = {f.name: f.default for f in dataclasses.fields(TrainingSettings) if f.name in OTHER_FIELDS}
    for name, value in defaults.items():
        st.session_state.setdefault(f"train_{name}", value)
    st.session_state.setdefault("train_name", "")
    arch = architectures.get(
        st.selectbox(
            "Architecture",
            list(architectures.ZOO),
            key="train_arch",
            on_change=load_defaults,
            format_func=lambda name: f"{name} — {architectures.ZOO[name].summary}",
            help="The starting point: its tutorial settings fill the form.",
        )
    )
    st.caption(arch.lesson)
    st.session_state.setdefault("train_fine_tune", False)
    fine_tune = st.radio(
        "Start from",
        list(START),
        format_func=START.get,
        key="train_fine_tune",
        on_change=load_defaults,
        horizontal=True,
        help=f"Fine-tuning starts from the shipped {arch.name} and trains it a little more, "
        "gently: what makes a class's own digits matter in a minute or two.",
    )
    lengths = {
        preset: estimates.duration(
            estimates.job_seconds(TrainingSettings.for_architecture(arch.name, class_sized=preset == "class")).seconds
        )
        for preset in PRESETS
    }
    st.radio(
        "Settings",
        PRESETS,
        format_func=lambda preset: (
            f"sized for a class (about {lengths[preset]} here)"
            if preset == "class"
            else f"the tutorial's (about {lengths[preset]} here)"
        ),
        key="train_preset",
        on_change=load_defaults,
        horizontal=True,
        disabled=fine_tune,
        help="Fine-tuning has settings of its own."
        if fine_tune
        else "A class's settings train on fewer digits or epochs, so thirty learners' jobs end within the "
        "lesson; the tutorial's are the 2017 tutorial's own. Either fills in the settings below.",
    )
    low_lr, high_lr = limits.learning_rate
    usps_found = data.usps_available()
    pen_found = data.pen_digits_available()
    pen_renderer = importlib.util.find_spec("skimage") is not None  # model_zoo.strokes traces with it
    with st.form("train_settings", border=False):
        left, right = st.columns(2)
        left.number_input(
            "Epochs", step=1, key="train_epochs", help=f"Passes over the training digits, 1 to {limits.max_epochs}."
        )
        right.number_input(
            "Batch size",
            step=32,
            key="train_batch_size",
            help="Digits per weight update, {} to {}.".format(*limits.batch_size),
        )
        left.number_input(
            "Learning rate",
            step=1e-4,
            format="%.5f",
            key="train_learning_rate",
            help=f"Step size of each update, {low_lr:g} to {high_lr:g}.",
        )
        right.selectbox("Optimizer", list(OPTIMIZERS), format_func=OPTIMIZERS.get, key="train_optimizer")
        left.number_input(
            "Dropout",
            step=0.05,
            format="%.2f",
            key="train_dropout",
            help="Share of units switched off at random while training, {:g} to {:g}.".format(*limits.dropout),
        )
        right.checkbox("Decay the learning rate (cosine, to 0)", key="train_lr_decay")
        if arch.family == "mlp" and not fine_tune:  # a fine-tuned model keeps the shipped one's layers
            left.number_input(
                "Width (units per hidden layer)", step=50, key="train_width", help=f"1 to {limits.max_width}."
            )
            right.number_input(
                "Hidden layers", step=1, key="train_hidden_layers", help=f"1 to {limits.max_hidden_layers}."
            )
        left.number_input(
            "Training digits",
            step=1000,
            key="train_train_size",
            help=f"Taken from MNIST's 60,000, {limits.min_train_size:,} to "
            f"{limits.max_train_size:,}. Fewer train faster.",
        )
        right.number_input(
            "Validation fraction",
            step=0.05,
            format="%.2f",
            key="train_val_fraction",
            help="Share of those digits held out to watch overfitting, {:g} to {:g}.".format(*limits.val_fraction),
        )
        left.checkbox(
            "Augment (small shifts, rotations, zoom)",
            key="train_augment",
            help="Teaches the model how people really draw; a little slower.",
        )
        right.number_input(
            "Seed", step=1, min_value=0, max_value=MAX_SEED, key="train_seed", help="Same seed, same weights."
        )
        left.checkbox(
            "Add USPS's 7,291 training digits",
            key="train_usps",
            disabled=not usps_found,
            help="Handwriting from other writers (US postal codes), added to the training "
            "digits; validation stays MNIST. "
            + ("" if usps_found else "Not available: this server has no usps.npz (see README, Data)."),
        )
        right.checkbox(
            "Add the digits redrawn with this canvas's pen",
            key="train_strokes",
            disabled=not pen_renderer,
            help="Each training digit once more as a round pen on this canvas would draw it "
            "(loops that overshoot, tails, wobbles), and every 1 with a European flag: "
            "models read drawings better. The first job on a server draws them, ~10 ms "
            "a digit; later jobs reuse them. "
            + (
                ""
                if pen_renderer
                else "Not available: this server has no scikit-image (pip install -r requirements-dev.txt)."
            ),
        )
        left.checkbox(
            "Add real people's pen strokes (UNIPEN)",
            key="train_unipen",
            disabled=not pen_found,
            help="Digits written on tablets by UNIPEN's train writers (two thirds of them), each drawn "
            f"{PEN_RENDERS} times with this canvas's pen by a varied hand; the other "
            "writers' digits are never trained on (the Zoo's pen column is scored on "
            "them). The first job on a server draws them (~10 ms a digit, minutes); "
            "later jobs reuse them. "
            + ("" if pen_found else "Not available: this server has no unipen_pen.json.gz (see README, Data)."),
        )
        class_choice(right)
        st.text_input(
            "Version name (optional)",
            key="train_name",
            max_chars=store.MAX_NAME_LENGTH,
            placeholder=f"{arch.name}@<date>T<time>",
        )
        budget = f", and {limits.max_job_minutes} min a job" if limits.max_job_minutes else ""
        st.caption(
            f"This server allows up to {limits.max_epochs} epochs, "
            f"{limits.max_train_size:,} training digits, width {limits.max_width} and "
            f"{limits.max_hidden_layers} hidden layers{budget}."
        )
        settings = _settings(arch, fine_tune, usps=usps_found, strokes=pen_renderer, unipen=pen_found)
        estimate_panel(settings, limits)
        # A form: the settings reach the server together with Start (typed fields and reruns never race),
        # so the estimate above is of the settings as last applied, and is redone on Start.
        started = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    return (settings, st.session_state.train_name) if started else None


def estimate_panel(settings: TrainingSettings, limits: TrainingLimits) -> None:
    """How long the job would take here, and when it would start and end (or why it may not run)."""
    try:
        settings.validate(limits)
    except SettingsError as error:
        st.caption(f"{error} Fix it to see how long the job would take.")
        return
    if limits.max_job_minutes and (problem := estimates.over_budget(settings, limits.max_job_minutes)):
        st.warning(problem, icon=":material/timer_off:")
        return
    estimate = estimates.job_seconds(settings)
    line = (
        f":material/timer: About {estimates.duration(estimate.seconds)} of training on this server ({estimate.basis})"
    )
    try:
        start, end = jobs.queue_times(jobs.views(), joining=settings)[""]
    except db.DatabaseError:  # the jobs panel says so
        start = end = None
    if start:
        line += f"; behind the queue, it would start in about {estimates.duration(start)}"
        line += f" and end in about {estimates.duration(end)}"
    st.caption(line + ".")


def _settings(arch, fine_tune: bool, *, usps: bool, strokes: bool, unipen: bool) -> TrainingSettings:
    """The settings the form shows now (the options this server lacks switched off)."""
    state = st.session_state
    mlp = arch.family == "mlp"
    shape = (
        (arch.width, arch.hidden_layers)
        if fine_tune  # the shipped model's layers
        else (state.get("train_width"), state.get("train_hidden_layers"))
    )
    return TrainingSettings(
        arch=arch.name,
        epochs=int(state.train_epochs),
        batch_size=int(state.train_batch_size),
        learning_rate=float(state.train_learning_rate),
        lr_decay=bool(state.train_lr_decay),
        optimizer=state.train_optimizer,
        dropout=float(state.train_dropout),
        width=int(shape[0]) if mlp else 0,
        hidden_layers=int(shape[1]) if mlp else 0,
        train_size=int(state.train_train_size),
        val_fraction=float(state.train_val_fraction),
        augment=bool(state.train_augment),
        usps=bool(state.train_usps) and usps,
        strokes=bool(state.train_strokes) and strokes,
        unipen=bool(state.train_unipen) and unipen,
        class_digits=state.train_class_digits or "",
        fine_tune=fine_tune,
        seed=int(state.train_seed),
    )


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
        "Add the class's digits",
        options,
        key="train_class_digits",
        format_func=lambda name: f"{name} ({sizes[name][0]} to train on, {sizes[name][1]} held out)" if name else "no",
        help='The digits kept with "Keep this drawing as a …" (see the Class page): '
        "their train part is added, repeated to make about a quarter of each "
        "epoch; the held-out part scores the model before and after.",
    )
