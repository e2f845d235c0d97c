"""The project's fixed places, and the server settings read from the environment.

One home for both, at the bottom of the package: every module may read them,
and this module imports none of the others.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
TRAINED_DIR = PACKAGE_DIR / "trained"  # the shipped models: <name>.keras beside its <name>.json record
MODEL_CACHE = Path(tempfile.gettempdir()) / "digit_zoo_models"  # versions' bytes as files, by hash
# Temporary folders of jobs, saves and fine-tuning starts: a killed process leaves them, and
# housekeeping.remove_leftovers finds them by this prefix.
SCRATCH_PREFIX = "digit_zoo_scratch_"


class SettingsError(ValueError):
    """A setting (of a training job, or of the server) outside what this server allows."""


def whole_number_from_env(variable: str, default: int, minimum: int = 1) -> int:
    """A server setting from the environment; SettingsError names the variable if it is not usable."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{variable}={text!r} is not a whole number.") from None
    if value < minimum:
        raise SettingsError(f"{variable} must be at least {minimum}, got {value}.")
    return value
