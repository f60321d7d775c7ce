"""What a client may send to create or change a broadcast, checked field by field
(each error names its field: ``test.percent``, ``variants.1.name``), including that
the segment, topic and template named are the caller's own."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Segment, Template, Topic
from sequencing.errors import InvalidInputError, Problems

FIELDS = ("name", "segment_id", "topic", "subject", "html", "text", "template_id", "variants", "send_at",
          "local_time", "best_time", "test")
CONTENT = ("subject", "html", "text")
METRICS = ("opened", "clicked")
MAX_VARIANTS = 10
MAX_BODY = 512 * 1024
MAX_TEST_WAIT = 7 * 86400
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _errors_named(p: Problems) -> dict[str, list[str]]:
    # Problems names nested fields "path.key"; top-level ones here have no path.
    return {key.lstrip("."): messages for key, messages in p.errors.items()}


def _content(p: Problems, obj: dict[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, limit in (("subject", 998), ("html", MAX_BODY), ("text", MAX_BODY)):
        if key in obj:
            value = p.text(obj, key, path, max_len=limit, min_len=0, single_line=key == "subject")
            out[key] = value
    return out


def _variants(p: Problems, raw: Any) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_VARIANTS:
        p.add("variants", f"Must be a list of 2 to {MAX_VARIANTS} variants.")
        return None
    out, names = [], set()
    for index, item in enumerate(raw):
        path = f"variants.{index}"
        variant = p.mapping(item, path)
        if variant is None:
            continue
        p.unknown(variant, ("name", *CONTENT), path)
        name = p.text(variant, "name", path, required=True, max_len=100, single_line=True)
        if name is not None and name in names:
            p.add(f"{path}.name", "Variant names must be unique.")
        names.add(name)
        out.append({"name": name, **{k: v for k, v in _content(p, variant, path).items() if v}})
    return out


def _test(p: Problems, raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    test = p.mapping(raw, "test")
    if test is None:
        return None
    p.unknown(test, ("percent", "metric", "wait_seconds"), "test")
    percent = p.integer(test, "percent", "test", required=True, minimum=1, maximum=50)
    metric = test.get("metric", "opened")
    if metric not in METRICS:
        p.add("test.metric", f"Must be one of: {', '.join(METRICS)}.")
    wait = p.integer(test, "wait_seconds", "test", minimum=60, maximum=MAX_TEST_WAIT)
    return {"percent": percent, "metric": metric, "wait_seconds": wait if wait is not None else 3600}


def _send_at(p: Problems, raw: Any) -> datetime | None:
    if raw is None:
        return None
    if isinstance(raw, datetime):
        value = raw
    else:
        try:
            value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            p.add("send_at", "Not a valid ISO 8601 datetime.")
            return None
    if value.tzinfo is None:
        p.add("send_at", "Must include a time zone offset (e.g. 2026-12-24T09:00:00Z).")
        return None
    if not 2000 <= value.year <= 2200:
        p.add("send_at", "Out of range.")
        return None
    return value.astimezone(timezone.utc)


def _owned(session: Session, p: Problems, account_id: int, data: dict[str, Any]) -> None:
    """The segment, topic and template named belong to the account (another
    account's id reads as missing, as a 404 would)."""
    if data.get("segment_id") is not None and session.scalar(select(Segment.id).where(
            Segment.id == data["segment_id"], Segment.account_id == account_id)) is None:
        p.add("segment_id", "No such segment in this account.")
    if data.get("topic") is not None and session.scalar(select(Topic.id).where(
            Topic.key == data["topic"], Topic.account_id == account_id)) is None:
        p.add("topic", "No such topic in this account.")
    if data.get("template_id") is not None and session.scalar(select(Template.id).where(
            Template.id == data["template_id"], Template.account_id == account_id)) is None:
        p.add("template_id", "No such template in this account.")


def validate(session: Session, account_id: int, raw: Any, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The broadcast's fields from ``raw`` (a create, or a PATCH merged over
    ``current``), or InvalidInputError naming every bad field."""
    p = Problems()
    if not isinstance(raw, dict):
        raise InvalidInputError({"_schema": ["Must be an object."]})
    p.unknown(raw, FIELDS, "")
    data = dict(current or {})
    if "name" in raw or current is None:
        data["name"] = p.text(raw, "name", "", required=True, single_line=True)
    for key in ("segment_id", "template_id"):
        if key in raw:
            data[key] = p.integer(raw, key, "", minimum=1)
    if "topic" in raw:
        data["topic"] = p.text(raw, "topic", "", max_len=100, single_line=True)
    data.update(_content(p, raw, ""))
    if "variants" in raw:
        data["variants"] = _variants(p, raw["variants"])
    if "send_at" in raw:
        data["send_at"] = _send_at(p, raw["send_at"])
    if "local_time" in raw:
        local = raw["local_time"]
        if local is not None and (not isinstance(local, str) or not HHMM.match(local)):
            p.add("local_time", 'Must be a time of day as "HH:MM" (00:00 to 23:59).')
        data["local_time"] = local
    if "best_time" in raw:
        if not isinstance(raw["best_time"], bool):
            p.add("best_time", "Not a valid boolean.")
        data["best_time"] = bool(raw["best_time"])
    if "test" in raw:
        data["test"] = _test(p, raw["test"])
    p.errors = _errors_named(p)
    p.raise_if_any()
    _whole(p, data)
    _owned(session, p, account_id, data)
    p.raise_if_any()
    return data


def _whole(p: Problems, data: dict[str, Any]) -> None:
    """Rules across fields: one audience, something to send, a test needs variants."""
    if (data.get("segment_id") is None) == (data.get("topic") is None):
        p.add("segment_id", 'Give exactly one audience: "segment_id" or "topic".')
    variants = data.get("variants") or []
    has_subject = data.get("subject") or data.get("template_id") or (variants and all(v.get("subject") for v in variants))
    if not has_subject:
        p.add("subject", "Missing data for required field (or give a template_id, or a subject in every variant).")
    bodies = data.get("html") or data.get("text") or data.get("template_id") or (
        variants and all(v.get("html") or v.get("text") for v in variants))
    if not bodies:
        p.add("html", 'Give the content: "html" or "text", or a "template_id".')
    if data.get("test") and not variants:
        p.add("test", 'A subject test needs "variants" (at least two).')
