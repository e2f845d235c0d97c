"""The Zoo page's one model up close: layers, training, confusion matrix, mistakes, download and delete."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from model_zoo import evaluation, model_files, store
from ui import models, people

GALLERY_SIZE = 24
GALLERY_COLUMNS = 8


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


def layers(entry: store.ZooEntry) -> None:
    st.subheader("Layers")
    try:
        rows = evaluation.layer_table(models.fast_model(entry))
    except model_files.ModelFileError as error:
        st.error(str(error))
        return
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        key="zoo_layers",
        column_config={"params": st.column_config.NumberColumn(format="localized")},
    )
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
                [
                    {"epoch": epoch, metric: value, "data": "training"}
                    for epoch, value in zip(epochs, history.get(metric, []))
                ]
                + [
                    {"epoch": epoch, metric: value, "data": "validation"}
                    for epoch, value in zip(epochs, history.get(f"val_{metric}", []))
                ]
            )
            chart = px.line(
                frame, x="epoch", y=metric, color="data", markers=True, title=f"{metric.capitalize()} per epoch"
            )
            if first_stage:
                chart.add_vline(
                    x=first_stage.get("epochs_done", 0) + 0.5, line_dash="dot", annotation_text="pen finish"
                )
            column.plotly_chart(chart, width="stretch", key=f"zoo_history_{metric}")
        captions = [stage_caption(stage) for stage in evaluation.stages(record)]
        if all(captions):
            st.caption(
                " Then, from its weights: ".join(captions)
                + (
                    " At the dotted line the pen versions join training and validation: the curves step "
                    "because the digits got harder, not the model worse."
                    if first_stage
                    else ""
                )
            )
    if record.get("batch_loss"):
        steps, losses = zip(*record["batch_loss"])
        chart = px.line(
            x=steps,
            y=losses,
            labels={"x": "batch", "y": "loss"},
            title=("Loss per batch of the pen finish" if first_stage else "Loss per batch")
            + " (running mean within each epoch)",
        )
        st.plotly_chart(chart, width="stretch", key="zoo_batch_loss")
    if not history.get("loss") and not record.get("batch_loss"):
        st.info("This record has no training curves.")


def stage_caption(record: dict) -> str:
    """ "5 epochs on 54,000 training and 6,000 validation digits (MNIST), batch size 128, adam at ..." """
    settings = record.get("settings", {})
    if not ({"train_digits", "val_digits"} <= record.keys() and settings):
        return ""
    return (
        f"{record.get('epochs_done')} epochs on {record['train_digits']:,} training and "
        f"{record['val_digits']:,} validation digits ({evaluation.trained_on(settings)}), batch size "
        f"{settings.get('batch_size')}, {settings.get('optimizer')} at learning rate "
        f"{settings.get('learning_rate')}"
        + (", stopped early" if record.get("stopped_early") else "")
        + "."
        + pen_caption(record.get("pen_digits"))
    )


def pen_caption(pen: dict | None) -> str:
    """What a model learnt of UNIPEN's real pen strokes, and which writers it never saw."""
    if not pen:
        return ""
    text = (
        f" Among them, {pen['train_digits']:,} real pen-stroke digits of {pen['train_writers']} UNIPEN "
        f"writers, each drawn {pen['renders']} times; {pen['validation_writers']} validation writers "
    )
    if pen.get("validation_accuracy_before") is not None:
        text += f"read {pen['validation_accuracy_before']:.4f} before, "
    return text + (
        f"{pen['validation_accuracy']:.4f} after; {pen['test_writers']} test writers held out (the pen column)."
    )


def confusion_matrix(record: dict) -> None:
    st.subheader("Confusion matrix")
    if "confusion_matrix" not in record:
        st.info("No confusion matrix yet: it needs the MNIST test digits (see above).")
        return
    counts = np.array(record["confusion_matrix"])
    off_diagonal = counts.astype(float)
    np.fill_diagonal(off_diagonal, np.nan)  # colour only the mistakes; the diagonal dwarfs them
    heatmap = go.Figure(
        go.Heatmap(
            z=off_diagonal,
            x=list(range(10)),
            y=list(range(10)),
            text=counts,
            texttemplate="%{text}",
            colorscale="Reds",
            hovertemplate="true %{y}, said %{x}: %{text}<extra></extra>",
            colorbar={"title": "mistakes"},
        )
    )
    heatmap.update_layout(
        xaxis_title="predicted digit",
        yaxis_title="true digit",
        xaxis={"dtick": 1, "side": "top"},
        yaxis={"dtick": 1, "autorange": "reversed"},
        height=480,
        margin={"t": 60},
    )
    st.plotly_chart(heatmap, width="stretch", key="zoo_confusion")
    correct = int(np.trace(counts))
    st.caption(
        f"The {counts.sum():,} MNIST test digits: {correct:,} read correctly (the diagonal, "
        f"not coloured), {counts.sum() - correct:,} mistakes."
    )


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
        zip(wrong.indices, wrong.true, wrong.predicted, wrong.confidence)
    ):
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
        st.caption(
            "Shipped models cannot be deleted: they are the zoo every page compares against. "
            "Versions you train on the Train page can be."
        )
        return
    if not store.may_delete(entry, people.job_keys(), teacher=people.is_teacher()):
        st.caption(
            "Only the learner who trained this version (in this browser session, or from its job's "
            "link) or the teacher can delete it (sign in from the sidebar)."
        )
        return
    confirm = st.checkbox(f"Yes, delete {entry.name} for good", key="zoo_confirm_delete")
    st.button(
        "Delete this version",
        key="zoo_delete",
        disabled=not confirm,
        type="primary",
        on_click=_delete,
        args=(entry,),
        icon=":material/delete:",
    )


def _delete(entry: store.ZooEntry) -> None:
    try:
        store.delete_version(entry, people.job_keys(), teacher=people.is_teacher())
    except (store.VersionError, OSError) as error:
        st.session_state["zoo_message"] = ("error", f"Could not delete {entry.name}: {error}")
        return
    st.session_state["zoo_message"] = ("success", f"Deleted {entry.name}.")
    st.session_state.pop("zoo_model", None)  # back to the first model
    st.session_state.pop("zoo_confirm_delete", None)
