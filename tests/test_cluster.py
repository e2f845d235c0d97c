"""A two-node Ray cluster on 127.0.0.1, as a school's lab would run it, trains two jobs at once.

`ray start --head` and `ray start --address=…` (two Ray CPUs each: a training
slot per node); two learners' `scripts.train --ray` with RAY_ADDRESS, at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from model_zoo import db

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ON_RAY = [sys.executable, *"-m scripts.train --ray --arch mlp_1x50".split()]  # a web server's job, from a script
RAY = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` command of this Python
JOB_SECONDS = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_nodes(tmp_path):
    """A head node and a second node, one training slot each; yields the head's address."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # Ray clusters started with `ray start` check a token; every process here shares ~/.ray/auth_token.
    env = os.environ | {"RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    subprocess.run(RAY + ["get-auth-token", "--generate"], env=env, check=True, capture_output=True)
    nodes = []
    common = ["--num-cpus", "2", "--disable-usage-stats", "--block"]
    try:
        for command in (
            ["start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--include-dashboard", "false"],
            ["start", "--address", address, "--node-ip-address", "127.0.0.1"],
        ):
            log = open(tmp_path / f"node{len(nodes)}.log", "wb")
            nodes.append(
                subprocess.Popen(
                    RAY + command + common, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
            time.sleep(5)  # the head's GCS up before the second node joins
        yield address, env
    finally:
        for node in reversed(nodes):
            node.send_signal(signal.SIGTERM)  # `ray start --block` stops its node's processes
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
            try:
                os.killpg(node.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_two_nodes_train_two_learners_at_once(two_nodes, tmp_path, mnist):
    address, env = two_nodes
    database = f"sqlite:///{tmp_path / 'school.db'}"
    env = env | {"RAY_ADDRESS": address, db.URL_VARIABLE: database, "TF_CPP_MIN_LOG_LEVEL": "2"}

    capacity = subprocess.run(
        [
            sys.executable,
            "-c",
            "from model_zoo import cluster\n"
            "import time\n"
            "cluster.connect()\n"
            "for _ in range(60):\n"
            "    if cluster.capacity().slots == 2: break\n"
            "    time.sleep(1)\n"
            "print(cluster.capacity())",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert capacity.stdout.strip().endswith("2 training slots on 2 Ray nodes (1 machine)"), capacity.stderr[-2000:]

    learners = [
        subprocess.Popen(
            [*TRAIN_ON_RAY, *"--epochs 3 --train-size 20000 --batch-size 32".split()]
            + ["--name", f"learner {i}", "--owner", f"learner-{i}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (1, 2)
    ]
    outputs = [learner.communicate(timeout=JOB_SECONDS)[0] for learner in learners]
    assert [learner.returncode for learner in learners] == [0, 0], "\n\n".join(outputs)
    assert "Saved learner-1:" in outputs[0] and "Saved learner-2:" in outputs[1]

    with db.engine(database).connect() as connection:
        rows = connection.execute(
            sa.select(db.jobs.c.worker, db.jobs.c.started_at, db.jobs.c.ended_at, db.jobs.c.state)
        ).all()
    assert [row.state for row in rows] == ["saved", "saved"]
    first, second = sorted(rows, key=lambda row: row.started_at)
    assert second.started_at < first.ended_at, "the second job waited for the first: one slot only"
    assert first.worker != second.worker  # two worker processes, one per node's slot


def test_a_job_on_the_cluster_outlives_the_process_that_submitted_it(two_nodes, tmp_path, mnist):
    """The web server (here: scripts.train --ray) is killed mid-job; the cluster trains it to the end."""
    address, env = two_nodes
    database = f"sqlite:///{tmp_path / 'school.db'}"
    env = env | {"RAY_ADDRESS": address, db.URL_VARIABLE: database, "TF_CPP_MIN_LOG_LEVEL": "2"}
    submitter = subprocess.Popen(
        [*TRAIN_ON_RAY, *"--epochs 2 --train-size 20000 --batch-size 16 --name survivor".split()],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = db.engine(database)
    deadline = time.monotonic() + JOB_SECONDS
    while True:  # until the job trains: it is then the cluster's, not the submitter's
        with engine.connect() as connection:
            state = connection.execute(sa.select(db.jobs.c.state)).scalar()
        if state == "running":
            break
        assert time.monotonic() < deadline and submitter.poll() is None, f"job {state}"
        time.sleep(0.5)
    submitter.kill()
    submitter.wait()
    while True:
        with engine.connect() as connection:
            state, saved = connection.execute(sa.select(db.jobs.c.state, db.jobs.c.saved_name)).one()
        if state != "running":
            break
        assert time.monotonic() < deadline, "still training"
        time.sleep(0.5)
    assert (state, saved) == ("saved", "survivor")
