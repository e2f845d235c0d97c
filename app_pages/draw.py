"""Draw: one digit, one model, its ten probabilities updated after every stroke."""

import plotly.graph_objects as go
import streamlit as st

from model_zoo import inference, model_files, store
from ui import canvas, keep, models, why

st.title("Draw")
st.write("Draw a digit with the mouse or a finger and watch a neural network read it, stroke by stroke.")

listing = models.zoo()
if not listing.entries:
    st.info("No trained models yet: train the zoo with `python -m scripts.train_zoo`.")
    st.stop()

picker_column, note_column = st.columns([2, 3], vertical_alignment="bottom")
with picker_column:
    entry = models.model_picker(listing)
if note := models.note(entry):
    note_column.caption(note)
try:
    model = models.fast_model(entry)
except model_files.ModelFileError as error:
    st.error(str(error), icon=":material/error:")
    st.stop()


# A fragment: a stroke reruns the canvas and its answer, not the page around them (docs/performance.md).
@st.fragment
def drawing(entry: store.ZooEntry, model: inference.FastModel, listing: store.ZooListing) -> None:
    """The canvas and everything it answers: the glance, the chart, the keep buttons, the why panel."""
    layout = canvas.drawing_layout("draw")
    with layout.canvas:
        digit = canvas.digit_from_canvas_or_upload("draw", messages=layout.results)
    if digit is None:
        canvas.glance_digit(layout.glance, None)
        with layout.results:
            keep.keep_counter("draw")
        return

    prediction = model.predict(digit.image)
    canvas.glance_digit(layout.glance, prediction)
    top = prediction.digit
    # One dict, not go.Bar and update_layout: the same figure, validated once, at a third of the CPU.
    figure = go.Figure(
        {
            "data": [
                {
                    "type": "bar",
                    "x": list(range(10)),
                    "y": prediction.probabilities,
                    "marker": {"color": ["#e4572e" if d == top else "#9bb3c9" for d in range(10)]},
                    "hovertemplate": "%{x}: %{y:.1%}<extra></extra>",
                }
            ],
            "layout": {
                "height": 300,
                "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
                "showlegend": False,
                "xaxis": {"tickmode": "linear", "title": {"text": "digit"}},
                "yaxis": {"range": [0, 1], "tickformat": ".0%", "title": {"text": "probability"}},
            },
        }
    )

    with layout.results:
        seen, prediction_metric, confidence_metric = st.columns([3, 2, 2], vertical_alignment="center")
        with seen:
            canvas.show_model_input(digit.image)
        prediction_metric.metric("Prediction", top)
        confidence_metric.metric("Confidence", f"{prediction.confidence:.0%}")
        keep.keep_drawing("draw", digit, top, listing)
        st.plotly_chart(figure, width="stretch", config={"displayModeBar": False})
        # Written last: when this line shows the latest stroke count, so does the metric above.
        st.caption(f"{entry.name} read {digit.source} in {prediction.seconds * 1000:.2f} ms.")

    # Collapsed: only a reader who opens it pays for its maps.
    why.why_panel(entry, model, digit.image)


drawing(entry, model, listing)
