"""A class presses Start: when its jobs start and end, against what the Train page told each learner.

    python -m scripts.benchmarks.bench_jobs                         # 30 learners within a minute
    python -m scripts.benchmarks.bench_jobs --learners 6 --within 10 --architectures cnn

Each learner, at a random moment of the first ``--within`` seconds, takes the
Train page's defaults (sized for a class) for an architecture of the list in
turn, reads the estimate the page shows (``jobs.queue_times`` with the job
joining the queue) and submits, as the page does. The jobs train on this
process's local Ray instance (the app's training slots) into a throwaway
database, or ``DIGIT_ZOO_DATABASE_URL``'s, whose measured speeds then serve
the next run's estimates: ``--warm N`` first trains N jobs of each
architecture, as a server that has had a class before. Per job: the estimated
and actual start and end (seconds from its submit); then when the last
version was saved, and how far the estimates were from what happened.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time

from model_zoo import architectures, db, estimates, jobs
from model_zoo.jobs import JobState
from model_zoo.training import TrainingSettings
from scripts.benchmarks.bench import machine

TOLERANCE = 0.30  # the issue's: each estimate within ±30 % of what happened


def wait_for_all(ids: list[str]) -> None:
    while any(jobs.view(job_id).active for job_id in ids):
        time.sleep(0.5)


def warm_up(names: list[str], count: int) -> None:
    """Train ``count`` default jobs of each architecture: the speeds a server that has had a class knows."""
    ids = [
        jobs.submit(TrainingSettings.for_architecture(name, class_sized=True), owner=f"warm-{name}-{i}")
        for name in names
        for i in range(count)
    ]
    wait_for_all(ids)
    estimates.forget()


def press_start(names: list[str], learners: int, within: float, seed: int) -> list[dict]:
    """The class's submits at random moments of ``within`` seconds; each with the estimate it was shown."""
    rng = random.Random(seed)
    moments = sorted(rng.uniform(0, within) for _ in range(learners))
    began = time.monotonic()
    submitted = []
    for i, moment in enumerate(moments):
        time.sleep(max(0.0, moment - (time.monotonic() - began)))
        settings = TrainingSettings.for_architecture(names[i % len(names)], class_sized=True)
        shown = jobs.queue_times(jobs.views(), joining=settings)[""]
        submit_time = time.time()
        job_id = jobs.submit(settings, owner=f"learner-{i}", learner=f"bench-learner-{i}-{seed}")
        submitted.append({"id": job_id, "arch": settings.arch, "shown": shown, "submitted": submit_time})
    return submitted


def outcomes(submitted: list[dict]) -> list[dict]:
    with db.engine().connect() as connection:
        rows = {
            row.id: row
            for row in connection.execute(
                db.jobs.select().where(db.jobs.c.id.in_([job["id"] for job in submitted]))
            ).all()
        }
    for job in submitted:
        row = rows[job["id"]]
        job["state"] = row.state
        job["started"] = (row.started_at or row.ended_at) - job["submitted"]
        job["ended"] = row.ended_at - job["submitted"]
    return submitted


def within(estimate: float, actual: float) -> bool:
    """±30 %, with a few seconds' grace for what takes a few seconds (a rounding of the clock, not a forecast)."""
    return abs(estimate - actual) <= max(TOLERANCE * actual, 5.0)


def report(results: list[dict], began: float) -> None:
    saved = sum(job["state"] == JobState.SAVED.value for job in results)
    last = max(job["submitted"] + job["ended"] for job in results) - began
    print("| learner | architecture | start: shown → actual | end: shown → actual | state |")
    print("|---:|---|---:|---:|---|")
    for i, job in enumerate(results):
        (start, end), marks = job["shown"], ("" if within(job["shown"][1], job["ended"]) else " ✗")
        print(
            f"| {i} | {job['arch']} | {start:.0f} s → {job['started']:.0f} s | "
            f"{end:.0f} s → {job['ended']:.0f} s{marks} | {job['state']} |"
        )
    ends = [job["shown"][1] / job["ended"] for job in results if job["ended"] > 0]
    starts = [job["shown"][0] / job["started"] for job in results if job["started"] > 5]
    inside = sum(within(job["shown"][1], job["ended"]) for job in results)
    inside_start = sum(within(job["shown"][0], job["started"]) for job in results)
    print(
        f"\n{saved} of {len(results)} versions saved; the last {last / 60:.1f} min after the first Start. "
        f"End estimates within ±30 %: {inside} of {len(results)} (shown / actual: median "
        f"{statistics.median(ends):.2f}, {min(ends):.2f} to {max(ends):.2f}); start estimates: "
        f"{inside_start} of {len(results)}"
        + (f" (median {statistics.median(starts):.2f}, {min(starts):.2f} to {max(starts):.2f})" if starts else "")
        + "."
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--within", type=float, default=60, help="seconds in which they all press Start")
    parser.add_argument("--architectures", default=",".join(architectures.ZOO), help="taken in turn, comma-separated")
    parser.add_argument("--warm", type=int, default=0, help="default jobs of each architecture trained first")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault(db.URL_VARIABLE, f"sqlite:///{tempfile.mkdtemp(prefix='digit_zoo_bench_jobs_')}/jobs.db")
    names = args.architectures.split(",")
    about = machine()
    print(f"{jobs.capacity() or jobs.training_slots()} training slot(s); database {db.describe()}", flush=True)
    if args.warm:
        warm_up(names, args.warm)
    began = time.time()
    submitted = press_start(names, args.learners, args.within, args.seed)
    wait_for_all([job["id"] for job in submitted])
    print(
        f"{about['cpu']}, {about['cores']} cores, Python {about['python']}; load average "
        f"{about['load_average_at_start']} at the start, {os.getloadavg()[0]:.2f} at the end\n"
    )
    report(outcomes(submitted), began)


if __name__ == "__main__":
    main()
