"""Text a user typed (a link's value, a file's name), shown as typed and never as Markdown."""

from __future__ import annotations


def literal(text: str, limit: int = 60) -> str:
    """Text from a link, shown as typed: a code span, so Markdown in it (a link, an image) stays text."""
    text = text.replace("`", "'").replace("\n", " ")
    return f"`{text[:limit]}{'…' if len(text) > limit else ''}`"


def naming(text: str, name: str) -> str:
    """``text`` with a file name a user chose in it shown as typed (``literal``), never as Markdown."""
    return text.replace(name, literal(name)) if name else text
