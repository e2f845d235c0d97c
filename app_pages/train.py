"""Train: retrain any zoo architecture with your own settings and watch the curves grow."""

from __future__ import annotations

import secrets

import streamlit as st

from model_zoo import db, jobs
from model_zoo.config import SettingsError
from model_zoo.training import TrainingLimits
from ui import job_panel, people, runtime, train_form

runtime.keep_keras_between_runs()  # also when this page runs on its own (AppTest)
st.title("Train")
st.write(
    "Retrain any architecture of the zoo with your own settings and watch the loss and "
    "accuracy curves grow; the result becomes a new version you can draw with."
)
try:
    limits = TrainingLimits.from_env()
    # The class's settings, checked before any job (a bare tuple here would be drawn by Streamlit's magic).
    jobs.training_slots()
    jobs.max_active_jobs()
except SettingsError as error:
    st.error(f"This server's training settings are misconfigured: {error}", icon=":material/error:")
    st.stop()

jobs.prepare_cluster()  # Ray is ready by the time the form is filled in
ray_pace = None if jobs.cluster_ready() else job_panel.RAY_POLL
st.fragment(job_panel.ray_status, run_every=ray_pace)(ray_pace)
form_column, live_column = st.columns([1, 2], gap="large")
try:
    me = job_panel.owner()
    with form_column:
        submitted = train_form.settings_form(limits)
        if submitted is not None:
            settings, name = submitted
            try:
                with st.spinner("Handing the job to Ray…"):
                    key = secrets.token_urlsafe(12)  # in the job's link: whoever has it owns the job
                    new_job = jobs.submit(
                        settings, owner=me, name=name, limits=limits, key=key, learner=people.learner_key()
                    )
            except (SettingsError, jobs.JobError) as error:
                st.error(str(error), icon=":material/error:")
            else:
                st.session_state.train_job, st.session_state.train_key = new_job, key
                people.remember_job_key(key)
                st.query_params["job"], st.query_params["key"] = new_job, key
    with live_column:
        job = job_panel.watched_job()
        interval = job_panel.poll_interval(job, jobs.views())
        st.fragment(job_panel.live, run_every=interval)(job.id if job else None, interval)
except db.DatabaseError as error:
    st.error(f"The jobs database cannot be used: {error}", icon=":material/database:")
