"""Time zones by name, never failing: a subscriber's or sequence's zone is whatever a
client stored, so an unknown name falls back instead of stopping a send or a model."""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(*names: object) -> ZoneInfo:
    """The first valid IANA zone among ``names``, else UTC."""
    for name in names:
        if name:
            try:
                return ZoneInfo(str(name))
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")
