"""The keep-a-digit widget: "Keep this drawing as a …", the learner's name and class, and the count kept."""

from __future__ import annotations

import io

import streamlit as st
from PIL import Image

from model_zoo import class_digits, db, model_files, store
from ui.canvas import Digit, clear
from ui.models import fast_model
from ui.people import class_picker, learner_key, learner_name
from ui.quoting import literal


def keep_drawing(key: str, digit: Digit, predicted: int, listing: store.ZooListing) -> None:
    """ "Keep this drawing as a …": ten buttons, the model's digit first; one click stores it and clears.

    ``key`` is the one given to ``digit_from_canvas_or_upload``. What every
    model of ``listing`` reads is stored with the digit.
    """
    with st.container(key=f"{key}_keep"):
        st.markdown("**Keep this drawing as a …**")
        row = st.container(horizontal=True, gap="small")
        name_column, class_column = st.columns(2)
        # The widget's own state goes when another page is shown: the name lives in learner_name.
        st.session_state[f"{key}_learner"] = st.session_state.get("learner_name", "")
        name_column.text_input(
            "Your name (once per visit; else anonymous)",
            key=f"{key}_learner",
            max_chars=class_digits.MAX_NAME_LENGTH,
            on_change=_remember_name,
            args=(f"{key}_learner",),
        )
        with class_column:
            class_name = class_picker(f"{key}_class")
        for label in [predicted, *(d for d in range(10) if d != predicted)]:
            row.button(
                str(label),
                key=f"{key}_keep_{label}",
                type="primary" if label == predicted else "secondary",
                help="What the model read" if label == predicted else None,
                on_click=_keep,
                args=(key, class_name, label, digit, listing),
            )
        _keep_feedback(key, class_name)


def keep_counter(key: str) -> None:
    """The feedback of the last keep, and "your digits: …", also shown while the canvas is empty."""
    _keep_feedback(key, st.session_state.get("class_name", class_digits.DEFAULT_CLASS))


def _keep_feedback(key: str, class_name: str) -> None:
    for level, message in st.session_state.pop(f"{key}_kept", []):
        getattr(st, level)(message)
    try:
        per_label = class_digits.counts(class_name, learner_key())
    except db.DatabaseError:
        return
    if sum(per_label):
        st.caption(
            f"Your digits in {literal(class_name)}: {sum(per_label)} (0–9: "
            f"{', '.join(map(str, per_label))}). See them all on the Class page."
        )


def _remember_name(widget: str) -> None:
    st.session_state.learner_name = st.session_state[widget]


def _keep(key: str, class_name: str, label: int, digit: Digit, listing: store.ZooListing) -> None:
    # A callback: it runs before the rerun, so the click is stored even if the page moves on.
    readings = {}
    for entry in listing.entries:
        try:
            readings[entry.name] = fast_model(entry).predict(digit.image)
        except model_files.ModelFileError:  # the page already says so
            continue
    picture = None
    if digit.canvas is not None:
        buffer = io.BytesIO()
        Image.fromarray(digit.canvas).save(buffer, format="PNG", optimize=True)
        picture = buffer.getvalue()
    try:
        kept = class_digits.keep(
            class_name,
            label=label,
            image=digit.image,
            learner=learner_name(),
            owner_key=learner_key(),
            readings={name: (p.digit, p.confidence) for name, p in readings.items()},
            picture=picture,
            pen=digit.pen,
            source="drawn" if digit.canvas is not None else "uploaded",
        )
    except class_digits.ClassDigitsError as error:
        st.session_state[f"{key}_kept"] = [("error", str(error))]
        return
    except db.DatabaseError as error:
        st.session_state[f"{key}_kept"] = [("error", f"Not kept: the database cannot be used ({error}).")]
        return
    if kept is None:
        st.session_state[f"{key}_kept"] = [("info", "That drawing is kept already: draw the next one.")]
    else:
        st.session_state[f"{key}_kept"] = [("success", f"Kept as a {label}. Draw the next one.")]
    clear(key)
