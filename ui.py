"""Streamlit helpers shared by the pages: cached models, the model picker, the drawing input.

Pages import this module and ``model_zoo``; only this module and the pages
import Streamlit.
"""

from __future__ import annotations

import logging

import numpy as np
import streamlit as st

from model_zoo import inference, preprocess, store

TUTORIAL_URL = "https://www.analyticsvidhya.com/blog/2017/05/25-must-know-terms-concepts-for-beginners-in-deep-learning/"
LOG = logging.getLogger(__name__)


def keep_keras_between_runs() -> None:
    """Stop Streamlit from resetting Keras after every script run.

    At the end of each run Streamlit clears "problem modules" (for Keras:
    ``clear_session()`` plus a garbage collection, ~0.5 s with the GIL held),
    which stalls background training and drops compiled functions (FACTS.md).
    The hook is private, so a missing one is logged and tested, not fatal.
    """
    from streamlit.runtime.scriptrunner import script_runner

    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = lambda: None
    else:
        LOG.warning("streamlit moved _clean_problem_modules: Keras is reset after every run")


def sidebar() -> None:
    with st.sidebar:
        st.markdown("**Digit Recogniser** — draw a digit and watch seven neural networks read it.")
        st.caption(f"The seven models come from a [2017 Keras tutorial]({TUTORIAL_URL}): "
                   "width helps, depth without regularisation overfits, dropout needs more epochs.")


def zoo() -> store.ZooListing:
    """The zoo as it is on disk now (a few small JSON reads), with any skipped files shown."""
    listing = store.scan()
    for problem in listing.problems:
        st.warning(problem, icon=":material/warning:")
    return listing


@st.cache_resource(show_spinner="Loading model…", max_entries=64)
def _fast_model(path: str, modified: float) -> inference.FastModel:
    # ``modified`` is part of the cache key: a re-saved file is loaded again.
    return inference.FastModel(store.load_model(path))


def fast_model(entry: store.ZooEntry) -> inference.FastModel:
    """The model for an entry, loaded once per server process and shared by all sessions."""
    return _fast_model(str(entry.path), entry.path.stat().st_mtime)


def fast_models(listing: store.ZooListing) -> dict[str, inference.FastModel]:
    """Every loadable model; a damaged file becomes a warning, not a broken page."""
    models = {}
    for entry in listing.entries:
        try:
            models[entry.name] = fast_model(entry)
        except store.ModelFileError as error:
            st.warning(str(error), icon=":material/warning:")
    return models


def best_drawing_model(listing: store.ZooListing) -> str:
    """The model the Draw page opens on: the one that reads drawings best."""
    return "cnn_robust" if "cnn_robust" in listing.names else listing.names[-1]


def model_picker(listing: store.ZooListing, *, key: str = "model") -> store.ZooEntry:
    """A "Model" select box that follows ``?model=NAME`` and writes it back, for sharing links."""
    names = listing.names
    wanted = st.query_params.get("model")
    if wanted is not None and wanted not in names:
        st.warning(f"Unknown model {wanted!r} in the link. Expected one of: {', '.join(names)}.")
        wanted = None
    if key not in st.session_state or (wanted and wanted != st.session_state[key]):
        st.session_state[key] = wanted or best_drawing_model(listing)
    if st.session_state[key] not in names:  # a deleted version
        st.session_state[key] = best_drawing_model(listing)
    labels = {entry.name: entry.label for entry in listing.entries}
    name = st.selectbox("Model", names, key=key, format_func=labels.get)
    st.query_params["model"] = name
    return listing.get(name)


def digit_from_canvas_or_upload(key: str) -> np.ndarray | None:
    """Canvas (and an uploader) → the (28, 28) image a model sees, or None with a hint shown."""
    raise NotImplementedError  # written with the Draw page
