"""Inside: what each layer of a model makes of a drawing, and which strokes decided."""

import time

import numpy as np
import streamlit as st

from model_zoo import inference, inside, model_files, store
from ui import canvas, models, why

TEMPLATES_SHOWN = 8  # an MLP's first-layer units shown as weight pictures

st.title("Inside")
st.write(
    "Draw a digit and look inside a model: what each layer makes of it, and which strokes made it say what it says."
)


def second_model_picker(listing: store.ZooListing, first: store.ZooEntry) -> store.ZooEntry:
    """The model shown beside the first; by default the other family (an MLP beside a CNN)."""
    names = [name for name in listing.names if name != first.name]
    if st.session_state.get("inside_other") not in names:
        wanted = "mlp_1x50" if first.arch.family != "mlp" else "cnn"
        st.session_state["inside_other"] = wanted if wanted in names else names[0]
    labels = {entry.name: models.label(entry) for entry in listing.entries}
    return listing.get(st.selectbox("Beside it", names, key="inside_other", format_func=labels.get))


def show_stage(stage: inside.Stage, model: inference.FastModel, first_conv: bool) -> None:
    """One stage's picture and its caption; the first convolution's filters, an MLP's templates."""
    st.markdown(f"`{stage.name}` · {stage.shape}")
    if stage.kind == "dense":
        st.image(inside.units_picture(stage))
        firing = int((stage.output > 0).sum())
        st.caption(
            f"Each square is one unit, in the layer's order; bright ones fire on this digit: "
            f"{firing} of {stage.output.size}. The next layer reads only this pattern."
        )
        templates = inside.pixel_templates(model)
        if templates is not None and templates[0] == stage.layers[0]:
            top = stage.strongest_first()[:TEMPLATES_SHOWN]
            st.image(inside.templates_picture(templates[1][top]))
            st.caption(
                f"The {len(top)} units of {templates[0]} that fire most here (units "
                f"{', '.join(map(str, top))}), as the weight each gives the 784 pixels: red, ink "
                "there excites the unit; blue, it holds it back. Each is a template nailed to "
                "the pixel grid: move the digit and its ink lands on other weights, which is "
                "why an MLP fails on off-centre digits."
            )
        return
    st.image(inside.maps_picture(stage))
    channels = stage.output.shape[-1]
    if stage.kind == "pool":
        st.caption(
            f"Max pooling keeps the strongest answer in each 2 × 2 square: the {channels} maps "
            "at half the size, and a stroke moved by a pixel gives much the same map."
        )
    elif first_conv:
        st.caption(
            f"{channels} feature maps, strongest first: each is one small filter slid over the "
            "whole digit, bright where it found its kind of stroke (an edge, a bar at some angle)."
        )
    else:
        st.caption(
            f"{channels} maps, strongest first, each a filter over all the maps before it: "
            "strokes combine into the parts of a digit (a loop, a corner, a crossing)."
        )
    filters = inside.first_filters(model) if first_conv else None
    if filters is not None:
        st.image(inside.filters_picture(filters, stage))
        size = "×".join(map(str, filters.shape[1:]))
        st.caption(
            f"The {len(filters)} learned {size} filters of {stage.layers[0]}, each in the place "
            "of its map above: red, ink there adds; blue, it subtracts. The same filter slides "
            "over every place, so a stroke is found wherever it is: why a CNN does not care "
            "where the digit is."
        )


def show_model(entry: store.ZooEntry, model: inference.FastModel, image: np.ndarray, saliency: bool) -> None:
    prediction = model.predict(image)
    st.subheader(f"{entry.name} reads {prediction.digit}", anchor=False)
    st.caption(f"{prediction.confidence:.1%} sure. {entry.arch.summary}.")
    st.markdown("**Why this digit**")
    why.show_why(entry, model, image, saliency=saliency)
    st.markdown("**Layer by layer**")
    stages = inside.stages(model, image)
    first_conv = next((s for s in stages if s.kind == "conv"), None)
    for stage in stages:
        show_stage(stage, model, stage is first_conv)


listing = models.zoo()
if not listing.entries:
    st.info("No trained models yet: train the zoo with `python -m scripts.train_zoo`.")
    st.stop()

picker_column, pair_column, other_column = st.columns([3, 2, 3], vertical_alignment="bottom")
with picker_column:
    entries = [models.model_picker(listing, key="inside_model")]
side_by_side = pair_column.toggle(
    "Side by side", key="inside_pair", help="A second model beside the first, on the same digit."
)
if side_by_side and len(listing.entries) > 1:
    with other_column:
        entries.append(second_model_picker(listing, entries[0]))
try:
    loaded = [models.fast_model(entry) for entry in entries]
except model_files.ModelFileError as error:
    st.error(str(error), icon=":material/error:")
    st.stop()


# A fragment: a stroke reruns the canvas and its answer, not the page around them (docs/performance.md).
@st.fragment
def drawing(entries: list[store.ZooEntry], loaded: list[inference.FastModel]) -> None:
    """The canvas, the model input, and each model's panels on that drawing."""
    # The canvas beside the model input (wrapping on narrow screens), the panels under both.
    row = st.container(horizontal=True, gap="medium")
    draw_box, results = row.container(width=canvas.CANVAS_SIZE + 20), row.container(width=480)
    with draw_box:
        digit = canvas.digit_from_canvas_or_upload("inside", messages=results)
    if digit is None:
        return

    with results:
        with st.container(width=200):  # the 28 × 28 enlarged 5 times, not stretched to the box
            canvas.show_model_input(digit.image)
        saliency = st.toggle(
            "Saliency maps",
            key="inside_saliency",
            help="Integrated gradients: computed on demand, up to a second on 2 cores.",
        )

    started = time.perf_counter()
    for column, entry, model in zip(st.columns(len(entries), gap="large"), entries, loaded):
        with column:
            show_model(entry, model, digit.image, saliency)
    # Written last: once it names the latest drawing, every panel above shows it.
    st.caption(
        f"Inside {' and '.join(e.name for e in entries)} on {digit.source}, "
        f"in {(time.perf_counter() - started) * 1000:.0f} ms."
    )


drawing(entries, loaded)
