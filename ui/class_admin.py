"""The Class page's tools: the class picker, the teacher's relabel, challenge, export, import and delete."""

from __future__ import annotations

import streamlit as st

from model_zoo import challenge, class_digits
from ui import people
from ui.quoting import literal, naming


def act(action, *args, **kwargs) -> None:
    """A button's callback on the class's digits: the change is made before the page reruns, a refusal shown."""
    try:
        action(*args, **kwargs)
    except class_digits.ClassDigitsError as error:
        st.session_state.class_message = ("error", str(error))


def _import(class_name: str, uploader: str) -> None:
    upload = st.session_state.get(uploader)
    if upload is None:
        st.session_state.class_message = ("info", "Choose an exported .npz or .zip first.")
        return
    try:
        report = class_digits.import_file(class_name, upload.name, upload.getvalue())
    except class_digits.ClassDigitsError as error:
        st.session_state.class_message = ("error", f"Nothing was imported: {naming(str(error), upload.name)}")
        return
    skipped = f" ({report.already_there} the class had already)" if report.already_there else ""
    st.session_state.class_message = ("success", f"Imported {report.added} digits into {literal(class_name)}{skipped}.")
    st.session_state.class_import_version = st.session_state.get("class_import_version", 0) + 1


def _relabel() -> None:
    # Read at the click: the choice made just before it, whatever the last run showed.
    act(
        class_digits.relabel,
        st.session_state.class_relabel_digit,
        st.session_state.class_relabel_label,
        teacher=people.is_teacher(),
    )


def _delete_class(class_name: str) -> None:
    try:
        gone = class_digits.delete_class(class_name, teacher=people.is_teacher())
    except class_digits.ClassDigitsError as error:
        st.session_state.class_message = ("error", str(error))
        return
    st.session_state.class_message = ("success", f"Deleted {literal(class_name)} and its {gone} digits.")
    st.session_state.pop("class_erase_confirm", None)


def _challenge(action, class_name: str) -> None:
    try:
        action(class_name, teacher=people.is_teacher())
    except challenge.ChallengeError as error:
        st.session_state.class_message = ("error", str(error))


def _new_class(widget: str) -> None:
    try:
        st.session_state.class_name = class_digits.create_class(st.session_state[widget])
    except class_digits.ClassDigitsError as error:
        st.session_state.class_message = ("error", str(error))


def relabel(kept: list[class_digits.KeptDigit]) -> None:
    st.subheader("Relabel a digit")
    options = {d.id: f"a {d.label} by {d.learner}, {d.created[:16].replace('T', ' ')} ({d.id[:6]})" for d in kept}
    st.selectbox("Digit", list(options), format_func=options.get, key="class_relabel_digit")
    label = st.selectbox("Its label", list(range(10)), key="class_relabel_label")
    st.button(f"Relabel it as a {label}", key="class_relabel", on_click=_relabel)


def challenge_section(class_name: str) -> None:
    """The teacher starts and ends the class's challenge; the Board shows its leaderboard."""
    st.header("Challenge")
    current = challenge.current(class_name)
    if current is not None and current.running:
        st.caption(
            f"Running since {current.started:%H:%M} UTC: every version saved since is scored on the "
            "held-out digits, which learners cannot see or export until you end it. The leaderboard "
            "is on the [Board](/board)."
        )
        st.button(
            "End the challenge and reveal the held-out digits",
            key="class_challenge_end",
            icon=":material/flag:",
            on_click=_challenge,
            args=(challenge.end, class_name),
        )
        return
    st.caption(
        '"The model that reads our handwriting best": while it runs, every version the class saves '
        "is scored on the class's held-out digits, hidden from learners, and ranked on the "
        "[Board](/board) beside the shipped models."
        + (" The last one ended: the Board shows its result." if current is not None else "")
    )
    st.button(
        "Start a challenge",
        key="class_challenge_start",
        icon=":material/trophy:",
        on_click=_challenge,
        args=(challenge.start, class_name),
    )


def export_and_import(class_name: str, has_digits: bool) -> None:
    st.header("Export and import")
    if not people.is_teacher():
        st.caption("Only the teacher exports and imports the class's digits (sign in from the sidebar).")
        return
    st.caption("The digits never leave this server except by these exports: 28 × 28 images and labels, no names.")
    if has_digits:
        slug = "".join(c if c.isalnum() else "_" for c in class_name)
        left, right = st.columns(2)
        with_held_out = not challenge.hides_held_out(class_name)  # a running challenge scores on them
        if not with_held_out:
            st.caption("While the challenge runs, the held-out digits are left out.")
        left.download_button(
            "Export as .npz (x, y)",
            class_digits.export_npz(class_name, held_out=with_held_out),
            file_name=f"{slug}.npz",
            key="class_export_npz",
            icon=":material/download:",
            help="Keras-style: x (N, 28, 28) uint8 white on black, y (N,) uint8.",
        )
        right.download_button(
            "Export as .zip (PNGs + CSV)",
            class_digits.export_zip(class_name, held_out=with_held_out),
            file_name=f"{slug}.zip",
            key="class_export_zip",
            icon=":material/download:",
            help="train.csv (filename,label) and Images/train/*.png, the tutorial's layout.",
        )
    uploader = f"class_import_{st.session_state.get('class_import_version', 0)}"
    st.file_uploader(f"Import digits into {class_name} (an exported .npz or .zip)", type=["npz", "zip"], key=uploader)
    st.button(
        f"Import into {class_name}",
        key="class_import",
        icon=":material/upload:",
        on_click=_import,
        args=(class_name, uploader),
    )


def classes_section() -> str:
    class_name = people.class_picker("class_page_class")
    if people.is_teacher():
        with st.expander("Name a new class", icon=":material/group_add:"):
            st.text_input("Class name", key="class_new_name", max_chars=class_digits.MAX_NAME_LENGTH)
            st.button("Create class", key="class_create", on_click=_new_class, args=("class_new_name",))
    return class_name


def delete_class(class_name: str) -> None:
    """The teacher's "Delete the class", behind a confirmation."""
    st.subheader("Delete the class")
    confirm = st.checkbox(f"Yes, delete every digit of {class_name} for good", key="class_erase_confirm")
    st.button(
        f"Delete {class_name}",
        key="class_erase",
        disabled=not confirm,
        icon=":material/delete:",
        on_click=_delete_class,
        args=(class_name,),
    )
