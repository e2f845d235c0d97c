"""Digit Recogniser: draw a digit and see how neural networks read it.

    streamlit run app.py

The pages live in app_pages/, not pages/: Streamlit would run a pages/
folder's scripts on their own (without this router) for a visitor who
arrives by a link before anyone has opened the app's root.
"""

from pathlib import Path

import startup

startup.limit_blas_threads()  # before anything imports NumPy

import streamlit as st  # noqa: E402

from ui import people  # noqa: E402

HERE = Path(__file__).resolve().parent
PAGES = HERE / "app_pages"

startup.prepare_process()
st.set_page_config(page_title="Digit Recogniser", page_icon=":material/draw:", layout="wide")

draw = st.Page(PAGES / "draw.py", title="Draw", icon=":material/draw:", url_path="draw")


def open_draw() -> None:
    """The root URL shows Draw at /draw, keeping ?model=, so links to either work."""
    st.switch_page(draw, query_params=st.query_params.to_dict())


page = st.navigation(
    [
        st.Page(open_draw, title="Start", url_path="start", default=True, visibility="hidden"),
        draw,
        st.Page(PAGES / "compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
        st.Page(PAGES / "inside.py", title="Inside", icon=":material/visibility:", url_path="inside"),
        st.Page(PAGES / "zoo.py", title="Zoo", icon=":material/pets:", url_path="zoo"),
        st.Page(PAGES / "class_digits.py", title="Class", icon=":material/groups:", url_path="class"),
        st.Page(PAGES / "train.py", title="Train", icon=":material/model_training:", url_path="train"),
        st.Page(PAGES / "board.py", title="Board", icon=":material/co_present:", url_path="board"),
    ]
)
with st.sidebar:
    st.markdown("**Digit Recogniser** — draw a digit and watch neural networks read it.")
    st.caption(
        "Seven of the models come from a 2017 Keras tutorial on the Analytics Vidhya "
        "digits, and carry [its lesson](/zoo): width helps, depth without "
        "regularisation overfits, dropout needs more epochs."
    )
    people.teacher_sign_in()
page.run()
