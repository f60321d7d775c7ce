"""Operator commands (``python -m scripts.<name>``) and ``make run``."""
from __future__ import annotations

import sys

from settings import ConfigError, Settings, load_settings


def settings_or_complain() -> Settings | None:
    """The settings from the environment, or None after saying on stderr which
    variable is wrong (the command then exits 2)."""
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
