"""Checks on user-supplied JSON that sequencing's and warming's validation share."""
from __future__ import annotations

from typing import Any


def is_int(value: Any) -> bool:
    """A JSON integer (``True`` is an int to Python, not to a user)."""
    return isinstance(value, int) and not isinstance(value, bool)
