"""Shared fixtures. Tests that need MNIST or USPS fail in CI (REQUIRE_MNIST=1) and skip elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from model_zoo import data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A private folder for user versions, so tests never touch data/user_models."""
    folder = tmp_path / "user_models"
    monkeypatch.setenv("DIGIT_ZOO_USER_DIR", str(folder))
    return folder
