"""What a class relies on under concurrency and faults, tried with real processes on SQLite and PostgreSQL.

Each test here is a promise of README / docs/robustness.md: a process killed
between the steps of a save, submits at the same moment from threads and from
other processes, bombs through the real import and canvas paths.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import sqlalchemy as sa

from model_zoo import db
from model_zoo.job_records import JobState

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A process that saves a job's model as the app does, and pauses for good right after the version's
# insert, before the job's row says "saved": the test kills it there.
SAVE_THEN_PAUSE = """
import dataclasses, sys, time
from model_zoo import db, job_records, jobs, store, training
from model_zoo.architectures import ZOO

step, job_id = sys.argv[1], sys.argv[2]
settings = training.TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=400)
model = ZOO["mlp_1x50"].build()
insert_version = store.insert_version

def insert_then_pause(*args, **kwargs):
    entry = insert_version(*args, **kwargs)
    print("between", flush=True)
    time.sleep(600)
    return entry

store.insert_version = insert_then_pause
if step == "worker_finished":  # a Ray worker at the end of a job
    result = training.TrainingResult(model, settings, {"loss": [0.5]}, [[3, 0.5]], [1.0], 0.9, False, "x", 360, 40)
    job_records.worker_finished(job_id, job_records.JobProgress(settings), result, None, "app")
else:  # a web server saving a stopped job
    jobs.save(job_id, "kept")
print("done", flush=True)
"""


def _job_row(job_id: str, state: JobState, **values) -> dict:
    from model_zoo.training import TrainingSettings
    import dataclasses

    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=400)
    return dict(id=job_id, owner="otter-1", settings=dataclasses.asdict(settings), state=state.value,
                cluster="local:elsewhere:1:x", submitted_at=time.time(), **values)


def _killed_between_steps(step: str, job_id: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", SAVE_THEN_PAUSE, step, job_id], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        lines = []
        for line in child.stdout:
            lines.append(line)
            if line.startswith("between"):
                break
        assert lines and lines[-1].startswith("between"), f"the saver ended early: {lines}"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def _saved_state(job_id: str) -> tuple[int, str]:
    """(versions in the database, the job's state)."""
    with db.engine().connect() as connection:
        versions = connection.execute(sa.select(sa.func.count()).select_from(db.versions)).scalar()
        state = connection.execute(sa.select(db.jobs.c.state).where(db.jobs.c.id == job_id)).scalar()
    return versions, state


def test_a_worker_killed_between_the_version_and_the_jobs_end_leaves_both_or_neither(any_database):
    job_id = uuid.uuid4().hex[:10]
    with db.engine().begin() as connection:
        connection.execute(db.jobs.insert().values(**_job_row(job_id, JobState.RUNNING)))
    _killed_between_steps("worker_finished", job_id)
    # Killed before its commit: no version, and the job still running (its heartbeat will say lost).
    assert _saved_state(job_id) == (0, JobState.RUNNING.value)


def test_a_server_killed_between_the_jobs_claim_and_the_version_leaves_both_or_neither(any_database):
    from model_zoo import store
    from model_zoo.architectures import ZOO

    job_id = uuid.uuid4().hex[:10]
    model = ZOO["mlp_1x50"].build()
    record = {"arch": "mlp_1x50", "test_accuracy": 0.5, "params": model.count_params()}
    with db.engine().begin() as connection:
        connection.execute(db.jobs.insert().values(**_job_row(
            job_id, JobState.STOPPED, result_record=record, result_model=store.model_bytes(model))))
    _killed_between_steps("save", job_id)
    assert _saved_state(job_id) == (0, JobState.STOPPED.value)  # its learner can still save it

