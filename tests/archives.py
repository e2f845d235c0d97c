"""Keras models as the web server sees them: saved to a real ``.keras`` file, read back without Keras."""

from __future__ import annotations

import tempfile
from pathlib import Path

from model_zoo import inference, model_files


def read_back(model) -> inference.FastModel:
    """``model.save`` to a ``.keras`` file, then ``model_files.read_model``: the archive reader's view of it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{model.name}.keras"
        model.save(path)
        return model_files.read_model(path)
