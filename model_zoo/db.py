"""The database: user versions, training jobs and their progress, the class's digits (SQLAlchemy Core).

A SQLite file by default (``data/digit_zoo.db``, created on first use), or
any database SQLAlchemy reaches by URL in ``DIGIT_ZOO_DATABASE_URL``, e.g.
``postgresql://user@host/db`` for a school's several servers and Ray nodes
(``postgresql://`` is read as ``postgresql+psycopg://``, the driver we pin).

The schema is created by ``create_all`` and numbered in ``schema_version``:
a database made by a newer app is refused rather than misread, and a future
change of schema adds its step to ``MIGRATIONS``.

    engine = db.engine()                   # one per process and URL, schema ready
    with engine.begin() as connection:     # one transaction: all or nothing
        connection.execute(db.versions.insert().values(...))
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from model_zoo.config import PROJECT_ROOT

URL_VARIABLE = "DIGIT_ZOO_DATABASE_URL"
DEFAULT_PATH = PROJECT_ROOT / "data" / "digit_zoo.db"
SCHEMA_VERSION = 5
ONE_ACTIVE_JOB = (
    "CREATE UNIQUE INDEX IF NOT EXISTS one_active_job_per_learner ON jobs (learner_key) "
    "WHERE state IN ('queued', 'running')"
)  # = job_records.ACTIVE; NULLs (scripts) never clash
MIGRATIONS: dict[int, list[str]] = {  # version → SQL that brings version - 1 up to it
    2: ["ALTER TABLE jobs ADD COLUMN owner_key VARCHAR(64)"],
    3: ["ALTER TABLE versions ADD COLUMN owner_key VARCHAR(64)"],
    4: [
        "ALTER TABLE jobs ADD COLUMN learner_key VARCHAR(64)",
        ONE_ACTIVE_JOB,
        "ALTER TABLE jobs ADD COLUMN handed_at FLOAT",
    ],  # create_all: learners, settings
    5: [],  # create_all: job_timings
}
SQLITE_BUSY_SECONDS = 30  # writers queue behind each other instead of failing at once
CONNECT_SECONDS = 5  # a database server that does not answer: a message, not a hung page

metadata = sa.MetaData()

schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

# A user version of a zoo model: the .keras file's bytes and its record.
versions = sa.Table(
    "versions",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),  # unique: two savers never share one
    sa.Column("arch", sa.String(50), nullable=False),
    sa.Column("created", sa.String(40), nullable=False),  # ISO 8601, UTC: sorts as text
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("model", sa.LargeBinary, nullable=False),  # the .keras file
    sa.Column("model_sha256", sa.String(64), nullable=False),
    sa.Column("tensorboard", sa.LargeBinary),  # a zip of the run's TensorBoard logs
    sa.Column("owner_key", sa.String(64)),  # its job's owner_key; None (trained by a script): the teacher's
)

# A training job, from the queue to its end. Its worker writes progress here,
# so every server on the database sees it, and it outlives a server restart.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(100), nullable=False),
    sa.Column("owner_key", sa.String(64)),  # SHA-256 of the secret in its owner's link; None: anyone's
    sa.Column("learner_key", sa.String(64)),  # SHA-256 of its learner's browser id; None: a script's job
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("requested_name", sa.String(100), nullable=False, default=""),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("phase", sa.Text, nullable=False, default=""),
    sa.Column("cluster", sa.String(200), nullable=False),  # the Ray instance it was sent to
    sa.Column("worker", sa.String(200), nullable=False, default=""),  # host:pid training it
    sa.Column("submitted_at", sa.Float, nullable=False),  # Unix seconds
    sa.Column("handed_at", sa.Float),  # when Ray had it: before, no Ray instance can know it
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("heartbeat_at", sa.Float),  # the worker's last word
    sa.Column("progress", sa.JSON),  # epoch, step, curves: JobProgress.snapshot()
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("stop_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("saved_name", sa.String(100), nullable=False, default=""),
    sa.Column("test_accuracy", sa.Float),
    sa.Column("stopped_early", sa.Boolean, nullable=False, default=False),
    # A stopped (or finished but unsaved) job's model, until its owner saves or discards it.
    sa.Column("result_record", sa.JSON),
    sa.Column("result_model", sa.LargeBinary),
    sa.Column("result_tensorboard", sa.LargeBinary),
)


# How long a job that trained to its end took, for the estimates of the next ones (model_zoo.estimates).
job_timings = sa.Table(
    "job_timings",
    metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("speed_key", sa.String(100), nullable=False, index=True),  # what sets its speed: estimates.speed_key
    sa.Column("digits_per_second", sa.Float, nullable=False),  # in its steady epochs
    sa.Column("fixed_seconds", sa.Float, nullable=False),  # the rest: starting, building, scoring, saving
    sa.Column("ended_at", sa.Float, nullable=False),  # Unix seconds
)

# A learner of the Train page: their browser's id (hashed) and the nickname the class sees, one each.
learners = sa.Table(
    "learners",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # SHA-256 of the id their browser keeps
    sa.Column("nickname", sa.String(100), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),  # Unix seconds
)

# The server's own settings kept with the data, e.g. the teacher's password (hashed: model_zoo.teacher).
settings = sa.Table(
    "settings",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# The classes a teacher named (the default "my class" needs no row).
classes = sa.Table(
    "classes",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("created", sa.String(40), nullable=False),
)

# A digit a learner drew and kept with a label (model_zoo.class_digits).
class_digits = sa.Table(
    "class_digits",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("class_name", sa.String(100), nullable=False, index=True),
    sa.Column("learner", sa.String(100), nullable=False),
    sa.Column("owner_key", sa.String(64), index=True),  # SHA-256 of the keeper's session secret; None: imported
    sa.Column("label", sa.SmallInteger, nullable=False),
    sa.Column("image", sa.LargeBinary, nullable=False),  # 784 bytes: the (28, 28) uint8 the models saw
    sa.Column("fingerprint", sa.String(64), nullable=False),  # SHA-256 of image: a class keeps it once
    sa.Column("picture", sa.LargeBinary),  # the canvas as drawn, PNG; None for uploads and imports
    sa.Column("readings", sa.JSON, nullable=False),  # model → [digit, confidence] when kept
    sa.Column("pen", sa.Integer),
    sa.Column("created", sa.String(40), nullable=False),  # ISO 8601, UTC
    sa.Column("source", sa.String(120), nullable=False),
    sa.Column("held_out", sa.Boolean, nullable=False),  # the split, decided once when stored
    sa.UniqueConstraint("class_name", "fingerprint"),
)

# The class's challenge (model_zoo.challenge): one per class, the latest; running while ``ended`` is None.
challenges = sa.Table(
    "challenges",
    metadata,
    sa.Column("class_name", sa.String(100), primary_key=True),
    sa.Column("started", sa.String(40), nullable=False),  # ISO 8601, UTC
    sa.Column("ended", sa.String(40)),
)


class DatabaseError(RuntimeError):
    """The database cannot be used as configured."""


def url(text: str | None = None) -> URL:
    """The database URL (``text``, else the configured one), with the pinned PostgreSQL driver."""
    text = (os.environ.get(URL_VARIABLE, "") if text is None else text).strip()
    if not text:
        return URL.create("sqlite", database=str(DEFAULT_PATH))
    try:
        parsed = make_url(text)
    except sa.exc.ArgumentError:
        raise DatabaseError(
            f"{URL_VARIABLE}={text!r} is not a database URL. Expected e.g. "
            "sqlite:////path/digit_zoo.db or postgresql://user@host/db."
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database).expanduser().absolute()))
    return parsed


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def hashed_key(key: str | None) -> str | None:
    """How an owner's secret is kept: its SHA-256, so the database never holds the secret itself."""
    return hashlib.sha256(key.encode()).hexdigest() if key is not None else None


def sqlite_file(database: str | None = None) -> Path | None:
    """The file of a SQLite database (default: the configured one); None for a server database."""
    target = url(database)
    return Path(target.database) if target.drivername.startswith("sqlite") and target.database else None


def engine(database: str | None = None) -> Engine:
    """The engine for ``database`` (default: the configured URL), its schema ready; one per process."""
    target = url(database)
    key = target.render_as_string(hide_password=False)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = _connect(target)
        return _engines[key]


_READ_ONLY = "digit_zoo_read_only"  # the execution option that marks reading()'s connections


def reading(database: str | None = None) -> sa.Connection:
    """A connection for reads only (every page run lists the zoo and counts digits).

    On SQLite its transaction is a plain BEGIN, a snapshot that takes no lock:
    with BEGIN IMMEDIATE, the writers' begin, each page's reads queued for the
    write lock, and a reader that lost the GIL while holding it kept the others
    asleep in SQLite's busy handler (30 threads reading while two computed:
    p95 2.1–2.8 s a read, against 0.2–0.3 s with BEGIN). Never write through it.
    """
    return engine(database).connect().execution_options(**{_READ_ONLY: True})


def _connect(target: URL) -> Engine:
    if target.drivername.startswith("sqlite"):
        if target.database:
            Path(target.database).parent.mkdir(parents=True, exist_ok=True)
        created = sa.create_engine(target, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        sa.event.listen(created, "connect", _sqlite_connection)
        sa.event.listen(created, "begin", _sqlite_begin)
    else:  # pre-ping: a server restarted under a running app is reconnected to, not reported broken
        created = sa.create_engine(target, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_SECONDS})
    sa.event.listen(created, "handle_error", _unreachable)
    try:
        _prepare_schema(created)
    except sa.exc.OperationalError as error:
        raise DatabaseError(
            f"Cannot open the database {target.render_as_string()}: {str(error.orig).strip()}. Check {URL_VARIABLE}."
        ) from None
    return created


def _sqlite_connection(connection, _record) -> None:
    # The driver would BEGIN only at the first INSERT/UPDATE/DELETE, leaving the reads and savepoints
    # before it outside the transaction (docs/facts.md): it begins nothing now, _sqlite_begin does.
    connection.isolation_level = None
    # WAL: a reader never waits for a writer's commit, nor a writer for a reader.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection) -> None:
    if connection.get_execution_options().get(_READ_ONLY):  # reading(): no lock to queue for
        connection.exec_driver_sql("BEGIN")
        return
    # IMMEDIATE takes the write lock at once, so what a transaction read still holds when it writes
    # (a check, then an insert); other writers wait up to SQLITE_BUSY_SECONDS.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _unreachable(context: sa.engine.ExceptionContext) -> DatabaseError | None:
    """A database that cannot be reached (stopped, restarting): one DatabaseError the pages show.

    Not for a failed pre-ping: SQLAlchemy then reconnects by itself, which is
    how the app recovers, with no restart, once the database is back.
    """
    if context.is_pre_ping or not (context.is_disconnect or context.connection is None):
        return None
    reason = str(context.original_exception).strip().splitlines()[0][:200]
    return DatabaseError(
        f"the database cannot be reached ({reason}). It may be restarting: this works again "
        "by itself once it is back; tell the teacher if it lasts."
    )


def _prepare_schema(created: Engine) -> None:
    with created.begin() as connection:
        if created.dialect.name == "postgresql":
            # Two servers starting at once must not both create the tables.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(4242)"))
        metadata.create_all(connection)
        found = connection.execute(sa.select(schema_version.c.version)).scalar()
        if found is None:
            connection.execute(sa.text(ONE_ACTIVE_JOB))
            connection.execute(schema_version.insert().values(version=SCHEMA_VERSION))
            return
        if found > SCHEMA_VERSION:
            raise DatabaseError(
                f"The database has schema version {found}, newer than this app's "
                f"{SCHEMA_VERSION}: update the app, or point {URL_VARIABLE} elsewhere."
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                connection.execute(sa.text(statement))
        connection.execute(schema_version.update().values(version=SCHEMA_VERSION))


WRITERS_LOCK = 4243  # PostgreSQL advisory lock id: what SQLite's BEGIN IMMEDIATE is to a transaction


def one_writer_at_a_time(connection: sa.Connection) -> None:
    """Let no other such transaction run until this one ends: a count checked here still holds at its insert.

    SQLite's every transaction is already one (BEGIN IMMEDIATE); on PostgreSQL a
    transaction-scoped advisory lock makes the checks-then-insert of a submit or
    a keep one step (read committed would let two of them count the same rows).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": WRITERS_LOCK})


def describe() -> str:
    """Where the data lives, in words, without a password."""
    target = url()
    if target.drivername.startswith("sqlite"):
        return f"SQLite file {target.database}"
    return f"{target.get_backend_name()} database {target.render_as_string(hide_password=True)}"
