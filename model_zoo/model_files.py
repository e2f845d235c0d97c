"""Model files: reading a ``.keras`` archive safely, checking the zoo's contract, writing files atomically.

Every model the app runs is read here: ``read_model`` for the pages (no
TensorFlow), ``load_model`` for scripts and training (Keras with safe_mode on),
both refusing code, unknown layers and models that do not take 28 × 28 digits
and give 10 probabilities. Records (``<name>.json``) are read and written here
too, and every file is replaced in one rename, so a reader never sees half.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

from model_zoo import architectures, config, inference


class ModelFileError(ValueError):
    """A model or record that cannot be read."""


def checked_record(record) -> dict:
    """The record if the zoo can list it, else ModelFileError saying what is wrong."""
    if not isinstance(record, dict):
        raise ModelFileError("its record is not a JSON object")
    try:
        architectures.get(record.get("arch"))
    except architectures.UnknownModelError as error:
        raise ModelFileError(f"its record names no known architecture ({error})") from None
    try:
        accuracy = float(record.get("test_accuracy"))
    except (TypeError, ValueError):
        raise ModelFileError("its record has no test accuracy") from None
    return record | {"test_accuracy": accuracy}


def read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"no record {path.name} beside the model") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"record {path} is damaged ({error})") from None
    if not isinstance(record, dict):
        raise ModelFileError(f"record {path} is damaged (expected a JSON object)")
    return record


def read_model(path: str | os.PathLike) -> inference.FastModel:
    """The model for the pages: read straight from its ``.keras`` archive, no TensorFlow, contract checked.

    Refuses layers the app does not run (a Lambda's code, custom or unknown
    layers) as Keras's safe_mode does, and names the file, never its folder
    (users read the message).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Model file not found: {path.name}")
    try:
        model = inference.read_archive(path)
    except inference.UnsupportedLayerError as error:
        raise ModelFileError(f"{path.name} is refused: {error}.") from None
    except inference.ArchiveError as error:
        raise ModelFileError(f"Model file is damaged: {path.name} ({error}). Delete it, or train it again.") from None
    if problem := check_contract(model.input_shape, model.output_shape):
        raise ModelFileError(f"{path.name} {problem}.")
    return model


def load_model(path: str | os.PathLike):
    """The Keras model (for training and scripts): ``keras.models.load_model`` with safe_mode on,
    one clear error for bad files, the contract checked. Imports TensorFlow: pages use ``read_model``."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Model file not found: {path.name}")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    # Keras reports damage as any of these (docs/facts.md); all mean the same to a user.
    except (ValueError, OSError, zipfile.BadZipFile, json.JSONDecodeError, KeyError, TypeError) as error:
        if "Lambda" in str(error):  # safe_mode's refusal to deserialise Python code
            raise ModelFileError(f"{path.name} is refused: {inference.CONTAINS_CODE}.") from None
        reason = str(error).replace(str(path.parent), "…")[:200]
        raise ModelFileError(
            f"Model file is damaged: {path.name} ({type(error).__name__}: {reason}). Delete it, or train it again."
        ) from None
    if problem := check_contract(tuple(model.input_shape[1:]), tuple(model.output_shape[1:])):
        raise ModelFileError(f"{path.name} {problem}.")
    return model


def contract_problem(path: str | os.PathLike) -> str | None:
    """Why a model file cannot serve the zoo, read from its config without its weights; None if it may.

    Milliseconds, so every listed model is checked before a picker offers it;
    ``read_model`` checks the weights too.
    """
    try:
        model_plan = inference.plan(inference.read_config(path))
    except inference.UnsupportedLayerError as error:
        return f"refused: {error}"
    except inference.ArchiveError as error:
        return f"damaged: {error}"
    return check_contract(model_plan.input_shape, model_plan.output_shape)


def check_contract(takes: tuple, gives: tuple) -> str | None:
    """Every zoo model takes (N, 28, 28) and gives (N, 10): anything else would be misread."""
    if takes != architectures.INPUT_SHAPE or gives != (architectures.NUM_CLASSES,):
        return (
            f"does not fit the zoo: it takes {takes} and gives {gives}, where every zoo model takes "
            f"{architectures.INPUT_SHAPE} digits and gives {architectures.NUM_CLASSES} probabilities"
        )
    return None


def write_record(path: Path, record: dict) -> None:
    write_atomically(path, json.dumps(record, indent=1).encode())


def model_bytes(model) -> bytes:
    """The ``.keras`` file of an inference copy: the same layers and weights, no optimizer."""
    copy = type(model).from_config(model.get_config())  # clone_model and to_json keep the optimizer
    copy.set_weights(model.get_weights())
    with tempfile.TemporaryDirectory(prefix=f"{config.SCRATCH_PREFIX}save_") as folder:
        path = Path(folder) / "model.keras"  # save wants a name ending in .keras
        copy.save(path)
        return path.read_bytes()


def zip_folder(folder: str | os.PathLike | None) -> bytes | None:
    """A folder (TensorBoard logs) as zip bytes; None when there is none."""
    if folder is None or not Path(folder).is_dir():
        return None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return buffer.getvalue()


def write_atomically(target: Path, content: bytes) -> None:
    """Write beside the target under a hidden name, then rename: readers see old or new, never half."""
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.stem}.", suffix=target.suffix, delete=False
    ) as handle:
        temporary = Path(handle.name)
    try:
        temporary.write_bytes(content)
        temporary.chmod(0o644)  # NamedTemporaryFile makes it private
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
