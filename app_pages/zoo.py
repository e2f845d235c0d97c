"""Zoo: every model's record — accuracy, size, training, robustness, mistakes."""

from __future__ import annotations

import os

import streamlit as st

from ui import models, zoo_model, zoo_records

st.title("Zoo")
st.write(
    "Every model's record: how accurate, how big and how fast to train it is, how it copes "
    "with digits drawn off-centre, rotated, small or thick, and which test digits it gets wrong."
)

if "zoo_message" in st.session_state:
    level, text = st.session_state.pop("zoo_message")
    getattr(st, level)(text)

listing = models.zoo(mention_unusable=False)
zoo_records.unusable(listing)
if not listing.entries:
    st.info("No models in the zoo yet. Train them with `python -m scripts.train_zoo`.")
    st.stop()

mnist, mnist_problem = zoo_records.mnist_test(os.environ.get("MNIST_PATH"))
if mnist is None:
    st.info(
        "The MNIST test digits were not found, so the table below comes from the models' "
        "records and some charts are missing. Put mnist.npz in the project's data/ folder "
        f"or start the app with MNIST_PATH=/path/to/mnist.npz.\n\n({mnist_problem})",
        icon=":material/info:",
    )
with_usps = zoo_records.usps_found()
entries = [zoo_records.evaluated(entry, mnist, with_usps) for entry in listing.entries]
zoo_records.zoo_table(entries)
zoo_records.robustness(entries, mnist)
zoo_model.one_model(entries, mnist)
