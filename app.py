"""Digit Recogniser: draw a digit and see how seven neural networks read it.

    streamlit run app.py
"""

from pathlib import Path

import streamlit as st

import ui

HERE = Path(__file__).resolve().parent

ui.keep_keras_between_runs()
st.set_page_config(page_title="Digit Recogniser", page_icon=":material/draw:", layout="wide")

pages = [
    st.Page(HERE / "pages" / "draw.py", title="Draw", icon=":material/draw:", url_path="draw", default=True),
    st.Page(HERE / "pages" / "compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page(HERE / "pages" / "zoo.py", title="Zoo", icon=":material/pets:", url_path="zoo"),
    st.Page(HERE / "pages" / "train.py", title="Train", icon=":material/model_training:", url_path="train"),
]
page = st.navigation(pages)
ui.sidebar()
page.run()
