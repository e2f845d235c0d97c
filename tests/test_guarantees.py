"""What a class relies on under concurrency and faults, tried with real processes on SQLite and PostgreSQL.

Each test here is a promise of docs/deploy.md / docs/robustness.md: a process killed
between the steps of a save, submits at the same moment from threads and from
other processes, bombs through the real import and canvas paths.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa

from model_zoo import config, db, model_files
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
    job_records.worker_finished(job_id, job_records.JobProgress(settings), result, None, trained_in="app",
                                owner="otter-1", requested_name="", database=db.url().render_as_string(False))
else:  # a web server saving a stopped job
    jobs.save(job_id, "kept")
print("done", flush=True)
"""


def _job_row(job_id: str, state: JobState, **values) -> dict:
    import dataclasses

    from model_zoo.training import TrainingSettings

    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=400)
    return dict(
        id=job_id,
        owner="otter-1",
        settings=dataclasses.asdict(settings),
        state=state.value,
        cluster="local:elsewhere:1:x",
        submitted_at=time.time(),
        **values,
    )


def _killed_between_steps(step: str, job_id: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", SAVE_THEN_PAUSE, step, job_id],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
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
    from model_zoo.architectures import ZOO

    job_id = uuid.uuid4().hex[:10]
    model = ZOO["mlp_1x50"].build()
    record = {"arch": "mlp_1x50", "test_accuracy": 0.5, "params": model.count_params()}
    with db.engine().begin() as connection:
        connection.execute(
            db.jobs.insert().values(
                **_job_row(job_id, JobState.STOPPED, result_record=record, result_model=model_files.model_bytes(model))
            )
        )
    _killed_between_steps("save", job_id)
    assert _saved_state(job_id) == (0, JobState.STOPPED.value)  # its learner can still save it


# A web server's submits, from threads of another process: each line read is one trial, started by
# every thread at the same moment.
SUBMITTER = """
import dataclasses, sys, threading, time, uuid
from model_zoo import jobs
from model_zoo.training import TrainingSettings

settings = TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=400)
print("ready", flush=True)
for line in sys.stdin:
    learners, start, maximum = line.split()
    outcomes = []

    def submit(learner):
        time.sleep(max(0.0, float(start) - time.time()))
        try:
            jobs._queue(uuid.uuid4().hex[:10], settings, learner, "", None, learner, "local:x:1:y", int(maximum))
            outcomes.append("queued")
        except jobs.JobLimitError:
            outcomes.append("refused")
        except Exception as error:
            outcomes.append(type(error).__name__)
    threads = [threading.Thread(target=submit, args=(learner,)) for learner in learners.split(",")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(" ".join(outcomes), flush=True)
"""
TRIALS = 30
THREADS = 2  # per process: this one and two other server processes


def _trial(children, learners: list[str], maximum: int) -> list[str]:
    """Every submitter (threads here and in the children) submits for its learner at the same moment."""
    import threading

    from model_zoo import jobs
    from model_zoo.training import TrainingSettings

    with db.engine().begin() as connection:  # the last trial's jobs end
        connection.execute(
            db.jobs.update().where(db.jobs.c.state.in_(["queued", "running"])).values(state=JobState.DISCARDED.value)
        )
    start = time.time() + 0.5
    shares = [learners[i :: len(children) + 1] for i in range(len(children) + 1)]
    for child, share in zip(children, shares[1:]):
        child.stdin.write(f"{','.join(share)} {start} {maximum}\n")
        child.stdin.flush()
    outcomes = []
    settings = TrainingSettings.for_architecture("mlp_1x50", epochs=1, train_size=400)

    def submit(learner):
        time.sleep(max(0.0, start - time.time()))
        try:
            jobs._queue(uuid.uuid4().hex[:10], settings, learner, "", None, learner, "local:x:1:y", maximum)
            outcomes.append("queued")
        except jobs.JobLimitError:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit, args=(learner,)) for learner in shares[0]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for child in children:
        outcomes += child.stdout.readline().split()
    return outcomes


def _active_per_learner() -> list[int]:
    with db.engine().connect() as connection:
        return (
            connection.execute(
                sa.select(sa.func.count())
                .select_from(db.jobs)
                .where(db.jobs.c.state.in_(["queued", "running"]))
                .group_by(db.jobs.c.learner_key)
            )
            .scalars()
            .all()
        )


def test_concurrent_submits_never_give_a_learner_two_jobs_nor_the_class_more_than_its_cap(any_database):
    db.engine()  # the schema, before the other processes open it
    children = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMITTER],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        submitters = THREADS * (len(children) + 1)
        violations = 0
        for trial in range(TRIALS):
            # One learner submitting from every thread of three servers at once (tabs, double clicks).
            outcomes = _trial(children, [f"ada-{trial}"] * submitters, maximum=30)
            assert sorted(outcomes) == ["queued"] + ["refused"] * (submitters - 1), outcomes
            violations += sum(count > 1 for count in _active_per_learner())
            # As many learners, each once, into a class whose cap is 1.
            outcomes = _trial(children, [f"learner-{trial}-{i}" for i in range(submitters)], maximum=1)
            assert sorted(outcomes) == ["queued"] + ["refused"] * (submitters - 1), outcomes
            violations += sum(_active_per_learner()) > 1
        print(f"{2 * TRIALS} trials of {submitters} concurrent submits: {violations} violations")
        assert violations == 0
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_each_learner_has_one_nickname_and_nobody_shares_it(any_database):
    from model_zoo import jobs

    learners = [f"browser-{i}" for i in range(120)]  # a class of 30 had two "otter-17"s in 2 of 5 tries
    names = [jobs.nickname(learner) for learner in learners]
    assert len(set(names)) == len(learners)
    assert [jobs.nickname(learner) for learner in learners[:10]] == names[:10]  # a reload: the same name


# What a bomb costs the process that is sent it: its peak memory before and after, after a first
# harmless file of the same kind took every code path once.
BOMB = """
import io, resource, sys, zipfile
import numpy as np

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

kind = sys.argv[1]
if kind == "canvas":
    import base64
    from PIL import Image
    from tests.test_pages import DRAW, draw_on_canvas, open_page, png_bytes, seven
    at = open_page(DRAW)
    draw_on_canvas(at, "draw", seven())
    assert not at.error, at.error
    bomb = png_bytes(Image.new("RGBA", (9000, 9000)))  # 0.3 MB as a PNG, 324 MB as pixels
    sent = len(bomb)
    before = peak_mb()
    # The value as the browser's component sends it (tests.test_pages.draw_on_canvas), made by hand.
    at.session_state["draw_canvas_0"] = {"drawing": {"raw": {"objects": [{"type": "Path"}]},
                                         "data": "data:image/png;base64," + base64.b64encode(bomb).decode()},
                                         "backgroundFit": None}
    at.run()
    after = peak_mb()
    said = " | ".join(e.value for e in at.error)
else:
    from model_zoo import class_digits
    def npz(x, y):
        buffer = io.BytesIO()
        np.savez_compressed(buffer, x=x, y=y)
        return buffer.getvalue()
    def zip_of(files):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in files.items():
                archive.writestr(name, content)
        return buffer.getvalue()
    small = np.stack([np.eye(28, dtype=np.uint8) * (i + 1) for i in range(3)]), np.arange(3, dtype=np.uint8)
    if kind == "npz":
        harmless, bomb = npz(*small), npz(np.zeros((400_000, 28, 28), np.uint8), np.zeros(400_000, np.uint8))
    else:
        class_digits.import_file("warm", "small.npz", npz(*small))
        harmless = class_digits.export_zip("warm")
        bomb = zip_of({"train.csv": b"filename,label\\n" + b"0.png,0\\n" * 40_000_000})  # 320 MB
    class_digits.import_file("warm", f"small.{kind}", harmless)
    sent = len(bomb)
    before = peak_mb()
    try:
        class_digits.import_file("bombed", f"bomb.{kind}", bomb)
        said = "imported"
    except class_digits.ClassDigitsError as error:
        said = str(error)
    after = peak_mb()
print(f"{sent / 1e6:.2f} MB sent; refused: {said}; peak memory +{after - before:.0f} MB", flush=True)
"""


@pytest.mark.parametrize(
    "kind, says",
    [
        ("npz", r"its x array is 400000 × 28 × 28 uint8, 314 MB unpacked; at most 20 MB are imported"),
        ("zip", r"bomb.zip unpacks to more than 20 MB"),
        ("canvas", r"The drawing could not be read: it is 9000 × 9000 pixels, and the canvas is 280 × 280"),
    ],
)
def test_a_bomb_is_refused_before_it_is_unpacked(database, kind, says):
    run = subprocess.run(
        [sys.executable, "-c", BOMB, kind],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    line = run.stdout.strip().splitlines()[-1]
    print(kind, line)
    assert re.search(says, line), line
    rise = float(re.search(r"peak memory \+(-?\d+) MB", line).group(1))
    assert rise < 50, line


HOSTILE_NAME = "[x](https://evil.example)"


def test_a_file_name_is_shown_as_typed_on_every_page(database, monkeypatch):
    from tests.test_pages import COMPARE, open_page, png_bytes, seven, sign_in_as_teacher

    monkeypatch.setenv("DIGIT_ZOO_TEACHER_PASSWORD", "chalk")  # the import is the teacher's
    at = open_page(COMPARE)
    sign_in_as_teacher(at, "chalk")
    at.file_uploader(key="compare_upload_0").set_value((f"{HOSTILE_NAME}.png", png_bytes(seven()), "image/png")).run()
    assert any(f"Read from the picture `{HOSTILE_NAME}.png`" in c.value for c in at.caption)
    at.switch_page("app_pages/class_digits.py").run()
    at.file_uploader(key="class_import_0").set_value((f"{HOSTILE_NAME}.npz", b"not an npz", "application/zip"))
    at.button(key="class_import").click().run()
    assert any(f"Nothing was imported: `{HOSTILE_NAME}.npz` is not a readable .npz" in e.value for e in at.error)
    assert not [e for e in (*at.caption, *at.error) if HOSTILE_NAME in e.value.replace(f"`{HOSTILE_NAME}", "")]


def test_a_teacher_password_is_made_once_per_database_and_can_be_reset(any_database, monkeypatch, capsys):
    from model_zoo import teacher
    from scripts import teacher_password

    monkeypatch.delenv(teacher.PASSWORD_VARIABLE, raising=False)
    made = teacher.first_start()
    assert made and teacher.first_start() is None  # once: a second server start makes none
    assert teacher.check(made) and not teacher.check("") and not teacher.check(made + "x")
    with db.engine().connect() as connection:  # only its hash is kept
        assert made not in str(connection.execute(sa.select(db.settings.c.value)).all())
    assert teacher_password.main([]) == 0
    new = capsys.readouterr().out.strip().rsplit(": ", 1)[1]
    assert teacher.check(new) and not teacher.check(made)


def test_postgresql_stopped_under_a_running_app_is_a_message_then_recovers_by_itself(monkeypatch):
    from model_zoo import class_digits
    from tests import postgres
    from tests.conftest import missing_service
    from tests.test_pages import DRAW, draw_on_canvas, metrics, open_page, seven

    with postgres.running_server() as server:  # its own: the others' tests keep theirs
        if server is None:  # in CI (REQUIRE_SERVICES=1) a failure, not a skip
            missing_service("PostgreSQL is not installed: apt-get install postgresql")
        monkeypatch.setenv(db.URL_VARIABLE, postgres.fresh_database(server))
        class_digits.import_file("my class", "a.npz", _three_digits())
        page = open_page("app_pages/class_digits.py")
        assert any(c.value.startswith("3 digits from 1 learner") for c in page.caption)
        drawing = open_page(DRAW)
        with postgres.stopped(server):
            started = time.monotonic()
            page.run()
            seconds = time.monotonic() - started
            print(f"the Class page's message {seconds:.2f} s after PostgreSQL stopped")
            assert [e.value for e in page.error] == [e.value for e in page.error if "cannot be reached" in e.value]
            assert any(
                e.value.startswith("The class's digits cannot be read: the database cannot be reached")
                and "works again by itself" in e.value
                for e in page.error
            ), [e.value for e in page.error]
            assert not page.exception and seconds < 15
            draw_on_canvas(drawing, "draw", seven())  # drawing needs no database
            assert metrics(drawing)["Prediction"] == "7"
        page.run()  # the same running app, the database back
        assert not page.error and not page.exception
        assert any(c.value.startswith("3 digits from 1 learner") for c in page.caption)


def _three_digits() -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, x=np.stack([np.eye(28, dtype=np.uint8) * (i + 1) for i in range(3)]), y=np.arange(3))
    return buffer.getvalue()


# A web server whose RAY_ADDRESS answers nothing Ray understands: the Train page as a browser polls it.
RAY_AWAY = """
import socket, sys, threading, time
from streamlit.testing.v1 import AppTest
from tests.test_pages import APP, DRAW, draw_on_canvas, metrics, open_page, seven

at = AppTest.from_file(str(APP), default_timeout=60)
at.run()
opened = time.monotonic()
at.switch_page("app_pages/train.py").run()
while not [w for w in at.warning if w.value.startswith("Training is unavailable")]:
    assert time.monotonic() - opened < 60, [e.value for e in (*at.warning, *at.error)]
    time.sleep(2)  # the page's own poll (RAY_POLL)
    at.run()
message = [w.value for w in at.warning if w.value.startswith("Training is unavailable")][0]
print(f"{time.monotonic() - opened:.1f} s to: {message}", flush=True)
clicked = time.monotonic()
at.button(key="FormSubmitter:train_settings-Start training").click().run()
print(f"{time.monotonic() - clicked:.1f} s to: {' | '.join(e.value for e in at.error)}", flush=True)
print(f"{sum(t.name == 'digit-zoo-ray' for t in threading.enumerate())} connecting threads", flush=True)
drawing = open_page(DRAW)
draw_on_canvas(drawing, "draw", seven())
print(f"Draw reads {metrics(drawing)['Prediction']}", flush=True)
"""


@pytest.mark.parametrize("ray", ["nothing listening", "not Ray"])
def test_ray_unreachable_is_said_on_the_train_page_within_15_s_and_draw_still_answers(database, ray):
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        if ray == "not Ray":
            listener.listen()  # accepts, never answers: Ray's own client would retry for minutes
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        run = subprocess.run(
            [sys.executable, "-c", RAY_AWAY],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2", "RAY_ADDRESS": address},
        )
    assert run.returncode == 0, run.stderr[-3000:]
    print(run.stdout)
    shown, submitted, threads, draw = run.stdout.strip().splitlines()[-4:]
    seconds = float(shown.split(" s to: ")[0])
    assert seconds < 15 and f"Training is unavailable: the Ray cluster at {address}" in shown, shown
    assert float(submitted.split(" s to: ")[0]) < 15, submitted
    assert f"Training cannot start: the Ray cluster at {address}" in submitted and "Nothing was queued" in submitted
    assert threads in ("0 connecting threads", "1 connecting threads")  # at most one, however many page runs
    assert draw == "Draw reads 7"


@pytest.mark.usefixtures("on_ray")
def test_a_job_being_handed_to_ray_is_not_lost_and_one_never_handed_over_is(monkeypatch):
    """The gap between a job's row and Ray having it (the first job waits there while MNIST loads)."""
    from model_zoo import cluster, jobs

    monkeypatch.setattr(jobs, "RECONCILE_SECONDS", 0.0)  # every look checks, as a busy class's pages do
    job_id = uuid.uuid4().hex[:10]
    with db.engine().begin() as connection:  # as _queue leaves it, before cluster.start_job returns
        connection.execute(
            db.jobs.insert().values(**_job_row(job_id, JobState.QUEUED) | {"cluster": cluster.connect().cluster})
        )
    assert jobs.view(job_id).state == JobState.QUEUED  # a classmate's page looked meanwhile: not lost
    monkeypatch.setattr(jobs, "HANDOVER_SECONDS", 0.0)  # its server died before handing it over
    view = jobs.view(job_id)
    assert view.state == JobState.LOST and "stopped before handing it to Ray" in view.error


@pytest.mark.usefixtures("on_ray")
def test_retrained_shipped_models_get_a_new_dispatcher_and_fine_tuning_starts_from_them(tmp_path, monkeypatch):
    import shutil

    from model_zoo import cluster, jobs
    from model_zoo.architectures import ZOO
    from model_zoo.training import TrainingSettings

    fine_tune = TrainingSettings.for_architecture(
        "mlp_1x50", epochs=1, train_size=400, learning_rate=1e-4, lr_decay=False, fine_tune=True
    )
    before = _run_job(jobs, fine_tune, "ada")
    assert before.test_accuracy > 0.9  # from the shipped mlp_1x50
    old = cluster.dispatcher_name()

    # The teacher retrains the shipped models (here: mlp_1x50 back to random weights) under a running cluster.
    shipped = tmp_path / "trained"
    shutil.copytree(config.TRAINED_DIR, shipped)
    (shipped / "mlp_1x50.keras").write_bytes(model_files.model_bytes(ZOO["mlp_1x50"].build()))
    monkeypatch.setattr(config, "TRAINED_DIR", shipped)
    assert cluster.dispatcher_name() != old
    after = _run_job(jobs, fine_tune, "bo")
    assert after.test_accuracy < 0.5  # a few gentle steps from random weights: the new models were used
    assert cluster.dispatcher_name() in cluster._dispatchers() and old not in cluster._dispatchers()  # retired


def _run_job(jobs, settings, learner: str):
    job_id = jobs.submit(settings, owner=learner, learner=learner)
    deadline = time.monotonic() + 240
    while (view := jobs.view(job_id)).active:
        assert time.monotonic() < deadline, view.phase
        time.sleep(0.5)  # a worker process: nothing to wait on but its row
    assert view.state == JobState.SAVED, view.error
    return view
