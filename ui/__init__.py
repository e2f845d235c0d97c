"""Streamlit helpers for the pages, one job per module; pages import the ones they use.

From the ground up: ``runtime`` (process hooks), ``quoting`` (users' text shown
as typed), ``people`` (teacher and learner), ``models`` (the zoo and its
picker), ``canvas`` (the drawing input), then the widgets built on them. Only
this package and the pages import Streamlit.
"""
