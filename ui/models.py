"""The zoo as the pages see it: usable models, loaded once per server, a picker, downloads, and their wording."""

from __future__ import annotations

import functools

import streamlit as st

from model_zoo import db, inference, model_card, model_files, store
from ui.quoting import literal
from ui.runtime import settle_long_lived_objects


def zoo(*, mention_unusable: bool = True) -> store.ZooListing:
    """The zoo as it is now, models no page may run moved to ``unusable``, skipped files shown.

    A few small reads: the records, and each model's config once per server
    process. ``mention_unusable``: a caption naming the models left out (the
    Zoo page lists them with their reasons instead).
    """
    try:
        listing = store.scan()
    except db.DatabaseError as error:
        st.error(
            f"The versions database cannot be used, so only the shipped models are listed: {error}",
            icon=":material/database:",
        )
        listing = store.scan_shipped()
    for problem in listing.problems:
        st.warning(problem, icon=":material/warning:")
    usable = []
    for entry in listing.entries:
        try:
            problem = _load_failures.get(entry.cache_key) or _contract_problem(str(entry.model_file()), entry.cache_key)
        except model_files.ModelFileError as error:  # a version deleted since the listing
            problem = str(error)
        if problem:
            listing.unusable[entry.name] = problem
        else:
            usable.append(entry)
    listing.entries = usable
    if listing.unusable and mention_unusable:
        st.caption(
            f"Not offered, as they cannot be used: {', '.join(map(literal, listing.unusable))} (the Zoo page says why)."
        )
    return listing


# A plain memo, not st.cache_data: every page run asks it for each model, and Streamlit's
# lookup (hashing, a pickled copy back) cost ~0.15 ms each; the answer is a string or None.
@functools.lru_cache(maxsize=1024)
def _contract_problem(path: str, model_key: str) -> str | None:
    return model_files.contract_problem(path)


# Models that failed to load (cache_key → why), for the server's life: listed as unusable after.
_load_failures: dict[str, str] = {}


@st.cache_resource(show_spinner="Loading model…", max_entries=64)
def _fast_model(path: str, model_key: str) -> inference.FastModel:
    # ``model_key`` changes with the model: a re-saved one is loaded again.
    model = model_files.read_model(path)  # from the archive: no TensorFlow in the web server
    settle_long_lived_objects()
    return model


def fast_model(entry: store.ZooEntry) -> inference.FastModel:
    """The model for an entry, loaded once per server process and shared by all sessions."""
    try:
        return _fast_model(str(entry.model_file()), entry.cache_key)
    except model_files.ModelFileError as error:
        _load_failures[entry.cache_key] = str(error)
        raise


def fast_models(listing: store.ZooListing) -> dict[str, inference.FastModel]:
    """Every loadable model; a damaged file becomes a warning, not a broken page."""
    models = {}
    for entry in listing.entries:
        try:
            models[entry.name] = fast_model(entry)
        except model_files.ModelFileError as error:
            st.warning(str(error), icon=":material/warning:")
    return models


def tag(entry: store.ZooEntry) -> str:
    """A few words for a model that is not one of the tutorial's seven, else ""."""
    return "" if entry.origin == "tutorial" else entry.origin


def note(entry: store.ZooEntry) -> str | None:
    """One line for a model that is not one of the tutorial's seven, else None."""
    if not entry.shipped:
        return f"{entry.name} is your version of {entry.arch.name}, trained in the app."
    if not entry.arch.in_tutorial:
        return entry.arch.lesson or f"{entry.name} goes beyond the tutorial."
    return None


def label(entry: store.ZooEntry) -> str:
    """How pickers show it: name, test accuracy, and where it comes from."""
    words = tag(entry)
    return f"{entry.name} ({entry.test_accuracy:.2%}{f' · {words}' if words else ''})"


def best_drawing_model(listing: store.ZooListing) -> str:
    """The model the Draw page opens on: the one that reads drawings best."""
    return "cnn_robust" if "cnn_robust" in listing.names else listing.names[-1]


def model_picker(listing: store.ZooListing, *, key: str = "model") -> store.ZooEntry:
    """A "Model" select box that follows ``?model=NAME`` and writes it back, for sharing links."""
    names = listing.names
    wanted = st.query_params.get("model")
    if wanted is not None and wanted not in names:
        st.warning(f"Unknown model {literal(wanted)} in the link. Expected one of: {', '.join(names)}.")
        wanted = None
    # The link wins only when it changed since this session last wrote it (a new
    # link, an edited URL); otherwise it would undo every pick in the select box.
    followed = f"{key}_link"
    if key not in st.session_state or (wanted and wanted != st.session_state.get(followed)):
        st.session_state[key] = wanted or best_drawing_model(listing)
    if st.session_state[key] not in names:  # a deleted version
        st.session_state[key] = best_drawing_model(listing)
    labels = {entry.name: label(entry) for entry in listing.entries}
    name = st.selectbox("Model", names, key=key, format_func=labels.get)
    st.query_params["model"] = st.session_state[followed] = name
    return listing.get(name)


def download_model(entry: store.ZooEntry, *, key: str) -> str:
    """Buttons for the model as a .keras file for plain Keras and its card (Zoo, a saved job); the card.

    The file is read only when its button is clicked.
    """
    card = model_card.markdown(entry)
    keras_file, card_file = st.columns(2)
    keras_file.download_button(
        f"Download {model_card.file_name(entry)}",
        lambda: entry.model_file().read_bytes(),
        file_name=model_card.file_name(entry),
        mime="application/octet-stream",
        on_click="ignore",
        icon=":material/download:",
        key=f"{key}_download_model",
    )
    card_file.download_button(
        "Download its model card",
        card,
        file_name=f"{entry.name}.md",
        mime="text/markdown",
        on_click="ignore",
        icon=":material/description:",
        key=f"{key}_download_card",
    )
    st.caption(
        "The file loads with `keras.models.load_model` anywhere Keras 3 runs; the card says what it "
        "learnt from, how well it reads and where it fails. Neither names who trained it."
    )
    return card
