"""Class: the digits the class kept, how each model reads them, export and import."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image, ImageOps

from model_zoo import challenge, class_digits, db, evaluation, store
from ui import models, people, quoting

PER_LABEL = 40  # thumbnails shown per digit; the counts and scores use them all
THUMBNAIL = 84  # px
MISTAKE, RIGHT = (228, 87, 46), (200, 200, 200)  # thumbnail frames

st.title("Class")
st.write("The digits your class drew and kept: how each model reads them, where the zoo's ranking holds "
         "on your handwriting, and a data set to export or to retrain on.")

# ------------------------------------------------------------------ cached readings


@st.cache_data(show_spinner=False, max_entries=64)
def _readings(model_key: str, x: np.ndarray, _entry: store.ZooEntry) -> tuple[np.ndarray, np.ndarray]:
    """(digits, confidences) a model reads for (N, 28, 28) uint8; once per model and set of digits."""
    probabilities = evaluation.probabilities(models.fast_model(_entry), x)
    return probabilities.argmax(axis=1), probabilities.max(axis=1)


def _thumbnail(kept: class_digits.KeptDigit, picture: bytes | None, mistake: bool) -> Image.Image:
    """What was drawn (the canvas, or the 28 × 28 of an import), framed red when misread."""
    if picture is not None:
        image = Image.open(io.BytesIO(picture)).convert("RGB")
    else:
        image = Image.fromarray(kept.image).convert("RGB")
    image = image.resize((THUMBNAIL - 6, THUMBNAIL - 6), Image.NEAREST if picture is None else Image.LANCZOS)
    return ImageOps.expand(image, border=3, fill=MISTAKE if mistake else RIGHT)


def _act(action, *args, **kwargs) -> None:
    # Buttons' callbacks: the change is made before the page reruns.
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
        st.session_state.class_message = ("error", f"Nothing was imported: {quoting.naming(str(error), upload.name)}")
        return
    skipped = f" ({report.already_there} the class had already)" if report.already_there else ""
    st.session_state.class_message = ("success", f"Imported {report.added} digits into "
                                                 f"{quoting.literal(class_name)}{skipped}.")
    st.session_state.class_import_version = st.session_state.get("class_import_version", 0) + 1


def _relabel() -> None:
    # Read at the click: the choice made just before it, whatever the last run showed.
    _act(class_digits.relabel, st.session_state.class_relabel_digit, st.session_state.class_relabel_label,
         teacher=people.is_teacher())


def _delete_class(class_name: str) -> None:
    try:
        gone = class_digits.delete_class(class_name, teacher=people.is_teacher())
    except class_digits.ClassDigitsError as error:
        st.session_state.class_message = ("error", str(error))
        return
    st.session_state.class_message = ("success", f"Deleted {quoting.literal(class_name)} and its {gone} digits.")
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


# ------------------------------------------------------------------ sections


def gallery(kept: list[class_digits.KeptDigit], read: np.ndarray, confidence: np.ndarray, model: str,
            class_name: str) -> None:
    pictures = class_digits.pictures(class_name)
    key = people.learner_key()
    for label in range(10):
        shown = [i for i, d in enumerate(kept) if d.label == label]
        if not shown:
            continue
        wrong = sum(read[i] != label for i in shown)
        st.markdown(f"**{label}** · {len(shown)} shown, {model} misreads {wrong} of them")
        row = st.container(horizontal=True, gap="small", key=f"class_label_{label}")
        for i in shown[:PER_LABEL]:
            digit = kept[i]
            with row.container(width=THUMBNAIL + 16, gap=None, key=f"class_digit_{digit.id}"):
                st.image(_thumbnail(digit, pictures.get(digit.id), read[i] != label))
                st.caption(f"reads {read[i]} ({confidence[i]:.0%})")
                teacher = people.is_teacher()  # any digit; a learner, their own
                if teacher or digit.is_own(key):
                    st.button("Delete", key=f"class_delete_{digit.id}", icon=":material/delete:", type="tertiary",
                              help=f"Delete this {label} for good", on_click=_act,
                              args=(class_digits.delete, digit.id), kwargs=dict(key=key, teacher=teacher))
        if len(shown) > PER_LABEL:
            st.caption(f"Showing {PER_LABEL} of {len(shown)}.")


def scores(kept: list[class_digits.KeptDigit], entries: list[store.ZooEntry],
           readings: dict[str, tuple[np.ndarray, np.ndarray]], model: str) -> None:
    st.header("How each model reads the class")
    y = np.array([d.label for d in kept])
    accuracy = {name: float(np.mean(read == y)) for name, (read, _) in readings.items()}
    mnist = {entry.name: entry.test_accuracy for entry in entries if entry.name in readings}
    table = pd.DataFrame({"Model": list(accuracy),
                          "On the class's digits": [f"{a:.1%}" for a in accuracy.values()],
                          "On MNIST test": [f"{mnist[name]:.2%}" for name in accuracy],
                          "Misread": [int(np.sum(readings[name][0] != y)) for name in accuracy]})
    left, right = st.columns(2)
    left.table(table, hide_index=True)
    figure = go.Figure(go.Scatter(
        x=[mnist[name] for name in accuracy], y=list(accuracy.values()), mode="markers+text",
        text=list(accuracy), textposition="top center", marker=dict(size=10, color="#1f5fa8"),
        hovertemplate="%{text}: MNIST %{x:.2%}, class %{y:.1%}<extra></extra>"))
    figure.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), title="Class against MNIST",
                         xaxis=dict(title="MNIST test accuracy", tickformat=".1%"),
                         yaxis=dict(title="accuracy on the class's digits", tickformat=".0%"))
    right.plotly_chart(figure, width="stretch", config={"displayModeBar": False}, key="class_versus_mnist")
    right.caption("Up and to the right is better. Where the order of the points differs from left to right, "
                  "the zoo's ranking breaks on this class's handwriting.")
    matrix = evaluation.confusion_from_predictions(y, readings[model][0])
    heat = go.Figure(go.Heatmap(z=matrix, x=[str(d) for d in range(10)], y=[str(d) for d in range(10)],
                                colorscale="Blues", text=matrix, texttemplate="%{text}",
                                hovertemplate="true %{y} → read %{x}: %{z}<extra></extra>"))
    heat.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), title=f"{model}: confusion matrix",
                       xaxis=dict(title="read as", side="top"), yaxis=dict(title="drawn as", autorange="reversed"))
    st.plotly_chart(heat, width="stretch", config={"displayModeBar": False}, key="class_confusion")


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
        st.caption(f"Running since {current.started:%H:%M} UTC: every version saved since is scored on the "
                   "held-out digits, which learners cannot see or export until you end it. The leaderboard "
                   "is on the [Board](/board).")
        st.button("End the challenge and reveal the held-out digits", key="class_challenge_end",
                  icon=":material/flag:", on_click=_challenge, args=(challenge.end, class_name))
        return
    st.caption("\"The model that reads our handwriting best\": while it runs, every version the class saves "
               "is scored on the class's held-out digits, hidden from learners, and ranked on the "
               "[Board](/board) beside the shipped models."
               + (" The last one ended: the Board shows its result." if current is not None else ""))
    st.button("Start a challenge", key="class_challenge_start", icon=":material/trophy:",
              on_click=_challenge, args=(challenge.start, class_name))


def export_and_import(class_name: str, has_digits: bool) -> None:
    st.header("Export and import")
    if not people.is_teacher():
        st.caption("Only the teacher exports and imports the class's digits (sign in from the sidebar).")
        return
    st.caption("The digits never leave this server except by these exports: 28 × 28 images and labels, "
               "no names.")
    if has_digits:
        slug = "".join(c if c.isalnum() else "_" for c in class_name)
        left, right = st.columns(2)
        with_held_out = not challenge.hides_held_out(class_name)  # a running challenge scores on them
        if not with_held_out:
            st.caption("While the challenge runs, the held-out digits are left out.")
        left.download_button("Export as .npz (x, y)",
                             class_digits.export_npz(class_name, held_out=with_held_out),
                             file_name=f"{slug}.npz", key="class_export_npz", icon=":material/download:",
                             help="Keras-style: x (N, 28, 28) uint8 white on black, y (N,) uint8.")
        right.download_button("Export as .zip (PNGs + CSV)",
                              class_digits.export_zip(class_name, held_out=with_held_out),
                              file_name=f"{slug}.zip", key="class_export_zip", icon=":material/download:",
                              help="train.csv (filename,label) and Images/train/*.png, the tutorial's layout.")
    uploader = f"class_import_{st.session_state.get('class_import_version', 0)}"
    st.file_uploader(f"Import digits into {class_name} (an exported .npz or .zip)", type=["npz", "zip"],
                     key=uploader)
    st.button(f"Import into {class_name}", key="class_import", icon=":material/upload:",
              on_click=_import, args=(class_name, uploader))


def classes_section() -> str:
    class_name = people.class_picker("class_page_class")
    if people.is_teacher():
        with st.expander("Name a new class", icon=":material/group_add:"):
            st.text_input("Class name", key="class_new_name", max_chars=class_digits.MAX_NAME_LENGTH)
            st.button("Create class", key="class_create", on_click=_new_class, args=("class_new_name",))
    return class_name


# ------------------------------------------------------------------ the page

if "class_message" in st.session_state:
    level, text = st.session_state.pop("class_message")
    getattr(st, level)(text)

class_name = classes_section()
try:
    kept = class_digits.digits(class_name)
    hidden = challenge.hides_held_out(class_name) and not people.is_teacher()
except db.DatabaseError as error:
    st.error(f"The class's digits cannot be read: {error}", icon=":material/database:")
    st.stop()
if hidden:  # a running challenge scores on them: no learner sees one
    kept = [d for d in kept if not d.held_out]
if not kept:
    st.info(f"No digits in {quoting.literal(class_name)} yet: draw on Draw or Compare and press "
            "\"Keep this drawing as a …\", or import a class's export below.", icon=":material/draw:")
    export_and_import(class_name, has_digits=False)
    st.stop()

listing = models.zoo()
loaded = models.fast_models(listing)
entries = [entry for entry in listing.entries if entry.name in loaded]
if not entries:
    st.info("No trained models yet: train the zoo with `python -m scripts.train_zoo`.")
    st.stop()
x = np.stack([d.image for d in kept])
readings = {entry.name: _readings(entry.cache_key, x, entry) for entry in entries}

learners = sorted({d.learner for d in kept})
model_column, learner_column, wrong_column = st.columns(3, vertical_alignment="bottom")
model = model_column.selectbox("Model", [entry.name for entry in entries], key="class_model",
                               index=[entry.name for entry in entries].index(models.best_drawing_model(listing))
                               if models.best_drawing_model(listing) in loaded else 0)
learner = learner_column.selectbox("Learner", ["everyone", *learners], key="class_learner")
only_wrong = wrong_column.checkbox(f"Only the ones {model} gets wrong", key="class_only_wrong")
read, confidence = readings[model]
chosen = [i for i, d in enumerate(kept)
          if (learner == "everyone" or d.learner == learner) and (not only_wrong or read[i] != d.label)]
held_out = ("the held-out ones hidden while the challenge runs" if hidden else
            f"{sum(d.held_out for d in kept)} held out to score retrained models (Train: \"add the class's digits\")")
st.caption(f"{len(kept)} digits from {len(learners)} learner{'s' * (len(learners) != 1)}; {held_out}. "
           f"Showing {len(chosen)}, framed red where {model} misreads them.")
gallery([kept[i] for i in chosen], read[chosen], confidence[chosen], model, class_name)
scores(kept, entries, readings, model)
if people.is_teacher():
    relabel(kept)
    challenge_section(class_name)
export_and_import(class_name, has_digits=True)
if people.is_teacher():
    st.subheader("Delete the class")
    confirm = st.checkbox(f"Yes, delete every digit of {class_name} for good", key="class_erase_confirm")
    st.button(f"Delete {class_name}", key="class_erase", disabled=not confirm, icon=":material/delete:",
              on_click=_delete_class, args=(class_name,))
