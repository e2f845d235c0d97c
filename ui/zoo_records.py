"""The Zoo page's records of every model: scored once per model, the table, robustness, the unusable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from model_zoo import data, evaluation, model_files, store
from ui import models


@st.cache_resource(ttl=60, show_spinner="Reading the MNIST test digits…")
def mnist_test(mnist_path: str | None) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """The MNIST test set, or None and the reason. Cached a minute, so a failed look-up
    (which may try a download) is not repeated on every rerun, and a file put in place is found.
    ``mnist_path`` ($MNIST_PATH) is only the cache key: model_zoo.data reads it itself."""
    try:
        return evaluation.mnist_test(), ""
    except data.DataError as error:
        return None, str(error)


def usps_found() -> bool:
    """Whether usps.npz is there; a USPS_PATH naming no file is said once, not per model."""
    try:
        return data.find_usps() is not None
    except data.DataError as error:
        st.warning(f"{error} USPS accuracy is not computed until then.")
        return False


@st.cache_data(show_spinner=False, max_entries=256)
def _evaluated_record(
    model_key: str, usps: bool, _entry: store.ZooEntry, _mnist: tuple[np.ndarray, np.ndarray]
) -> dict:
    """The record with its missing computed fields, once per model (its cache key).

    A user version keeps them in its record; a shipped model's live in this cache.
    """
    return evaluation.ensure_evaluated(_entry, model=models.fast_model(_entry), mnist=_mnist, with_usps=usps).record


def evaluated(entry: store.ZooEntry, mnist, usps: bool) -> store.ZooEntry:
    """The entry with confusion matrix, mistakes, robustness (and USPS) where they can be had."""
    if mnist is None or not evaluation.missing_fields(entry, usps=usps):
        return entry  # warm: everything is in the record (or MNIST is missing)
    try:
        with st.spinner(
            f"Scoring {entry.name} on the test set and on distorted digits (once per model; "
            "the first time, TensorFlow loads for the distortions)…"
        ):
            record = _evaluated_record(entry.cache_key, usps, entry, mnist)
    except (model_files.ModelFileError, data.DataError) as error:
        st.error(f"Could not score {entry.name}: {error}")
        return entry
    return entry.with_record(record)


def zoo_table(entries: list[store.ZooEntry]) -> None:
    """The table of every model, and accuracy against size."""
    st.header("The zoo table")
    rows = [evaluation.table_row(entry) for entry in entries]
    table = pd.DataFrame(rows).rename(columns=evaluation.TABLE_HEADERS)
    for column in ("USPS test", "drawn", "pen"):
        if table[column].isna().all():
            table = table.drop(columns=column)
    accuracy_format = st.column_config.NumberColumn(format="%.4f")
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key="zoo_table",
        column_config={
            "params": st.column_config.NumberColumn(format="localized"),
            "train s/epoch": st.column_config.NumberColumn(format="%.1f"),
            "MNIST test": accuracy_format,
            "tutorial": accuracy_format,
            "USPS test": accuracy_format,
            "drawn": accuracy_format,
            "pen": accuracy_format,
            "difference": st.column_config.NumberColumn(
                format="%+.4f", help="MNIST test minus the tutorial's accuracy"
            ),
        },
    )
    st.caption(TABLE_CAPTION)
    scatter = px.scatter(
        table,
        x="params",
        y="MNIST test",
        text="model",
        color="origin",
        log_x=True,
        labels={"params": "parameters (log scale)", "MNIST test": "MNIST test accuracy"},
        title="Accuracy against size",
    )
    scatter.update_traces(textposition="top center", marker_size=10)
    st.plotly_chart(scatter, width="stretch", key="zoo_scatter")


TABLE_CAPTION = (
    "MNIST test: the 10,000 test digits, never seen in training. Tutorial: the validation "
    "accuracy the 2017 tutorial reported for the same model. USPS test: 2,007 postal-code "
    "digits written by other people, never seen in training. For a model trained on MNIST "
    "alone it checks that it reads handwriting that is not MNIST; a model that also "
    "learned from USPS's training digits has met that style of handwriting before. "
    "Drawn: digits drawn with the mouse on this app's canvas in many styles (0s, 6s and 9s "
    "whose loop runs past its start, 4s and 5s in two strokes, crossed 7s, European 1s…), "
    "never trained on. Pen: real people's pen strokes, digits written on tablets by UNIPEN's test "
    "writers (a fifth of its writers, whose digits no model trained on or was chosen by), drawn "
    "with this canvas's pen at random sizes and places. Pen strokes: the training digits redrawn "
    "with the canvas's round pen; UNIPEN writers: the other writers' pen strokes."
)


def robustness(entries: list[store.ZooEntry], mnist) -> None:
    """Accuracy on shifted, rotated, scaled and thickened digits, model by model."""
    st.header("Robustness: digits as people draw them")
    st.write(
        "An MLP learns each pixel's place, so a digit moved by two or three pixels is a new picture "
        "to it and its accuracy collapses; a CNN slides the same small filters over the whole image "
        "and forgives small moves, and `cnn_robust`, trained on shifted, rotated, scaled and "
        "thickened digits, holds on the longest."
    )
    curves = [(entry, entry.record["robustness"]) for entry in entries if "robustness" in entry.record]
    if curves:
        setup = evaluation.ROBUSTNESS_SETUP
        st.caption(
            f"Accuracy on a fixed random subset of {setup['digits']:,} MNIST test digits (seed "
            f"{setup['seed']}), each shifted by the given distance in a random direction, rotated "
            "by the given angle either way, scaled about the centre, or drawn thinner/thicker. "
            "Solid lines: CNNs; dashed: MLPs."
        )
        dashes = {entry.name: "dash" if entry.arch.family == "mlp" else "solid" for entry, _ in curves}
        columns = st.columns(2)
        for i, distortion in enumerate(evaluation.DISTORTIONS):
            frame = pd.DataFrame(
                [
                    {"model": entry.name, "value": value, "accuracy": score}
                    for entry, curve in curves
                    for value, score in curve[distortion]
                ]
            )
            chart = px.line(
                frame,
                x="value",
                y="accuracy",
                color="model",
                markers=True,
                labels={"value": evaluation.DISTORTION_LABELS[distortion]},
                range_y=[0, 1.02],
                title=distortion.capitalize(),
            )
            chart.for_each_trace(lambda trace: trace.update(line_dash=dashes[trace.name]))
            chart.update_layout(
                legend={"title_text": "", "orientation": "h", "y": -0.25}, margin={"t": 40, "b": 10}, height=480
            )
            columns[i % 2].plotly_chart(chart, width="stretch", key=f"zoo_robustness_{distortion}")
    else:
        st.info("No robustness curves yet: they need the MNIST test digits (see above).")
    if mnist is not None:
        # Computed only once opened: the distortions need TensorFlow, which the server loads on demand.
        panel = st.expander("What the distorted digits look like", key="zoo_distorted", on_change="rerun")
        if panel.open:
            with panel:
                with st.spinner("Distorting the test digits (the first time, TensorFlow loads: seconds)…"):
                    sets = evaluation.distorted_sets(*mnist)
                for distortion in evaluation.DISTORTIONS:
                    points = [(i, value) for i, (d, value) in enumerate(sets.points) if d == distortion]
                    st.caption(evaluation.DISTORTION_LABELS[distortion].capitalize())
                    st.image(
                        [sets.image(i) for i, _ in points], width=56, caption=[f"{value:g}" for _, value in points]
                    )
    missing = [entry.name for entry in entries if "robustness" not in entry.record]
    if curves and missing:
        st.caption(f"No curves for: {', '.join(missing)}.")


def unusable(listing: store.ZooListing) -> None:
    """Models no page runs, with the reason: a class sees why a version is missing from the pickers."""
    if not listing.unusable:
        return
    st.header("Models that cannot be used")
    st.dataframe(
        [{"model": name, "why": why} for name, why in listing.unusable.items()],
        hide_index=True,
        width="stretch",
        key="zoo_unusable",
    )
    st.caption(
        "Draw, Compare and Inside leave these out. A teacher deletes versions from the database; "
        "a shipped file is replaced by training it again (python -m scripts.train_zoo)."
    )
