"""Shared fixtures. Tests that need full MNIST fail in CI (REQUIRE_MNIST=1) and skip elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from model_zoo import data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def require_mnist():
    """((x_train, y_train), (x_test, y_test)), or skip/fail with the reason."""
    try:
        return data.load_mnist()
    except data.DataNotFoundError as error:
        if os.environ.get("REQUIRE_MNIST") == "1":
            pytest.fail(f"REQUIRE_MNIST=1 but MNIST is missing: {error}")
        pytest.skip(f"needs full MNIST: {error}")


@pytest.fixture(scope="session")
def mnist():
    return require_mnist()


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A private folder for user versions, so tests never touch data/user_models."""
    folder = tmp_path / "user_models"
    monkeypatch.setenv("DIGIT_ZOO_USER_DIR", str(folder))
    return folder
