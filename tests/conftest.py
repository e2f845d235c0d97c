"""Shared fixtures. Tests that need MNIST, USPS or UNIPEN fail in CI (REQUIRE_MNIST=1) and skip elsewhere."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from model_zoo import cluster, data, db  # noqa: E402
from tests import postgres  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The markers ``make test-fast`` selects by: browser, postgres and slow tests are told by what they use."""
    browser_tests = ROOT / "tests" / "browser"
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if browser_tests in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)
        if "postgres_server" in fixtures or params.get("any_database") == "postgresql":
            item.add_marker(pytest.mark.postgres)
        if fixtures & {"on_ray", "ray_local"}:
            item.add_marker(pytest.mark.slow)


def missing_service(reason: str):
    """Skip for lack of a service; in CI (REQUIRE_SERVICES=1, installed by `make test`) fail."""
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def missing_data(reason: str):
    """Skip for lack of a data file; in CI (REQUIRE_MNIST=1, data beside the repo) fail."""
    if os.environ.get("REQUIRE_MNIST") == "1":
        pytest.fail(f"REQUIRE_MNIST=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mnist():
    """((x_train, y_train), (x_test, y_test)) from the real MNIST file."""
    try:
        return data.load_mnist()
    except data.DataNotFoundError as error:
        missing_data(f"MNIST is missing: {error}")


@pytest.fixture(scope="session")
def usps_path():
    path = data.find_usps()
    if path is None:
        missing_data("USPS is missing: set USPS_PATH=/path/to/usps.npz or put it in data/")
    return path


@pytest.fixture(scope="session")
def pen_digits() -> list[data.PenDigit]:
    """UNIPEN's real pen-stroke digits (UNIPEN_PATH, data/, ../shared/data/)."""
    try:
        return data.load_pen_digits()
    except data.DataNotFoundError as error:
        missing_data(f"UNIPEN's pen strokes are missing: {error}")


@pytest.fixture
def database(tmp_path, monkeypatch) -> str:
    """A fresh SQLite database for the test's versions and jobs, never data/digit_zoo.db."""
    url = f"sqlite:///{tmp_path / 'digit_zoo.db'}"
    monkeypatch.setenv(db.URL_VARIABLE, url)
    return url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server (Debian's postgresql) on 127.0.0.1: its base URL."""
    with postgres.running_server() as url:
        if url is None:
            missing_service("PostgreSQL is not installed: apt-get install postgresql")
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request, tmp_path, monkeypatch) -> str:
    """The test runs twice: on a fresh SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return request.getfixturevalue("database")
    url = postgres.fresh_database(request.getfixturevalue("postgres_server"))
    monkeypatch.setenv(db.URL_VARIABLE, url)
    return url


@pytest.fixture
def on_ray(ray_local, database, mnist):
    """The session's Ray instance and a fresh database; the test's jobs are stopped after it."""
    from model_zoo import jobs

    yield
    for view in jobs.views():
        if view.active:
            jobs.stop(view.id, teacher=True)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance (one training slot) for the whole test session, as the app starts it."""
    os.environ[cluster.SLOTS_VARIABLE] = "1"
    os.environ.pop("RAY_ADDRESS", None)
    cluster.connect()  # it stops with the test session's process
