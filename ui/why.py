"""Why a model read its digit: occlusion maps (and saliency on demand), and Draw's collapsed panel."""

from __future__ import annotations

import numpy as np
import streamlit as st

from model_zoo import inference, inside, store


def show_why(entry: store.ZooEntry, model: inference.FastModel, image: np.ndarray, *, saliency: bool) -> None:
    """Which parts of the drawing made the model read its digit and not the runner-up's.

    Occlusion always (one fast batch); saliency (integrated gradients) when asked.
    """
    digits = inside.ranked(model.predict(image).probabilities)
    erased = inside.occlusion(model, image, list(digits))
    row = st.container(horizontal=True)  # side by side while they fit, then wrapping
    for values, digit in zip(erased, digits):
        row.image(inside.overlay(image, values), caption=f"Erasing, for {digit}")
    if saliency:
        with st.spinner(f"Integrated gradients of {entry.name}…"):
            maps = inside.Saliency(model)(image, list(digits))
        for values, digit in zip(maps, digits):
            row.image(inside.overlay(image, values), caption=f"Saliency, for {digit}")
    first, second = digits
    text = (
        f"Erasing: a black {inside.PATCH} px square wipes out each part of the drawing in turn. "
        f"Red where erasing makes {first} (or {second}, the runner-up) less likely: the ink that "
        "speaks for it; blue, more likely: the ink that speaks against it. Each map has its own "
        "scale."
    )
    if saliency:
        text += (
            " Saliency: integrated gradients of the digit's score (its logit, before the softmax), "
            "averaged along the way from an empty canvas to this drawing, so each map adds up to "
            "what the drawing did to the score; red, ink that raised it; blue, lowered it. A single "
            "gradient only says what a tiny change of ink would do."
        )
    st.caption(text)


def why_panel(entry: store.ZooEntry, model: inference.FastModel, image: np.ndarray) -> None:
    """Draw's "why" panel, collapsed; its maps are computed only while it is open."""
    panel = st.expander("Why this digit?", key="draw_why", on_change="rerun", icon=":material/lightbulb:")
    if panel.open:
        with panel:
            show_why(entry, model, image, saliency=False)
            st.page_link(
                "app_pages/inside.py",
                label=f"Inside {entry.name}: every layer, and saliency",
                icon=":material/visibility:",
                query_params={"model": entry.name},
            )
