"""Everything that is not UI: architectures, data, preprocessing, training, the store, inference.

Never imports Streamlit.
"""
