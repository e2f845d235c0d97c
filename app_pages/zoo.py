"""Zoo: every model's record — accuracy, size, training, robustness, mistakes."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from model_zoo import data, evaluation, store
from ui import models, people

GALLERY_SIZE = 24
GALLERY_COLUMNS = 8

st.title("Zoo")
st.write("Every model's record: how accurate, how big and how fast to train it is, how it copes "
         "with digits drawn off-centre, rotated, small or thick, and which test digits it gets wrong.")


# ------------------------------------------------------------------ data and cached results


@st.cache_resource(ttl=60, show_spinner="Reading the MNIST test digits…")
def _mnist_test(mnist_path: str | None) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
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
def _evaluated_record(model_key: str, usps: bool, _entry: store.ZooEntry,
                      _mnist: tuple[np.ndarray, np.ndarray]) -> dict:
    """The record with its missing computed fields, once per model (its cache key).

    A user version keeps them in its record; a shipped model's live in this cache.
    """
    return evaluation.ensure_evaluated(_entry, model=models.fast_model(_entry), mnist=_mnist,
                                       with_usps=usps).record


def evaluated(entry: store.ZooEntry, mnist, usps: bool) -> store.ZooEntry:
    """The entry with confusion matrix, mistakes, robustness (and USPS) where they can be had."""
    if mnist is None or not evaluation.missing_fields(entry, usps=usps):
        return entry  # warm: everything is in the record (or MNIST is missing)
    try:
        with st.spinner(f"Scoring {entry.name} on the test set and on distorted digits (once per model; "
                        "the first time, TensorFlow loads for the distortions)…"):
            record = _evaluated_record(entry.cache_key, usps, entry, mnist)
    except (store.ModelFileError, data.DataError) as error:
        st.error(f"Could not score {entry.name}: {error}")
        return entry
    return entry.with_record(record)


def _delete(entry: store.ZooEntry) -> None:
    try:
        store.delete_version(entry, people.job_keys(), teacher=people.is_teacher())
    except (store.VersionError, OSError) as error:
        st.session_state["zoo_message"] = ("error", f"Could not delete {entry.name}: {error}")
        return
    st.session_state["zoo_message"] = ("success", f"Deleted {entry.name}.")
    st.session_state.pop("zoo_model", None)  # back to the first model
    st.session_state.pop("zoo_confirm_delete", None)


# ------------------------------------------------------------------ sections


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
        table, hide_index=True, width="stretch", key="zoo_table",
        column_config={
            "params": st.column_config.NumberColumn(format="localized"),
            "train s/epoch": st.column_config.NumberColumn(format="%.1f"),
            "MNIST test": accuracy_format, "tutorial": accuracy_format, "USPS test": accuracy_format,
            "drawn": accuracy_format, "pen": accuracy_format,
            "difference": st.column_config.NumberColumn(format="%+.4f",
                                                         help="MNIST test minus the tutorial's accuracy"),
        })
    st.caption(TABLE_CAPTION)
    scatter = px.scatter(table, x="params", y="MNIST test", text="model", color="origin", log_x=True,
                         labels={"params": "parameters (log scale)", "MNIST test": "MNIST test accuracy"},
                         title="Accuracy against size")
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
    "with the canvas's round pen; UNIPEN writers: the other writers' pen strokes.")


def robustness(entries: list[store.ZooEntry], mnist) -> None:
    """Accuracy on shifted, rotated, scaled and thickened digits, model by model."""
    st.header("Robustness: digits as people draw them")
    st.write("An MLP learns each pixel's place, so a digit moved by two or three pixels is a new picture "
             "to it and its accuracy collapses; a CNN slides the same small filters over the whole image "
             "and forgives small moves, and `cnn_robust`, trained on shifted, rotated, scaled and "
             "thickened digits, holds on the longest.")
    curves = [(entry, entry.record["robustness"]) for entry in entries if "robustness" in entry.record]
    if curves:
        setup = evaluation.ROBUSTNESS_SETUP
        st.caption(f"Accuracy on a fixed random subset of {setup['digits']:,} MNIST test digits (seed "
                   f"{setup['seed']}), each shifted by the given distance in a random direction, rotated "
                   "by the given angle either way, scaled about the centre, or drawn thinner/thicker. "
                   "Solid lines: CNNs; dashed: MLPs.")
        dashes = {entry.name: "dash" if entry.arch.family == "mlp" else "solid" for entry, _ in curves}
        columns = st.columns(2)
        for i, distortion in enumerate(evaluation.DISTORTIONS):
            frame = pd.DataFrame([{"model": entry.name, "value": value, "accuracy": score}
                                  for entry, curve in curves for value, score in curve[distortion]])
            chart = px.line(frame, x="value", y="accuracy", color="model", markers=True,
                            labels={"value": evaluation.DISTORTION_LABELS[distortion]}, range_y=[0, 1.02],
                            title=distortion.capitalize())
            chart.for_each_trace(lambda trace: trace.update(line_dash=dashes[trace.name]))
            chart.update_layout(legend={"title_text": "", "orientation": "h", "y": -0.25},
                                margin={"t": 40, "b": 10}, height=480)
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
                    st.image([sets.image(i) for i, _ in points], width=56,
                             caption=[f"{value:g}" for _, value in points])
    missing = [entry.name for entry in entries if "robustness" not in entry.record]
    if curves and missing:
        st.caption(f"No curves for: {', '.join(missing)}.")


def layers(entry: store.ZooEntry) -> None:
    st.subheader("Layers")
    try:
        rows = evaluation.layer_table(models.fast_model(entry))
    except store.ModelFileError as error:
        st.error(str(error))
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="zoo_layers",
                 column_config={"params": st.column_config.NumberColumn(format="localized")})
    st.caption(f"{sum(row['params'] for row in rows):,} parameters. N is the batch: any number of digits.")


def training_curves(record: dict) -> None:
    st.subheader("Training")
    history = evaluation.whole_history(record)
    first_stage = record.get("first_stage")
    if history.get("loss"):
        epochs = range(1, len(history["loss"]) + 1)
        left, right = st.columns(2)
        for column, metric in ((left, "loss"), (right, "accuracy")):
            frame = pd.DataFrame(
                [{"epoch": epoch, metric: value, "data": "training"}
                 for epoch, value in zip(epochs, history.get(metric, []))]
                + [{"epoch": epoch, metric: value, "data": "validation"}
                   for epoch, value in zip(epochs, history.get(f"val_{metric}", []))])
            chart = px.line(frame, x="epoch", y=metric, color="data", markers=True,
                            title=f"{metric.capitalize()} per epoch")
            if first_stage:
                chart.add_vline(x=first_stage.get("epochs_done", 0) + 0.5, line_dash="dot",
                                annotation_text="pen finish")
            column.plotly_chart(chart, width="stretch", key=f"zoo_history_{metric}")
        captions = [stage_caption(stage) for stage in evaluation.stages(record)]
        if all(captions):
            st.caption(" Then, from its weights: ".join(captions) + (
                " At the dotted line the pen versions join training and validation: the curves step "
                "because the digits got harder, not the model worse." if first_stage else ""))
    if record.get("batch_loss"):
        steps, losses = zip(*record["batch_loss"])
        chart = px.line(x=steps, y=losses, labels={"x": "batch", "y": "loss"},
                        title=("Loss per batch of the pen finish" if first_stage else "Loss per batch")
                        + " (running mean within each epoch)")
        st.plotly_chart(chart, width="stretch", key="zoo_batch_loss")
    if not history.get("loss") and not record.get("batch_loss"):
        st.info("This record has no training curves.")


def stage_caption(record: dict) -> str:
    """ "5 epochs on 54,000 training and 6,000 validation digits (MNIST), batch size 128, adam at ..." """
    settings = record.get("settings", {})
    if not ({"train_digits", "val_digits"} <= record.keys() and settings):
        return ""
    return (f"{record.get('epochs_done')} epochs on {record['train_digits']:,} training and "
            f"{record['val_digits']:,} validation digits ({evaluation.trained_on(settings)}), batch size "
            f"{settings.get('batch_size')}, {settings.get('optimizer')} at learning rate "
            f"{settings.get('learning_rate')}" + (", stopped early" if record.get("stopped_early") else "") + "."
            + pen_caption(record.get("pen_digits")))


def pen_caption(pen: dict | None) -> str:
    """What a model learnt of UNIPEN's real pen strokes, and which writers it never saw."""
    if not pen:
        return ""
    text = (f" Among them, {pen['train_digits']:,} real pen-stroke digits of {pen['train_writers']} UNIPEN "
            f"writers, each drawn {pen['renders']} times; {pen['validation_writers']} validation writers ")
    if pen.get("validation_accuracy_before") is not None:
        text += f"read {pen['validation_accuracy_before']:.4f} before, "
    return text + (f"{pen['validation_accuracy']:.4f} after; {pen['test_writers']} test writers held out "
                   "(the pen column).")


def confusion_matrix(record: dict) -> None:
    st.subheader("Confusion matrix")
    if "confusion_matrix" not in record:
        st.info("No confusion matrix yet: it needs the MNIST test digits (see above).")
        return
    counts = np.array(record["confusion_matrix"])
    off_diagonal = counts.astype(float)
    np.fill_diagonal(off_diagonal, np.nan)  # colour only the mistakes; the diagonal dwarfs them
    heatmap = go.Figure(go.Heatmap(
        z=off_diagonal, x=list(range(10)), y=list(range(10)), text=counts, texttemplate="%{text}",
        colorscale="Reds", hovertemplate="true %{y}, said %{x}: %{text}<extra></extra>",
        colorbar={"title": "mistakes"}))
    heatmap.update_layout(xaxis_title="predicted digit", yaxis_title="true digit",
                          xaxis={"dtick": 1, "side": "top"}, yaxis={"dtick": 1, "autorange": "reversed"},
                          height=480, margin={"t": 60})
    st.plotly_chart(heatmap, width="stretch", key="zoo_confusion")
    correct = int(np.trace(counts))
    st.caption(f"The {counts.sum():,} MNIST test digits: {correct:,} read correctly (the diagonal, "
               f"not coloured), {counts.sum() - correct:,} mistakes.")


def mistakes(record: dict, mnist) -> None:
    st.subheader("Mistakes")
    if mnist is None:
        st.info("The gallery of mistakes needs the MNIST test digits (see above).")
        return
    if "mistakes" not in record:
        return
    wrong = evaluation.Mistakes.from_record(record["mistakes"][:GALLERY_SIZE])
    if len(wrong) == 0:
        st.write("No mistakes on the test set.")
    x_test = mnist[0]
    columns = st.columns(GALLERY_COLUMNS)
    for i, (index, true, said, confidence) in enumerate(
            zip(wrong.indices, wrong.true, wrong.predicted, wrong.confidence)):
        big = np.kron(x_test[index], np.ones((3, 3), np.uint8))  # 84 × 84, sharp pixels
        columns[i % GALLERY_COLUMNS].image(big, caption=f"true {true} → said {said} ({confidence:.0%})")
    st.caption(f"The first {len(wrong)} test digits this model gets wrong, in test-set order.")


def take_home(entry: store.ZooEntry) -> None:
    st.subheader("Take it home")
    card = models.download_model(entry, key="zoo")
    with st.expander("The model card"):
        st.markdown(card)


def delete(entry: store.ZooEntry) -> None:
    st.subheader("Delete")
    if entry.shipped:
        st.caption("Shipped models cannot be deleted: they are the zoo every page compares against. "
                   "Versions you train on the Train page can be.")
        return
    if not store.may_delete(entry, people.job_keys(), teacher=people.is_teacher()):
        st.caption("Only the learner who trained this version (in this browser session, or from its job's "
                   "link) or the teacher can delete it (sign in from the sidebar).")
        return
    confirm = st.checkbox(f"Yes, delete {entry.name} for good", key="zoo_confirm_delete")
    st.button("Delete this version", key="zoo_delete", disabled=not confirm, type="primary",
              on_click=_delete, args=(entry,), icon=":material/delete:")


def one_model(entries: list[store.ZooEntry], mnist) -> None:
    """One model up close: its layers, training, confusion matrix and mistakes."""
    st.header("One model up close")
    names = [entry.name for entry in entries]
    by_name = {entry.name: entry for entry in entries}
    if st.session_state.get("zoo_model") not in names:
        st.session_state["zoo_model"] = names[0]
    name = st.selectbox("Model", names, key="zoo_model", format_func=lambda n: models.label(by_name[n]))
    entry = by_name[name]
    st.markdown(f"**{entry.arch.summary}** · {entry.origin}")
    if entry.arch.lesson:
        st.markdown(entry.arch.lesson)
    layers(entry)
    training_curves(entry.record)
    confusion_matrix(entry.record)
    mistakes(entry.record, mnist)
    take_home(entry)
    delete(entry)


def unusable(listing: store.ZooListing) -> None:
    """Models no page runs, with the reason: a class sees why a version is missing from the pickers."""
    if not listing.unusable:
        return
    st.header("Models that cannot be used")
    st.dataframe([{"model": name, "why": why} for name, why in listing.unusable.items()],
                 hide_index=True, width="stretch", key="zoo_unusable")
    st.caption("Draw, Compare and Inside leave these out. A teacher deletes versions from the database; "
               "a shipped file is replaced by training it again (python -m scripts.train_zoo).")


# ------------------------------------------------------------------ the page

if "zoo_message" in st.session_state:
    level, text = st.session_state.pop("zoo_message")
    getattr(st, level)(text)

listing = models.zoo(mention_unusable=False)
unusable(listing)
if not listing.entries:
    st.info("No models in the zoo yet. Train them with `python -m scripts.train_zoo`.")
    st.stop()

mnist, mnist_problem = _mnist_test(os.environ.get("MNIST_PATH"))
if mnist is None:
    st.info("The MNIST test digits were not found, so the table below comes from the models' "
            "records and some charts are missing. Put mnist.npz in the project's data/ folder "
            f"or start the app with MNIST_PATH=/path/to/mnist.npz.\n\n({mnist_problem})",
            icon=":material/info:")
with_usps = usps_found()
entries = [evaluated(entry, mnist, with_usps) for entry in listing.entries]
zoo_table(entries)
robustness(entries, mnist)
one_model(entries, mnist)
