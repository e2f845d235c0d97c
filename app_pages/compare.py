"""Compare: every model in the zoo on the same drawing, side by side."""

from collections import Counter

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from model_zoo import inference, store
from ui import canvas, keep, models

st.title("Compare")
st.write("Draw one digit and see how every model in the zoo reads it, and where they disagree.")

listing = models.zoo()
loaded = models.fast_models(listing)
if not loaded:
    st.info("No trained models yet: train the zoo with `python -m scripts.train_zoo`.")
    st.stop()


# A fragment: a stroke reruns the canvas and its answer, not the page around them (docs/performance.md).
@st.fragment
def drawing(listing: store.ZooListing, loaded: dict[str, inference.FastModel]) -> None:
    """The canvas and every model's reading of it: the glance, the verdict, the table, the heatmap."""
    layout = canvas.drawing_layout("compare", glance_height=canvas.glance_list_height(len(loaded)))
    with layout.canvas:
        digit = canvas.digit_from_canvas_or_upload("compare", messages=layout.results)
    if digit is None:
        canvas.glance_list(layout.glance, dict.fromkeys(loaded))
        with layout.results:
            keep.keep_counter("compare")
        return

    predictions = inference.predict_all(loaded, digit.image)  # {name: Prediction}, zoo order
    canvas.glance_list(layout.glance, predictions)
    entries = {entry.name: entry for entry in listing.entries}
    votes = Counter(p.digit for p in predictions.values())
    majority, count = votes.most_common(1)[0]

    table = pd.DataFrame(
        {
            "Model": list(predictions),
            "Reads": [p.digit for p in predictions.values()],
            "Confidence": [f"{p.confidence:.1%}" for p in predictions.values()],
            "MNIST test accuracy": [f"{entries[name].test_accuracy:.2%}" for name in predictions],
            "Time (ms)": [f"{p.seconds * 1000:.2f}" for p in predictions.values()],
            "Note": [models.tag(entries[name]) for name in predictions],
        }
    )

    names = list(predictions)
    probabilities = [p.probabilities for p in predictions.values()]  # models × 10
    # One dict, not go.Heatmap and update_layout: the same figure, validated once, at a third of the CPU.
    figure = go.Figure(
        {
            "data": [
                {
                    "type": "heatmap",
                    "z": probabilities,
                    "x": [str(d) for d in range(10)],
                    "y": names,
                    "zmin": 0,
                    "zmax": 1,
                    "colorscale": "Blues",
                    "colorbar": {"tickformat": ".0%", "title": {"text": "p"}},
                    "text": [[f"{v:.0%}" if v >= 0.01 else "" for v in row] for row in probabilities],
                    "texttemplate": "%{text}",
                    "hovertemplate": "%{y} → %{x}: %{z:.1%}<extra></extra>",
                }
            ],
            "layout": {
                "height": 70 + 32 * len(names),
                "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
                "xaxis": {"title": {"text": "digit"}, "side": "top", "type": "category"},
                "yaxis": {"autorange": "reversed"},
            },
        }
    )

    with layout.results:
        seen_column, verdict_column = st.columns([1, 3], vertical_alignment="center")
        with seen_column:
            canvas.show_model_input(digit.image)
        with verdict_column:
            if count == len(predictions):
                st.success(f"All {count} models agree: it is a {majority}.", icon=":material/check_circle:")
            else:
                others = "; ".join(f"{name} reads {p.digit}" for name, p in predictions.items() if p.digit != majority)
                st.warning(
                    f"The models disagree: {count} of {len(predictions)} read {majority}; {others}.",
                    icon=":material/call_split:",
                )
        st.table(table, hide_index=True)
        keep.keep_drawing("compare", digit, majority, listing)
        st.plotly_chart(figure, width="stretch", config={"displayModeBar": False})
        # Written last: once it names the latest drawing, everything above shows it.
        st.caption(f"Read from {digit.source}. Time: one forward pass of each model.")


drawing(listing, loaded)
