"""Sequence settings: what each key means, its default, and its validation.

Stored normalised in ``Sequence.settings`` so the engine reads plain values:

    timezone        IANA zone used when the subscriber has none (default "UTC")
    send_window     {"start": "HH:MM", "end": "HH:MM", "days": ["mon", ...]} local time, or absent
    quiet_days      ["YYYY-MM-DD", ...] local dates with no sends (default [])
    transactional   bool: receipts and the like, exempt from frequency caps (default false)
    priority        int -1000..1000, higher first when caps bite (default 0)
    frequency_cap   {"max": N, "per_days": D}, or absent
    exit_events     event names that end an enrollment (default [])
    trigger         {"type": "tag_added"|"event"|"subscriber_created"|"segment_entered", "tag"?, "event"?,
                    "key_property"?, "segment_id"?}, or absent; segment_entered needs a segment of the
                    account (sequencing.segment_entries)
    reentry         "never" | "after_completion" | "always" (default "never")
    goal            {"event": name, "within_days": 1..365 (default 7)}: that event within
                    the days after one of the sequence's emails is its conversion, or absent
    holdout_percent number 0..50 (default 0): that share of new enrollments is held out,
                    walking the sequence without being sent its emails (sequencing.holdout)
    topic           the key of one of the account's topics, or absent: only its members are
                    enrolled, and an email to someone who has left it since is not sent
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sequencing.errors import Problems
from sequencing.steps import HHMM, valid_timezone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REENTRY = ("never", "after_completion", "always")
TRIGGERS = ("tag_added", "event", "subscriber_created", "segment_entered")
KEYS = ("timezone", "send_window", "quiet_days", "transactional", "priority", "frequency_cap",
        "exit_events", "trigger", "reentry", "goal", "holdout_percent", "topic")
MAX_HOLDOUT_PERCENT = 50  # more held out than treated would starve the sequence to measure it
MAX_LIST = 366


def default_settings() -> dict[str, Any]:
    return {"timezone": "UTC", "quiet_days": [], "transactional": False, "priority": 0,
            "exit_events": [], "reentry": "never"}


def _names(p: Problems, raw: Any, path: str, max_len: int = 100) -> list[str]:
    if not isinstance(raw, list) or len(raw) > MAX_LIST:
        p.add(path, f"Must be a list of at most {MAX_LIST} items.")
        return []
    holder = {str(i): v for i, v in enumerate(raw)}
    values = [p.text(holder, str(i), path, required=True, max_len=max_len) for i in range(len(raw))]
    return [v for v in values if v is not None]


def _send_window(p: Problems, raw: Any, path: str) -> dict[str, Any] | None:
    window = p.mapping(raw, path)
    if window is None:
        return None
    p.unknown(window, ("start", "end", "days"), path)
    out: dict[str, Any] = {}
    for key, default in (("start", "00:00"), ("end", "23:59")):
        value = p.text(window, key, path, max_len=5) or default
        if not HHMM.match(value):
            p.add(f"{path}.{key}", "Must be a time as HH:MM.")
        out[key] = value
    if out["start"] == out["end"]:
        p.add(f"{path}.end", "The window must not start and end at the same time.")
    if window.get("days") is not None:
        days = [d.lower()[:3] for d in _names(p, window["days"], f"{path}.days", max_len=9)]
        bad = [d for d in days if d not in DAYS]
        if bad or not days:
            p.add(f"{path}.days", "Must be a non-empty list of: " + ", ".join(DAYS) + ".")
        out["days"] = sorted(set(days), key=lambda d: DAYS.index(d) if d in DAYS else 7)
    return out


def _trigger(p: Problems, raw: Any, path: str, segment_exists: Callable[[int], bool] | None) -> dict[str, Any] | None:
    trigger = p.mapping(raw, path)
    if trigger is None:
        return None
    kind = trigger.get("type")
    if kind not in TRIGGERS:
        p.add(f"{path}.type", "Must be one of: " + ", ".join(TRIGGERS) + ".")
        return None
    if kind == "segment_entered":
        p.unknown(trigger, ("type", "segment_id"), path)
        segment_id = p.integer(trigger, "segment_id", path, required=True, minimum=1)
        if segment_id is not None and segment_exists is not None and not segment_exists(segment_id):
            p.add(f"{path}.segment_id", "No such segment in this account.")
        return {"type": kind, "segment_id": segment_id}
    p.unknown(trigger, ("type", "tag", "event", "key_property"), path)
    out: dict[str, Any] = {"type": kind}
    for key in ("tag", "event", "key_property"):
        value = p.text(trigger, key, path, required=(kind, key) in (("tag_added", "tag"), ("event", "event")))
        if value is not None:
            out[key] = value
    return out


def validate_settings(raw: Any, path: str = "settings",
                      segment_exists: Callable[[int], bool] | None = None,
                      topic_exists: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Normalised settings with defaults filled in, or InvalidInputError naming the field.
    ``segment_exists`` answers whether a segment id is the account's (a trigger's);
    ``topic_exists`` whether the account has a topic of that key (without it, only
    the key's form is checked: drafts are checked again when applied)."""
    p = Problems()
    if raw is None:
        return default_settings()
    settings = p.mapping(raw, path)
    p.raise_if_any()
    assert settings is not None
    p.unknown(settings, KEYS, path)
    out = default_settings()
    tz = p.text(settings, "timezone", path, max_len=64)
    if tz is not None:
        if valid_timezone(tz):
            out["timezone"] = tz
        else:
            p.add(f"{path}.timezone", "Not a known IANA timezone.")
    if settings.get("send_window") is not None:
        out["send_window"] = _send_window(p, settings["send_window"], f"{path}.send_window")
    if settings.get("quiet_days") is not None:
        days = _names(p, settings["quiet_days"], f"{path}.quiet_days", max_len=10)
        for day in days:
            try:
                date.fromisoformat(day)
            except ValueError:
                p.add(f"{path}.quiet_days", f"{day!r} is not a date as YYYY-MM-DD.")
        out["quiet_days"] = sorted(set(days))
    if settings.get("transactional") is not None:
        if isinstance(settings["transactional"], bool):
            out["transactional"] = settings["transactional"]
        else:
            p.add(f"{path}.transactional", "Not a valid boolean.")
    priority = p.integer(settings, "priority", path, minimum=-1000, maximum=1000)
    if priority is not None:
        out["priority"] = priority
    if settings.get("frequency_cap") is not None:
        cap = p.mapping(settings["frequency_cap"], f"{path}.frequency_cap")
        if cap is not None:
            p.unknown(cap, ("max", "per_days"), f"{path}.frequency_cap")
            out["frequency_cap"] = {
                "max": p.integer(cap, "max", f"{path}.frequency_cap", required=True, minimum=1, maximum=10_000),
                "per_days": p.integer(cap, "per_days", f"{path}.frequency_cap", required=True, minimum=1, maximum=365),
            }
    if settings.get("exit_events") is not None:
        out["exit_events"] = sorted(set(_names(p, settings["exit_events"], f"{path}.exit_events")))
    if settings.get("trigger") is not None:
        out["trigger"] = _trigger(p, settings["trigger"], f"{path}.trigger", segment_exists)
    if settings.get("goal") is not None:
        goal = p.mapping(settings["goal"], f"{path}.goal")
        if goal is not None:
            p.unknown(goal, ("event", "within_days"), f"{path}.goal")
            out["goal"] = {"event": p.text(goal, "event", f"{path}.goal", required=True, max_len=100),
                           "within_days": p.integer(goal, "within_days", f"{path}.goal", minimum=1, maximum=365) or 7}
    holdout = p.number(settings, "holdout_percent", path, maximum=MAX_HOLDOUT_PERCENT)
    if holdout:
        out["holdout_percent"] = holdout
    if settings.get("topic") is not None:
        topic = p.text(settings, "topic", path, max_len=100)
        if topic is not None:
            if topic_exists is not None and not topic_exists(topic):
                p.add(f"{path}.topic", f"The account has no topic {topic!r}.")
            out["topic"] = topic
    if settings.get("reentry") is not None:
        if settings["reentry"] in REENTRY:
            out["reentry"] = settings["reentry"]
        else:
            p.add(f"{path}.reentry", "Must be one of: " + ", ".join(REENTRY) + ".")
    p.raise_if_any()
    return out
