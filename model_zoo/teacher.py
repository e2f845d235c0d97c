"""The teacher's password: set by the server's environment, or made at the first start and kept hashed.

A server started without ``DIGIT_ZOO_TEACHER_PASSWORD`` is still safe for a
class: the first process to open the database makes a password, keeps only its
hash in the database and prints the password once in its log, as Jupyter
prints its token. What only the teacher may do (act on anyone's jobs,
versions and digits; export, import, relabel, delete a class) is never open to
everyone. ``python -m scripts.teacher_password`` makes a new one.

    announced = teacher.first_start()        # the new password, once per database; else None
    teacher.check("what was typed")          # True for the teacher's password
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

import sqlalchemy as sa

from model_zoo import db

PASSWORD_VARIABLE = "DIGIT_ZOO_TEACHER_PASSWORD"
SETTING = "teacher_password"  # its row in db.settings: "scrypt$<salt hex>$<hash hex>"
_SCRYPT = dict(n=2**14, r=8, p=1)  # ~50 ms a check: slow to guess, quick for a sign-in


def from_environment() -> bool:
    """Whether the server's environment sets the password (then the database's is not used)."""
    return bool(os.environ.get(PASSWORD_VARIABLE))


def first_start() -> str | None:
    """Make the teacher's password if the database has none (and the environment sets none); it, or None.

    Two servers starting on one database at once make one password: the
    setting's primary key decides, and the loser returns None.
    """
    if from_environment() or _stored() is not None:
        return None
    password = _new_password()
    try:
        with db.engine().begin() as connection:
            connection.execute(db.settings.insert().values(name=SETTING, value=_hash(password)))
    except sa.exc.IntegrityError:  # another server made it a moment ago: its log has it
        return None
    return password


def reset() -> str:
    """A new teacher's password in the database (the old one stops working): it."""
    password = _new_password()
    with db.engine().begin() as connection:
        connection.execute(db.settings.delete().where(db.settings.c.name == SETTING))
        connection.execute(db.settings.insert().values(name=SETTING, value=_hash(password)))
    return password


def check(entered: str) -> bool:
    """Whether ``entered`` is the teacher's password (compared in constant time)."""
    if from_environment():
        return hmac.compare_digest(entered.encode(), os.environ[PASSWORD_VARIABLE].encode())
    stored = _stored()
    if stored is None or not entered:
        return False
    _, salt, digest = stored.split("$")
    return hmac.compare_digest(_hash(entered, bytes.fromhex(salt)).split("$")[2], digest)


def _new_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, 96 bits


def _hash(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _stored() -> str | None:
    with db.engine().connect() as connection:
        return connection.execute(sa.select(db.settings.c.value).where(db.settings.c.name == SETTING)).scalar()
