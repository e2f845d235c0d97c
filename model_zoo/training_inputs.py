"""Everything a training run learns from, gathered for ``training.train``.

``training`` only trains on the arrays it is given; this module reads them:
MNIST, USPS and UNIPEN's pen strokes from their files, the class's kept digits
from the database, and the shipped model a fine-tuning starts from.
"""

from __future__ import annotations

from model_zoo import class_digits, config, data
from model_zoo.config import SettingsError
from model_zoo.training import TrainingSettings


def shipped_weights(arch: str, *, required: bool) -> bytes | None:
    """The shipped model of ``arch`` as ``.keras`` bytes; None (or SettingsError, if required) when absent."""
    path = config.TRAINED_DIR / f"{arch}.keras"
    if not path.is_file():
        if not required:
            return None
        raise SettingsError(
            f"There is no shipped {arch} to start from on this server (python -m scripts.train_zoo trains it)."
        )
    return path.read_bytes()


def gather(
    settings: TrainingSettings,
    *,
    mnist=None,
    usps=None,
    pen=None,
    shipped: bytes | None = None,
    database: str | None = None,
) -> dict:
    """``training.train``'s inputs for ``settings``, as keyword arguments.

    Arrays already in hand (a dispatcher keeps MNIST, USPS and the pen strokes
    for every job) are passed through; the rest is read here: files through
    ``data``, the class's digits from ``database`` (the server's own by default).
    """
    inputs = {"mnist": mnist if mnist is not None else data.load_mnist()}
    if settings.usps:
        inputs["usps"] = usps if usps is not None else data.load_usps()
    if settings.unipen:
        inputs["pen"] = pen if pen is not None else data.load_pen_digits()
    if settings.class_digits:
        inputs["class_set"] = class_digits.split_arrays(settings.class_digits, database)
    if settings.fine_tune or settings.class_digits:
        inputs["shipped"] = (
            shipped if shipped is not None else shipped_weights(settings.arch, required=settings.fine_tune)
        )
    return inputs
