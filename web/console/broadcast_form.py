"""The broadcast compose form, to and from what the API takes: the form's boxes
become the JSON body POST /api/v1/broadcasts would get (broadcasts.validation
then checks it, naming each bad field), and those errors go back to the box that
holds the field.

Two boxes are the console's own spelling: ``send_at`` is a local date and time in
the account's zone (sent with its offset), and the subject test's variants are one
``name | subject`` per line.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from models import Broadcast

BOXES = ("name", "segment_id", "topic", "subject", "html", "text", "send_at", "local_time", "best_time",
         "variants", "test_percent", "test_metric", "test_wait_seconds")


def _text(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name, "")
    return value if value.strip() else None


def _integer(value: str | None) -> Any:
    """A number box: an int when it is one, else the text itself for the validator to name."""
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else value


def _send_at(value: str | None, zone: tzinfo) -> Any:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # refused by the validator, under send_at
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).isoformat()


def _variants(value: str | None, stored: list[dict[str, Any]] | None) -> list[dict[str, str]] | None:
    """The lines as variants; a variant the API gave its own body (which this box
    cannot show) keeps it when its name is kept."""
    if value is None:
        return None
    bodies = {v.get("name"): {k: v[k] for k in ("html", "text") if v.get(k)} for v in stored or []}
    out = []
    for line in value.splitlines():
        if not line.strip():
            continue
        name, _, subject = line.partition("|")
        variant = {"name": name.strip(), **bodies.get(name.strip(), {})}
        if subject.strip():
            variant["subject"] = subject.strip()
        out.append(variant)
    return out


def from_form(form: Mapping[str, str], zone: tzinfo, stored: Broadcast | None = None) -> dict[str, Any]:
    """The API's request body for the form's boxes (every field, so an edit replaces;
    ``stored``, the draft being edited, lends its variants' bodies)."""
    variants = _variants(_text(form, "variants"), stored.variants if stored else None)
    percent = _text(form, "test_percent")
    test = None
    if percent is not None:
        test = {"percent": _integer(percent), "metric": form.get("test_metric") or "opened"}
        wait = _text(form, "test_wait_seconds")
        if wait is not None:
            test["wait_seconds"] = _integer(wait)
    return {
        "name": form.get("name", ""),
        "segment_id": _integer(_text(form, "segment_id")),
        "topic": _text(form, "topic"),
        "subject": _text(form, "subject"),
        "html": _text(form, "html"),
        "text": _text(form, "text"),
        "send_at": _send_at(_text(form, "send_at"), zone),
        "local_time": _text(form, "local_time"),
        "best_time": form.get("best_time") == "on",
        "variants": variants,
        "test": test,
    }


def to_form(row: Broadcast | None, zone: tzinfo) -> dict[str, str]:
    """A stored broadcast's values in the form's boxes (empty boxes for a new one)."""
    if row is None:
        return {"test_metric": "opened"}
    test = row.test or {}
    return {
        "name": row.name or "", "segment_id": str(row.segment_id or ""), "topic": row.topic or "",
        "subject": row.subject or "", "html": row.html or "", "text": row.text or "",
        "send_at": row.send_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if row.send_at else "",
        "local_time": row.local_time or "", "best_time": "on" if row.best_time else "",
        "variants": "\n".join(f"{v['name']} | {v.get('subject', '')}".rstrip(" |") for v in row.variants or []),
        "test_percent": str(test.get("percent", "")), "test_metric": test.get("metric", "opened"),
        "test_wait_seconds": str(test.get("wait_seconds", "")),
    }


def errors_by_box(errors: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The validator's errors (``test.percent``, ``variants.1.name``) under the box
    that holds the field; a nested path keeps its name in the message."""
    out: dict[str, list[str]] = {}
    for path, messages in errors.items():
        if path.startswith("test."):
            box = "test_" + path.split(".", 1)[1]
            box = box if box in BOXES else "test_percent"
        elif path == "test":
            box = "test_percent"
        elif path.startswith("variants."):
            box, messages = "variants", [f"{path}: {m}" for m in messages]
        else:
            box = path if path in BOXES else "_form"
        out.setdefault(box, []).extend(messages)
    return out
