"""The zoo: shipped files, versions in the database (SQLite and PostgreSQL), clear errors, no half saves."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

import h5py
import keras
import numpy as np
import pytest
import sqlalchemy as sa

from model_zoo import config, db, housekeeping, model_files, store
from model_zoo.architectures import ZOO
from ui import models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _record(arch="mlp_1x50", accuracy=0.5):
    return {"arch": arch, "test_accuracy": accuracy, "settings": {"epochs": 1}}


def save(model, record, name="", key: str | None = None) -> store.ZooEntry:
    """A user version, as a job's save makes it (``key``: its job's secret)."""
    with db.engine().begin() as connection:
        return store.insert_version(
            connection,
            name,
            record | {"params": model.count_params()},
            model_files.model_bytes(model),
            owner_key=db.hashed_key(key),
        )


@pytest.fixture(scope="module")
def tiny_model():
    model = ZOO["mlp_1x50"].build()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((16, 28, 28), dtype=np.float32)
    model.fit(x, np.eye(10)[np.arange(16) % 10], epochs=1, verbose=0)  # creates optimizer state
    return model


def test_saved_version_round_trips_without_optimizer_state(tiny_model, any_database):
    entry = save(tiny_model, _record(), "my model!")
    assert entry.name == "my-model" and not entry.shipped
    listed = store.scan().get("my-model")
    assert listed.record["params"] == 39_760 and listed.record["versions"]["keras"] == keras.__version__
    loaded = keras.models.load_model(listed.model_file())  # plain Keras is enough
    x = np.random.default_rng(1).random((3, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), tiny_model.predict(x, verbose=0), rtol=1e-6)
    with zipfile.ZipFile(listed.model_file()) as archive, archive.open("model.weights.h5") as weights:
        assert "optimizer" not in h5py.File(io.BytesIO(weights.read()))
    assert getattr(loaded, "optimizer", None) is None
    assert models.label(listed) == "my-model (50.00% · your version of mlp_1x50)"


def test_version_names_are_sanitised_unique_and_never_shipped(tiny_model, any_database):
    assert save(tiny_model, _record(), "cnn").name == "cnn-2"  # a shipped name is never reused
    first = save(tiny_model, _record(), "")
    assert first.name.startswith("mlp_1x50@")
    second = save(tiny_model, _record(), first.name)
    assert second.name == f"{first.name}-2"
    assert save(tiny_model, _record(), "../../etc/passwd").name == "etc-passwd"


def test_learners_saving_under_one_name_at_once_get_two_versions(tiny_model, any_database):
    content = model_files.model_bytes(tiny_model)
    start, names, errors = threading.Barrier(4), [], []

    def save(accuracy):
        start.wait()
        try:
            with db.engine().begin() as connection:
                names.append(
                    store.insert_version(
                        connection, "dup", _record(accuracy=accuracy) | {"params": 39_760}, content
                    ).name
                )
        except Exception as error:  # noqa: BLE001 - the test reports whatever went wrong
            errors.append(error)

    threads = [threading.Thread(target=save, args=(i / 10,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sorted(names) == ["dup", "dup-2", "dup-3", "dup-4"]
    accuracies = {store.scan().get(name).test_accuracy for name in names}
    assert accuracies == {0.0, 0.1, 0.2, 0.3}  # nobody's model was overwritten


SAVER = """
from model_zoo import db, model_files, store
from model_zoo.architectures import ZOO
model = ZOO["mlp_5x500_dropout"].build()  # 5.6 MB: a save takes a while
content = model_files.model_bytes(model)
print("ready", flush=True)
for i in range(1000):
    with db.engine().begin() as connection:
        store.insert_version(connection, f"v{i}", {"arch": "mlp_5x500_dropout", "test_accuracy": 0.5,
                                                   "params": model.count_params()}, content)
    print("saved", i, flush=True)
"""


def test_a_server_killed_mid_save_leaves_whole_versions_only(any_database):
    """kill -9 a process that saves versions, at a random moment: no half version, ever."""
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    lines = []
    for line in saver.stdout:  # let it save a few, then kill it in the middle of the next
        lines.append(line)
        if line.startswith("saved 2"):
            break
    time.sleep(np.random.default_rng().uniform(0.05, 0.5))
    saver.send_signal(signal.SIGKILL)
    saver.wait()
    versions = [entry for entry in store.scan().entries if not entry.shipped]
    assert len(versions) >= 3
    for entry in versions:  # every listed version is whole
        assert model_files.load_model(entry.model_file()).count_params() == entry.record["params"]


def test_a_shipped_write_interrupted_before_replace_keeps_the_previous_file(tiny_model, tmp_path, monkeypatch):
    entry = store.save_shipped(tiny_model, _record(accuracy=0.1), tmp_path, "kept")
    before = entry.model_file().read_bytes()

    def crash(*args):
        raise KeyboardInterrupt("power cut")

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(os, "replace", crash)
        store.save_shipped(ZOO["mlp_1x500"].build(), _record(accuracy=0.9), tmp_path, "kept")
    assert entry.model_file().read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json", "kept.keras"]  # no leftovers


@pytest.mark.parametrize("damage", [b"", b"garbage" * 10, "truncate"])
def test_a_damaged_model_file_gives_one_clear_error(tiny_model, tmp_path, damage):
    entry = store.save_shipped(tiny_model, _record(), tmp_path, "broken")
    content = entry.model_file().read_bytes()
    entry.model_file().write_bytes(content[: len(content) // 2] if damage == "truncate" else damage)
    with pytest.raises(model_files.ModelFileError, match="Model file is damaged: broken.keras") as caught:
        model_files.load_model(entry.model_file())
    assert str(tmp_path) not in str(caught.value)  # users read it: no server paths


@pytest.mark.parametrize(
    "record, reason",
    [
        ({"arch": "mlp_9x9", "test_accuracy": 0.5}, "names no known architecture"),
        ({"test_accuracy": 0.5}, "names no known architecture"),
        ({"arch": "cnn", "test_accuracy": "high"}, "has no test accuracy"),
        (["not", "an", "object"], "not a JSON object"),
    ],
)
def test_versions_with_an_unusable_record_are_skipped_with_a_reason(tiny_model, database, record, reason):
    save(tiny_model, _record(), "fine")
    with db.engine().begin() as connection:
        connection.execute(
            db.versions.insert().values(name="odd", arch="?", created=12345, record=record, model=b"", model_sha256="0")
        )
    listing = store.scan()
    assert "odd" not in listing.names and "fine" in listing.names
    assert [p for p in listing.problems if p.startswith("Skipped version odd: ") and reason in p]


def test_shipped_models_cannot_be_deleted_but_versions_can(tiny_model, any_database):
    shipped = store.scan().get("cnn")
    with pytest.raises(store.VersionError, match="cnn is a shipped model and cannot be deleted"):
        store.delete_version(shipped, teacher=True)
    version = save(tiny_model, _record(), "gone", key="mine")
    store.delete_version(version, ["other", "mine"])
    assert "gone" not in store.scan().names


def test_only_its_learner_or_the_teacher_deletes_a_version(tiny_model, any_database):
    version = save(tiny_model, _record(), "otters", key="otter-secret")
    scripted = save(tiny_model, _record(), "scripted")  # by scripts.train: nobody's key
    for entry, keys in ((version, []), (version, ["heron-secret"]), (scripted, ["otter-secret"])):
        assert not store.may_delete(entry, keys)
        with pytest.raises(
            store.VersionError, match=f"Only the learner who trained {entry.name}, or the teacher, can delete it"
        ):
            store.delete_version(entry, keys)
    assert {"otters", "scripted"} <= set(store.scan().names)
    store.delete_version(scripted, teacher=True)
    store.delete_version(version, ["otter-secret"])
    assert not {"otters", "scripted"} & set(store.scan().names)


def test_update_record_adds_fields(tiny_model, any_database, tmp_path):
    entry = save(tiny_model, _record(), "scored")
    updated = store.update_record(entry, usps_accuracy=0.9)
    assert store.scan().get("scored").record["usps_accuracy"] == 0.9
    assert updated.record["arch"] == "mlp_1x50"
    shipped = store.save_shipped(tiny_model, _record(), tmp_path, "file")
    store.update_record(shipped, usps_accuracy=0.8)
    assert json.loads(shipped.file.with_suffix(".json").read_text())["usps_accuracy"] == 0.8


def test_unknown_model_names_the_choices(database):
    with pytest.raises(KeyError, match="Unknown model 'nope'. Expected one of: "):
        store.scan().get("nope")


def test_a_bad_database_url_says_what_to_set(monkeypatch):
    monkeypatch.setenv(db.URL_VARIABLE, "not a url")
    with pytest.raises(db.DatabaseError, match="DIGIT_ZOO_DATABASE_URL='not a url' is not a database URL"):
        db.engine()


def test_a_database_from_a_newer_app_is_refused(database):
    with db.engine().begin() as connection:
        connection.execute(db.schema_version.update().values(version=db.SCHEMA_VERSION + 1))
    db._engines.clear()  # as a new server process would
    with pytest.raises(db.DatabaseError, match="newer than this app's"):
        db.engine()
    db._engines.clear()


def test_the_default_database_is_a_file_in_data(monkeypatch):
    monkeypatch.delenv(db.URL_VARIABLE, raising=False)
    assert db.url().database == str(db.DEFAULT_PATH)
    monkeypatch.setenv(db.URL_VARIABLE, "postgresql://teacher:secret@school/zoo")
    assert db.url().drivername == "postgresql+psycopg"
    assert "secret" not in db.describe()


def test_the_versions_table_keeps_the_bytes_a_plain_keras_can_load(tiny_model, any_database):
    entry = save(tiny_model, _record(), "bytes")
    with db.engine().connect() as connection:
        content = connection.execute(sa.select(db.versions.c.model).where(db.versions.c.name == "bytes")).scalar()
    assert content == entry.model_file().read_bytes()


def test_a_database_of_the_previous_schema_is_brought_up_to_date(database):
    with db.engine().begin() as connection:  # as the first schema made it: no keys, no learners
        connection.execute(sa.text("DROP INDEX one_active_job_per_learner"))
        for table, column in [
            ("jobs", "owner_key"),
            ("jobs", "learner_key"),
            ("jobs", "handed_at"),
            ("versions", "owner_key"),
        ]:
            connection.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        connection.execute(sa.text("DROP TABLE learners"))
        connection.execute(db.schema_version.update().values(version=1))
    db._engines.clear()  # as a new server process would
    with db.engine().connect() as connection:
        assert connection.execute(sa.select(db.schema_version.c.version)).scalar() == db.SCHEMA_VERSION
        columns = {
            table: {column["name"] for column in sa.inspect(connection).get_columns(table)}
            for table in ("jobs", "versions", "learners")
        }
        assert {"owner_key", "learner_key", "handed_at"} <= columns["jobs"] and "owner_key" in columns["versions"]
        assert "one_active_job_per_learner" in {index["name"] for index in sa.inspect(connection).get_indexes("jobs")}
    db._engines.clear()


@pytest.mark.parametrize(
    "layers, says",
    [
        (
            [keras.Input((32, 32)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")],
            r"takes \(32, 32\) and gives \(10,\)",
        ),
        (
            [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(5, activation="softmax")],
            r"takes \(28, 28\) and gives \(5,\)",
        ),
    ],
)
def test_a_model_that_breaks_the_contract_is_refused_with_the_reason(tmp_path, layers, says):
    path = tmp_path / "odd.keras"
    keras.Sequential(layers).save(path)
    with pytest.raises(model_files.ModelFileError, match=f"odd.keras does not fit the zoo: it {says}"):
        model_files.load_model(path)


def lambda_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Lambda(lambda x: x * 2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


@pytest.mark.parametrize(
    "build, says",
    [
        (lambda: ZOO["mlp_1x50"].build(), None),
        (
            lambda: keras.Sequential([keras.Input((32, 32)), keras.layers.Flatten(), keras.layers.Dense(10)]),
            r"does not fit the zoo: it takes \(32, 32\)",
        ),
        (
            lambda: keras.Sequential(
                [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(5, activation="softmax")]
            ),
            r"and gives \(5,\)",
        ),
        (lambda_model, "refused: it contains code"),
        (None, "damaged: it is not a Keras model file"),
    ],
)
def test_the_contract_is_read_from_the_config_before_any_page_offers_a_model(tmp_path, build, says):
    path = tmp_path / "candidate.keras"
    if build is None:
        path.write_bytes(b"PK\x03\x04 not really a zip")
    else:
        build().save(path)
    problem = model_files.contract_problem(path)
    assert problem is None if says is None else re.search(says, problem), problem


def test_a_lambda_model_is_refused_as_code_not_called_damaged(tmp_path):
    path = tmp_path / "clever.keras"
    lambda_model().save(path)
    with pytest.raises(model_files.ModelFileError, match="clever.keras is refused: it contains code"):
        model_files.load_model(path)


def test_what_a_killed_process_left_is_removed_once_it_is_old(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # scratch folders go here in this test
    monkeypatch.setattr(config, "MODEL_CACHE", tmp_path / "models")
    monkeypatch.setattr(config, "TRAINED_DIR", tmp_path / "trained")
    stale = [
        tmp_path / "trained" / ".cnn.x1y2.keras",
        tmp_path / "models" / ".abc.q9.keras",
        tmp_path / f"{config.SCRATCH_PREFIX}job42_k3",
    ]
    fresh = [tmp_path / "trained" / ".cnn.a7b8.keras", tmp_path / f"{config.SCRATCH_PREFIX}job43_m1"]
    kept = [tmp_path / "trained" / "cnn.keras", tmp_path / "other_program_tmp"]
    for path in stale + fresh + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if "scratch" in path.name else path.write_bytes(b"x")
    (tmp_path / f"{config.SCRATCH_PREFIX}job42_k3" / "events.out").write_bytes(b"logs")
    day_ago = time.time() - housekeeping.LEFTOVER_SECONDS - 60
    for path in stale + kept:
        os.utime(path, (day_ago, day_ago))
    assert sorted(housekeeping.remove_leftovers()) == sorted(stale)
    assert all(p.exists() for p in fresh + kept) and not any(p.exists() for p in stale)


def test_shipped_records_are_read_once_and_again_when_rewritten(tmp_path, monkeypatch):
    # Every page run lists the zoo: an unchanged record is not parsed again, a rewritten one is.
    for name in ("cnn", "mlp_1x50"):
        (tmp_path / f"{name}.keras").write_bytes(b"")
        (tmp_path / f"{name}.json").write_text(json.dumps(_record(name, 0.5)))
    monkeypatch.setattr(config, "TRAINED_DIR", tmp_path)
    first = store.scan_shipped()
    assert store.scan_shipped().get("cnn") is first.get("cnn")
    rewritten = _record("cnn", 0.75) | {"note": "retrained"}  # another size: a new record whatever the clock
    (tmp_path / "cnn.json").write_text(json.dumps(rewritten))
    again = store.scan_shipped()
    assert again.get("cnn").test_accuracy == 0.75
    assert again.get("mlp_1x50") is first.get("mlp_1x50")
    (tmp_path / "cnn.json").unlink()
    assert store.scan_shipped().names == ["mlp_1x50"]


def test_a_page_reading_holds_no_lock_that_a_writer_waits_for(database, monkeypatch):
    # Every page run reads through db.reading(); on SQLite a reader mid-transaction must not hold
    # the write lock (as BEGIN IMMEDIATE would), or a class's page runs queue behind each other.
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 3)  # a writer kept waiting fails in 3 s, not 30
    with db.reading() as reader:
        assert reader.execute(sa.select(db.classes.c.name)).all() == []  # its transaction is open
        started = time.monotonic()
        with db.engine().begin() as writer:  # BEGIN IMMEDIATE: the write lock
            writer.execute(db.classes.insert().values(name="5B", created="2026-12-06T20:00:00+00:00"))
        assert time.monotonic() - started < 2  # no wait for the reader
        with db.reading() as other_reader:
            assert other_reader.execute(sa.select(db.classes.c.name)).scalars().all() == ["5B"]
