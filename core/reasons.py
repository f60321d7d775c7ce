"""Reasons written to rows (why an advance crashed, why a call failed): an error's
message may quote the very data that caused it, and must not make its own row
unwritable, or the batch it is recorded with."""
from __future__ import annotations


def printable(text: str, limit: int | None = 200) -> str:
    """``text`` as every backend stores it, cut to ``limit`` characters (None: not
    cut): a lone surrogate (which SQLite's driver cannot encode) escaped, and NUL
    (which PostgreSQL refuses in text and JSONB) too."""
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return escaped if limit is None else escaped[:limit]
