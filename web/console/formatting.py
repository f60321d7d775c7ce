"""How the console writes numbers and times: thousands separators everywhere, and
times in the account's own zone (the database and the API keep UTC)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, g

from core.zones import zone


def number(value: Any, digits: int = 0) -> str:
    """1234567 -> '1,234,567'; None -> '–' (nothing measured yet, not zero)."""
    if value is None:
        return "–"
    return f"{float(value):,.{digits}f}" if digits else f"{int(round(float(value))):,}"


def percent(value: Any, digits: int = 1) -> str:
    """A share (0.123) as '12.3%'."""
    if value is None:
        return "–"
    return f"{float(value) * 100:,.{digits}f}%"


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time in the signed-in account's zone, with the zone's abbreviation."""
    if value is None:
        return "–"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    account = getattr(g, "account", None)
    local = value.astimezone(zone(getattr(account, "timezone", None)))
    return f"{local.strftime(fmt)} {local.tzname()}"


def init_filters(bp: Blueprint) -> None:
    bp.add_app_template_filter(number, "number")
    bp.add_app_template_filter(percent, "percent")
    bp.add_app_template_filter(local_time, "local_time")
