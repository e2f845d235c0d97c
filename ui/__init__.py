"""Streamlit helpers for the pages, one job per module; a page imports the ones it uses.

From the ground up: ``runtime`` (process hooks), ``quoting`` (users' text shown
as typed), ``people`` (teacher and learner), ``models`` (the zoo and its
picker), ``canvas`` (the drawing input); then the widgets built on them
(``why``, ``keep``) and each page's sections (``train_form``, ``job_panel``,
``zoo_records``, ``zoo_model``, ``class_admin``, ``class_gallery``,
``board_panels``). Only this package and the pages import Streamlit.
"""
