"""Class: the digits the class kept, how each model reads them, export and import."""

from __future__ import annotations

import numpy as np
import streamlit as st

from model_zoo import challenge, class_digits, db
from ui import class_admin, class_gallery, models, people, quoting

st.title("Class")
st.write(
    "The digits your class drew and kept: how each model reads them, where the zoo's ranking holds "
    "on your handwriting, and a data set to export or to retrain on."
)

if "class_message" in st.session_state:
    level, text = st.session_state.pop("class_message")
    getattr(st, level)(text)

class_name = class_admin.classes_section()
try:
    kept = class_digits.digits(class_name)
    hidden = challenge.hides_held_out(class_name) and not people.is_teacher()
except db.DatabaseError as error:
    st.error(f"The class's digits cannot be read: {error}", icon=":material/database:")
    st.stop()
if hidden:  # a running challenge scores on them: no learner sees one
    kept = [d for d in kept if not d.held_out]
if not kept:
    st.info(
        f"No digits in {quoting.literal(class_name)} yet: draw on Draw or Compare and press "
        '"Keep this drawing as a …", or import a class\'s export below.',
        icon=":material/draw:",
    )
    class_admin.export_and_import(class_name, has_digits=False)
    st.stop()

listing = models.zoo()
loaded = models.fast_models(listing)
entries = [entry for entry in listing.entries if entry.name in loaded]
if not entries:
    st.info("No trained models yet: train the zoo with `python -m scripts.train_zoo`.")
    st.stop()
x = np.stack([d.image for d in kept])
readings = {entry.name: class_gallery.readings(entry.cache_key, x, entry) for entry in entries}

learners = sorted({d.learner for d in kept})
model_column, learner_column, wrong_column = st.columns(3, vertical_alignment="bottom")
model = model_column.selectbox(
    "Model",
    [entry.name for entry in entries],
    key="class_model",
    index=[entry.name for entry in entries].index(models.best_drawing_model(listing))
    if models.best_drawing_model(listing) in loaded
    else 0,
)
learner = learner_column.selectbox("Learner", ["everyone", *learners], key="class_learner")
only_wrong = wrong_column.checkbox(f"Only the ones {model} gets wrong", key="class_only_wrong")
read, confidence = readings[model]
chosen = [
    i
    for i, d in enumerate(kept)
    if (learner == "everyone" or d.learner == learner) and (not only_wrong or read[i] != d.label)
]
held_out = (
    "the held-out ones hidden while the challenge runs"
    if hidden
    else f'{sum(d.held_out for d in kept)} held out to score retrained models (Train: "add the class\'s digits")'
)
st.caption(
    f"{len(kept)} digits from {len(learners)} learner{'s' * (len(learners) != 1)}; {held_out}. "
    f"Showing {len(chosen)}, framed red where {model} misreads them."
)
class_gallery.gallery([kept[i] for i in chosen], read[chosen], confidence[chosen], model, class_name)
class_gallery.scores(kept, entries, readings, model)
if people.is_teacher():
    class_admin.relabel(kept)
    class_admin.challenge_section(class_name)
class_admin.export_and_import(class_name, has_digits=True)
if people.is_teacher():
    class_admin.delete_class(class_name)
