"""The class's own digits: drawings a learner kept with a label, split, exported, imported.

Long on purpose: keeping, splitting, exporting and importing share the class's bounds and the
rule of who may do what, checked in the same transactions.

A kept digit is one row of ``db.class_digits``: the 28 × 28 image the models
saw, the canvas picture as drawn (PNG), the label, what each model read then,
the pen, when, who (the learner's name and a hash of their session's secret,
so they can delete their own) and which class. Nothing leaves the server but
by ``export_npz`` / ``export_zip``; ``delete`` removes a digit for good.

The split into a train part and a held-out part is decided once per digit,
when it is stored, and kept in its row: every ``HELD_OUT_EVERY``-th digit of
each label (in the order they arrive, from a seeded phase per class and
label) is held out. So the split is stratified, the same every time it is
read, and a new digit joins it by the same rule without moving any other.

    kept = class_digits.keep("my class", label=3, image=image, learner="Ada", owner_key=secret, ...)
    (x_train, y_train), (x_held, y_held) = class_digits.split_arrays("my class")
    class_digits.import_file("last year", "class.npz", content)   # all or nothing
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import sqlalchemy as sa

from model_zoo import config, data, db, digit_files

DEFAULT_CLASS = "my class"
ANONYMOUS = "anonymous"
HELD_OUT_EVERY = 4  # a quarter of each label's digits are held out
SPLIT_SEED = 0
MAX_NAME_LENGTH = 40  # class and learner names
MAX_PICTURE_BYTES = 300_000  # a 280 × 280 canvas PNG is ~5–20 KB
MAX_CLASS_VARIABLE, DEFAULT_MAX_CLASS = "DIGIT_ZOO_MAX_CLASS_DIGITS", 5_000
MAX_LEARNER_VARIABLE, DEFAULT_MAX_LEARNER = "DIGIT_ZOO_MAX_LEARNER_DIGITS", 300
_NAME_PATTERN = re.compile(r"^[\w .'-]+$")  # letters (any script), digits, space . ' - _


class ClassDigitsError(ValueError):
    """A digit, name or file that cannot be kept, changed or imported as asked."""


class LimitError(ClassDigitsError):
    """A learner or a class has as many digits as this server allows."""


@dataclass(frozen=True)
class KeptDigit:
    """One digit of a class, without its canvas picture (read it with ``picture``)."""

    id: str
    class_name: str
    learner: str
    label: int
    image: np.ndarray  # (28, 28) uint8, white on black
    readings: dict  # model name → [digit, confidence] when it was kept; {} for imports
    pen: int | None
    created: str  # ISO 8601, UTC
    held_out: bool
    source: str  # "drawn", "uploaded" or "imported from <file>"
    owner_key: str | None  # hashed; None for imports

    def is_own(self, key: str | None) -> bool:
        return (
            key is not None and self.owner_key is not None and hmac.compare_digest(self.owner_key, db.hashed_key(key))
        )


# ------------------------------------------------------------------ names and limits


def check_label(label) -> int:
    """A label as an int 0–9, or ClassDigitsError."""
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
        raise ClassDigitsError(f"A label is one digit, 0 to 9; got {str(label)[:20]!r}.")
    return int(label)


def check_name(name: str, what: str) -> str:
    """A class or learner name, trimmed; ClassDigitsError says what is allowed."""
    name = " ".join(str(name).split())
    if not name or len(name) > MAX_NAME_LENGTH or not _NAME_PATTERN.match(name):
        raise ClassDigitsError(
            f"A {what} name is 1 to {MAX_NAME_LENGTH} letters, digits, spaces, "
            f"dots, dashes or apostrophes; got {name[: MAX_NAME_LENGTH + 5]!r}."
        )
    return name


def max_class_digits() -> int:
    return config.whole_number_from_env(MAX_CLASS_VARIABLE, DEFAULT_MAX_CLASS)


def max_learner_digits() -> int:
    return config.whole_number_from_env(MAX_LEARNER_VARIABLE, DEFAULT_MAX_LEARNER)


# ------------------------------------------------------------------ classes


def classes() -> list[str]:
    """Every class: the default one first, then the teacher's, by name."""
    with db.reading() as connection:
        named = connection.execute(sa.select(db.classes.c.name).order_by(db.classes.c.name)).scalars().all()
    return [DEFAULT_CLASS, *(name for name in named if name != DEFAULT_CLASS)]


def create_class(name: str) -> str:
    """A new class (the teacher names them); an existing name is simply kept."""
    name = check_name(name, "class")
    with db.engine().begin() as connection:
        if connection.execute(sa.select(db.classes.c.name).where(db.classes.c.name == name)).first() is None:
            connection.execute(db.classes.insert().values(name=name, created=_now()))
    return name


# ------------------------------------------------------------------ keeping


def keep(
    class_name: str,
    *,
    label: int,
    image: np.ndarray,
    learner: str,
    owner_key: str | None,
    readings: dict[str, tuple[int, float]] | None = None,
    picture: bytes | None = None,
    pen: int | None = None,
    source: str = "drawn",
) -> KeptDigit | None:
    """Store one labelled digit; None if this class already has this very image (a repeated click).

    ``image`` is the (28, 28) float32 in [0, 1] the models saw. Raises
    ClassDigitsError for a bad label, name or picture and LimitError when the
    learner or the class is full.
    """
    label = check_label(label)
    class_name = check_name(class_name, "class")
    learner = check_name(learner or ANONYMOUS, "learner")
    pixels = _as_pixels(image)
    if picture is not None and len(picture) > MAX_PICTURE_BYTES:
        raise ClassDigitsError(
            f"The drawing's picture is {len(picture) // 1000} KB; at most "
            f"{MAX_PICTURE_BYTES // 1000} KB are kept. Clear the canvas and draw it again."
        )
    fingerprint = _fingerprint(pixels)
    key = db.hashed_key(owner_key) if owner_key else None
    with db.engine().begin() as connection:
        db.one_writer_at_a_time(connection)  # the bounds counted below still hold at the insert
        if _exists(connection, class_name, fingerprint):
            return None
        _check_room(connection, class_name, 1, learner if key else None, key)
        row = _row(
            connection,
            class_name,
            label,
            pixels,
            fingerprint,
            learner=learner,
            owner_key=key,
            readings={name: [int(d), round(float(c), 4)] for name, (d, c) in (readings or {}).items()},
            picture=picture,
            pen=pen,
            source=source,
        )
        try:
            with connection.begin_nested():  # two clicks at once: the second finds the first's row
                connection.execute(db.class_digits.insert().values(**row))
        except sa.exc.IntegrityError:
            return None
    return _digit(row)


def counts(class_name: str, owner_key: str | None = None) -> list[int]:
    """Digits per label 0–9 in the class; only this key holder's with ``owner_key``."""
    query = (
        sa.select(db.class_digits.c.label, sa.func.count())
        .where(db.class_digits.c.class_name == class_name)
        .group_by(db.class_digits.c.label)
    )
    if owner_key is not None:
        query = query.where(db.class_digits.c.owner_key == db.hashed_key(owner_key))
    with db.reading() as connection:
        found = dict(connection.execute(query).all())
    return [int(found.get(label, 0)) for label in range(10)]


def digits(class_name: str, database: str | None = None) -> list[KeptDigit]:
    """The class's digits, oldest first, without their canvas pictures."""
    columns = [c for c in db.class_digits.c if c.name != "picture"]
    query = (
        sa.select(*columns)
        .where(db.class_digits.c.class_name == class_name)
        .order_by(db.class_digits.c.created, db.class_digits.c.id)
    )
    with db.engine(database).connect() as connection:
        return [_digit(row._mapping) for row in connection.execute(query)]


def picture(digit_id: str) -> bytes | None:
    """The canvas picture of a kept digit as drawn (PNG); None for uploads and imports."""
    with db.engine().connect() as connection:
        return connection.execute(sa.select(db.class_digits.c.picture).where(db.class_digits.c.id == digit_id)).scalar()


def pictures(class_name: str) -> dict[str, bytes]:
    """The canvas pictures of a class's drawn digits, by id (one query, for a gallery)."""
    query = sa.select(db.class_digits.c.id, db.class_digits.c.picture).where(
        db.class_digits.c.class_name == class_name, db.class_digits.c.picture.is_not(None)
    )
    with db.engine().connect() as connection:
        return dict(connection.execute(query).all())


def delete(digit_id: str, *, key: str | None = None, teacher: bool = False) -> None:
    """Remove a digit for good: the teacher any, a learner their own."""
    with db.engine().begin() as connection:
        owner_key = connection.execute(
            sa.select(db.class_digits.c.owner_key).where(db.class_digits.c.id == digit_id)
        ).first()
        if owner_key is None:
            raise ClassDigitsError("That digit is no longer in the class (deleted already?).")
        if not (teacher or (key and owner_key[0] and hmac.compare_digest(owner_key[0], db.hashed_key(key)))):
            raise ClassDigitsError("Only the learner who kept a digit, or the teacher, can delete it.")
        connection.execute(db.class_digits.delete().where(db.class_digits.c.id == digit_id))


def delete_class(class_name: str, *, teacher: bool) -> int:
    """Remove every digit of a class, and its name; how many digits went."""
    if not teacher:
        raise ClassDigitsError("Only the teacher can delete a whole class.")
    with db.engine().begin() as connection:
        gone = connection.execute(db.class_digits.delete().where(db.class_digits.c.class_name == class_name)).rowcount
        connection.execute(db.classes.delete().where(db.classes.c.name == class_name))
    return gone


def relabel(digit_id: str, label: int, *, teacher: bool) -> None:
    """The teacher corrects a label; the digit stays in its part of the split."""
    label = check_label(label)
    if not teacher:
        raise ClassDigitsError("Only the teacher can relabel a digit.")
    with db.engine().begin() as connection:
        changed = connection.execute(
            db.class_digits.update().where(db.class_digits.c.id == digit_id).values(label=label)
        ).rowcount
    if not changed:
        raise ClassDigitsError("That digit is no longer in the class (deleted?).")


# ------------------------------------------------------------------ the split


def split_arrays(class_name: str, database: str | None = None) -> tuple[data.Split, data.Split]:
    """((x_train, y_train), (x_held_out, y_held_out)), uint8, as stored (in ``database``: the server's by default)."""
    kept = digits(class_name, database)

    def part(held_out: bool) -> data.Split:
        chosen = [d for d in kept if d.held_out == held_out]
        x = np.stack([d.image for d in chosen]) if chosen else np.zeros((0, 28, 28), np.uint8)
        return x, np.array([d.label for d in chosen], np.uint8)

    return part(False), part(True)


def split_sizes(class_name: str) -> tuple[int, int]:
    """(digits in the train part, digits held out)."""
    query = (
        sa.select(db.class_digits.c.held_out, sa.func.count())
        .where(db.class_digits.c.class_name == class_name)
        .group_by(db.class_digits.c.held_out)
    )
    with db.engine().connect() as connection:
        found = {bool(held_out): count for held_out, count in connection.execute(query)}
    return found.get(False, 0), found.get(True, 0)


def _held_out(connection: sa.Connection, class_name: str, label: int) -> bool:
    """The split's rule for the next digit of ``label``: every HELD_OUT_EVERY-th, from a seeded phase."""
    arrived = connection.execute(
        sa.select(sa.func.count())
        .select_from(db.class_digits)
        .where(db.class_digits.c.class_name == class_name, db.class_digits.c.label == label)
    ).scalar()
    return (arrived + _phase(class_name, label)) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


def _phase(class_name: str, label: int) -> int:
    digest = hashlib.sha256(f"{SPLIT_SEED}:{class_name}:{label}".encode()).digest()
    return digest[0] % HELD_OUT_EVERY


# ------------------------------------------------------------------ export and import


def export_npz(class_name: str, *, held_out: bool = True) -> bytes:
    """The class as a Keras-style ``.npz``: ``x`` (N, 28, 28) uint8 white on black, ``y`` (N,) uint8.

    ``held_out=False`` leaves the held-out part out (while a challenge scores on it).
    """
    return digit_files.write_npz(*_all_arrays(class_name, held_out))


def export_zip(class_name: str, *, held_out: bool = True) -> bytes:
    """The class as a zip: ``train.csv`` (filename,label) and ``Images/train/<n>.png`` 28 × 28.

    The tutorial's Analytics Vidhya layout (``digit_files.write_zip``): ``data.load_analytics_vidhya`` reads it
    unzipped.
    ``held_out`` as for ``export_npz``.
    """
    return digit_files.write_zip(*_all_arrays(class_name, held_out))


@dataclass(frozen=True)
class ImportReport:
    added: int
    already_there: int  # identical images the class had: not stored twice


def import_file(class_name: str, filename: str, content: bytes) -> ImportReport:
    """Add an exported ``.npz`` or ``.zip`` to a class: every digit, or none (ClassDigitsError says why)."""
    class_name = check_name(class_name, "class")
    try:
        x, y = digit_files.read(filename, content)
    except data.DataError as error:
        raise ClassDigitsError(str(error)) from None
    source = f"imported from {filename}"[:100]
    # A seeded order: the held-out quarter is spread over the file, not its last rows.
    order = np.random.default_rng([SPLIT_SEED, len(x)]).permutation(len(x))
    with db.engine().begin() as connection:  # one transaction: all or nothing
        db.one_writer_at_a_time(connection)
        fingerprints = [_fingerprint(image) for image in x]
        seen: set[str] = set()
        unique = []  # each image once, and only if the class has not got it
        for i in order:
            if fingerprints[i] not in seen and not _exists(connection, class_name, fingerprints[i]):
                unique.append(i)
            seen.add(fingerprints[i])
        _check_room(connection, class_name, len(unique), None, None)
        for i in unique:
            connection.execute(
                db.class_digits.insert().values(
                    **_row(
                        connection,
                        class_name,
                        int(y[i]),
                        x[i],
                        fingerprints[i],
                        learner=ANONYMOUS,
                        owner_key=None,
                        readings={},
                        picture=None,
                        pen=None,
                        source=source,
                    )
                )
            )
    return ImportReport(len(unique), len(x) - len(unique))


# ------------------------------------------------------------------ rows


def _row(
    connection: sa.Connection,
    class_name: str,
    label: int,
    pixels: np.ndarray,
    fingerprint: str,
    *,
    learner: str,
    owner_key: str | None,
    readings: dict,
    picture: bytes | None,
    pen: int | None,
    source: str,
) -> dict:
    return dict(
        id=uuid.uuid4().hex,
        class_name=class_name,
        learner=learner,
        owner_key=owner_key,
        label=label,
        image=pixels.tobytes(),
        fingerprint=fingerprint,
        picture=picture,
        readings=readings,
        pen=pen,
        created=_now(),
        source=source,
        held_out=_held_out(connection, class_name, label),
    )


def _digit(row) -> KeptDigit:
    return KeptDigit(
        id=row["id"],
        class_name=row["class_name"],
        learner=row["learner"],
        label=row["label"],
        image=np.frombuffer(row["image"], np.uint8).reshape(28, 28),
        readings=row["readings"] or {},
        pen=row["pen"],
        created=row["created"],
        held_out=bool(row["held_out"]),
        source=row["source"],
        owner_key=row["owner_key"],
    )


def _all_arrays(class_name: str, held_out: bool = True) -> data.Split:
    kept = [d for d in digits(class_name) if held_out or not d.held_out]
    if not kept:
        raise ClassDigitsError(f"The class {class_name!r} has no digits to export yet.")
    return np.stack([d.image for d in kept]), np.array([d.label for d in kept], np.uint8)


def _exists(connection: sa.Connection, class_name: str, fingerprint: str) -> bool:
    return (
        connection.execute(
            sa.select(db.class_digits.c.id).where(
                db.class_digits.c.class_name == class_name, db.class_digits.c.fingerprint == fingerprint
            )
        ).first()
        is not None
    )


def _check_room(connection: sa.Connection, class_name: str, adding: int, learner: str | None, key: str | None) -> None:
    in_class = connection.execute(
        sa.select(sa.func.count()).select_from(db.class_digits).where(db.class_digits.c.class_name == class_name)
    ).scalar()
    if in_class + adding > max_class_digits():
        raise LimitError(
            f"The class {class_name!r} has {in_class:,} digits and this server keeps at most "
            f"{max_class_digits():,} per class ({MAX_CLASS_VARIABLE}): the teacher can delete "
            "some, or start another class."
        )
    if key is not None:
        mine = connection.execute(
            sa.select(sa.func.count())
            .select_from(db.class_digits)
            .where(db.class_digits.c.class_name == class_name, db.class_digits.c.owner_key == key)
        ).scalar()
        if mine + adding > max_learner_digits():
            raise LimitError(
                f"{learner} has kept {mine} digits in this class, the most one learner may "
                f"({MAX_LEARNER_VARIABLE}): delete some on the Class page to keep others."
            )


def _as_pixels(image: np.ndarray) -> np.ndarray:
    """The models' (28, 28) float image → uint8 0–255 (as MNIST, and as the exports store it)."""
    image = np.asarray(image)
    if image.shape != (28, 28):
        raise ClassDigitsError(f"A kept digit is a 28 × 28 image; got shape {image.shape}.")
    if image.dtype == np.uint8:
        return image.copy()
    return np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)


def _fingerprint(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels, np.uint8).tobytes()).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
