"""The server's disk: room enough for a job before it starts, and what killed processes left behind."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

from model_zoo import config, db

LOG = logging.getLogger(__name__)


MIN_FREE_BYTES = 200 * 2**20  # a job's logs and a version's bytes take a few MB; less room is a full disk


def storage_problem() -> str | None:
    """Why a job could not keep what it makes here (no room, nothing writable); None if it can.

    Checked before a job is queued, so a full or read-only disk is one clear
    message instead of a job failing with TensorFlow's words at its end. The
    reason names no folder (learners read it); the log does.
    """
    places = {"the server's temporary folder": Path(tempfile.gettempdir())}
    if (database := db.sqlite_file()) is not None:
        places["the database's folder"] = database.parent
    for what, folder in places.items():
        try:
            with tempfile.TemporaryDirectory(prefix=config.SCRATCH_PREFIX, dir=folder):
                pass
            free = shutil.disk_usage(folder).free
        except OSError as error:
            LOG.error("Cannot write in %s: %s", folder, error)
            return f"nothing can be written in {what} (read-only?)"
        if free < MIN_FREE_BYTES:
            LOG.error("%s has %d MB free", folder, free // 2**20)
            return f"{what} has {free // 2**20} MB free, and a job needs {MIN_FREE_BYTES // 2**20} MB"
    return None


LEFTOVER_SECONDS = 24 * 3600  # longer than any job runs: older scratch is from a killed process


def remove_leftovers() -> list[Path]:
    """Delete what a killed process left: half-written hidden files, jobs' and saves' scratch folders.

    Only things older than ``LEFTOVER_SECONDS``, so another process's work in
    progress is never touched. Returns what was removed.
    """
    now = time.time()
    candidates = [
        *config.TRAINED_DIR.glob(".*"),
        *config.MODEL_CACHE.glob(".*"),
        *Path(tempfile.gettempdir()).glob(f"{config.SCRATCH_PREFIX}*"),
    ]
    removed = []
    for path in candidates:
        try:
            if now - path.lstat().st_mtime < LEFTOVER_SECONDS:
                continue
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        except OSError:  # gone meanwhile, or not ours to delete
            continue
        removed.append(path)
    return removed
