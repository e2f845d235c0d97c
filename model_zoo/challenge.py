"""The class's challenge: "the model that reads our handwriting best".

The teacher starts one for a class. Every version saved while it runs (trained
from scratch or fine-tuned, by anyone) is scored on the class's held-out digits
(``class_digits``' split), and the leaderboard ranks them, with the shipped
models as reference lines. While it runs no learner sees a held-out digit: the
Class page hides them and exports leave them out (``hides_held_out``). The
teacher ends it, which reveals them, with the ones that beat every model.

    challenge.start("my class", teacher=True)
    rows = challenge.leaderboard(entries, models, x_held, y_held, challenge.current("my class"))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa

from model_zoo import db

if TYPE_CHECKING:
    from model_zoo.inference import FastModel
    from model_zoo.store import ZooEntry


class ChallengeError(ValueError):
    """A challenge that cannot be started or ended as asked."""


@dataclass(frozen=True)
class Challenge:
    class_name: str
    started: datetime
    ended: datetime | None

    @property
    def running(self) -> bool:
        return self.ended is None

    def takes(self, entry: ZooEntry) -> bool:
        """Whether a model competes: a version saved while the challenge ran."""
        if entry.shipped:
            return False
        created = _moment(entry.record.get("created", ""))
        return created is not None and self.started <= created and (self.ended is None or created <= self.ended)


@dataclass(frozen=True)
class Row:
    name: str
    score: float  # accuracy on the class's held-out digits
    mnist: float  # MNIST test accuracy, from its record
    reference: bool  # a shipped model: a line to beat, not a contender


def current(class_name: str) -> Challenge | None:
    """The class's latest challenge, running or ended; None if it never had one."""
    with db.engine().connect() as connection:
        row = connection.execute(sa.select(db.challenges).where(db.challenges.c.class_name == class_name)).first()
    if row is None:
        return None
    return Challenge(row.class_name, _moment(row.started), _moment(row.ended) if row.ended else None)


def hides_held_out(class_name: str) -> bool:
    challenge = current(class_name)
    return challenge is not None and challenge.running


def start(class_name: str, *, teacher: bool) -> Challenge:
    """A new challenge for the class (the previous one, if any, is replaced)."""
    _only_the_teacher(teacher, "start")
    now = _now()
    with db.engine().begin() as connection:
        connection.execute(db.challenges.delete().where(db.challenges.c.class_name == class_name))
        connection.execute(db.challenges.insert().values(class_name=class_name, started=now.isoformat()))
    return Challenge(class_name, now, None)


def end(class_name: str, *, teacher: bool) -> Challenge:
    """End the running challenge: its held-out digits are revealed."""
    _only_the_teacher(teacher, "end")
    now = _now()
    with db.engine().begin() as connection:
        ended = connection.execute(
            db.challenges.update()
            .where(db.challenges.c.class_name == class_name, db.challenges.c.ended.is_(None))
            .values(ended=now.isoformat())
        ).rowcount
    if not ended:
        raise ChallengeError(f"{class_name} has no challenge running: start one first.")
    return current(class_name)


def accuracy(model: FastModel, x: np.ndarray, y: np.ndarray) -> float:
    """Share of ``x`` (N, 28, 28) uint8 that ``model`` reads as ``y``; 0 for no digits."""
    if not len(x):
        return 0.0
    return float(np.mean(model.predict_batch(x.astype(np.float32) / 255).argmax(axis=1) == y))


def leaderboard(
    entries: list[ZooEntry], models: Mapping[str, FastModel], x: np.ndarray, y: np.ndarray, challenge: Challenge
) -> list[Row]:
    """The challenge's versions and the shipped models, best score first (contenders first on a tie)."""
    rows = [
        Row(entry.name, accuracy(models[entry.name], x, y), entry.test_accuracy, entry.shipped)
        for entry in entries
        if entry.name in models and (entry.shipped or challenge.takes(entry))
    ]
    return sorted(rows, key=lambda row: (-row.score, row.reference, row.name))


def unbeaten(models: Mapping[str, FastModel], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the held-out digits that every model misreads: the class's hardest handwriting."""
    if not len(x) or not models:
        return np.zeros(0, int)
    right = np.zeros(len(x), bool)
    for model in models.values():
        right |= model.predict_batch(x.astype(np.float32) / 255).argmax(axis=1) == y
    return np.flatnonzero(~right)


def _only_the_teacher(teacher: bool, action: str) -> None:
    if not teacher:
        raise ChallengeError(f"Only the teacher can {action} a challenge: sign in from the sidebar.")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
