"""The Class page's digits as each model reads them: cached readings, the gallery, the scores."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image, ImageOps

from model_zoo import class_digits, evaluation, store
from ui import models, people
from ui.class_admin import act

PER_LABEL = 40  # thumbnails shown per digit; the counts and scores use them all
THUMBNAIL = 84  # px
MISTAKE, RIGHT = (228, 87, 46), (200, 200, 200)  # thumbnail frames


@st.cache_data(show_spinner=False, max_entries=64)
def readings(model_key: str, x: np.ndarray, _entry: store.ZooEntry) -> tuple[np.ndarray, np.ndarray]:
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


def gallery(
    kept: list[class_digits.KeptDigit], read: np.ndarray, confidence: np.ndarray, model: str, class_name: str
) -> None:
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
                    st.button(
                        "Delete",
                        key=f"class_delete_{digit.id}",
                        icon=":material/delete:",
                        type="tertiary",
                        help=f"Delete this {label} for good",
                        on_click=act,
                        args=(class_digits.delete, digit.id),
                        kwargs=dict(key=key, teacher=teacher),
                    )
        if len(shown) > PER_LABEL:
            st.caption(f"Showing {PER_LABEL} of {len(shown)}.")


def scores(
    kept: list[class_digits.KeptDigit],
    entries: list[store.ZooEntry],
    readings: dict[str, tuple[np.ndarray, np.ndarray]],
    model: str,
) -> None:
    st.header("How each model reads the class")
    y = np.array([d.label for d in kept])
    accuracy = {name: float(np.mean(read == y)) for name, (read, _) in readings.items()}
    mnist = {entry.name: entry.test_accuracy for entry in entries if entry.name in readings}
    table = pd.DataFrame(
        {
            "Model": list(accuracy),
            "On the class's digits": [f"{a:.1%}" for a in accuracy.values()],
            "On MNIST test": [f"{mnist[name]:.2%}" for name in accuracy],
            "Misread": [int(np.sum(readings[name][0] != y)) for name in accuracy],
        }
    )
    left, right = st.columns(2)
    left.table(table, hide_index=True)
    figure = go.Figure(
        go.Scatter(
            x=[mnist[name] for name in accuracy],
            y=list(accuracy.values()),
            mode="markers+text",
            text=list(accuracy),
            textposition="top center",
            marker=dict(size=10, color="#1f5fa8"),
            hovertemplate="%{text}: MNIST %{x:.2%}, class %{y:.1%}<extra></extra>",
        )
    )
    figure.update_layout(
        height=360,
        margin=dict(l=10, r=10, t=30, b=10),
        title="Class against MNIST",
        xaxis=dict(title="MNIST test accuracy", tickformat=".1%"),
        yaxis=dict(title="accuracy on the class's digits", tickformat=".0%"),
    )
    right.plotly_chart(figure, width="stretch", config={"displayModeBar": False}, key="class_versus_mnist")
    right.caption(
        "Up and to the right is better. Where the order of the points differs from left to right, "
        "the zoo's ranking breaks on this class's handwriting."
    )
    matrix = evaluation.confusion_from_predictions(y, readings[model][0])
    heat = go.Figure(
        go.Heatmap(
            z=matrix,
            x=[str(d) for d in range(10)],
            y=[str(d) for d in range(10)],
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            hovertemplate="true %{y} → read %{x}: %{z}<extra></extra>",
        )
    )
    heat.update_layout(
        height=380,
        margin=dict(l=10, r=10, t=30, b=10),
        title=f"{model}: confusion matrix",
        xaxis=dict(title="read as", side="top"),
        yaxis=dict(title="drawn as", autorange="reversed"),
    )
    st.plotly_chart(heat, width="stretch", config={"displayModeBar": False}, key="class_confusion")
