"""What every provider's webhook becomes: a list of NormalizedEvent in our vocabulary.

Kinds (the subset of analytics' vocabulary a provider can report): delivered,
deferred, bounced (hard or soft), rejected, complained, opened, clicked,
unsubscribed. A provider event with no counterpart here (SendGrid "processed",
Mailgun "accepted", SES "Send") normalises to kind None: stored raw, not recorded,
because our own pipeline already records queued and sent.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

KINDS = ("delivered", "deferred", "bounced", "rejected", "complained", "opened", "clicked", "unsubscribed")
BOUNCE_TYPES = ("hard", "soft")


class VerificationError(Exception):
    """The request cannot be shown to come from the provider; ``status`` is 400 for a
    malformed or stale request and 401 for missing or wrong credentials."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class InboundRequest:
    """The parts of an HTTP request verification looks at; the body exactly as received."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    basic_auth: tuple[str, str] | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass(frozen=True)
class NormalizedEvent:
    provider_event_id: str
    message_ref: str | None
    kind: str | None
    bounce_type: str | None
    occurred_at: datetime | None
    raw: dict[str, Any]
    recipient: str | None = None
    reason: str | None = None
    # Our outbox key, echoed back where the adapter put it: matches a message even
    # when our record of its send was lost (a worker died after the provider took it).
    message_key: str | None = None


def message_ref(value: Any) -> str | None:
    """A provider's message id as our outbox stores it: no angle brackets, no blanks."""
    if not isinstance(value, str):
        return None
    ref = value.strip().strip("<>").strip()
    return ref[:300] or None


def outbox_key(value: Any) -> str | None:
    """Our X-Eseq-Message key as a provider echoed it; anything else is ignored."""
    if isinstance(value, str) and 0 < len(value) <= 200 and value.isprintable():
        return value
    return None


def from_unix(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def from_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def content_id(item: Any) -> str:
    """An event id for providers that send none: the same event re-sent hashes alike."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VerificationError("body is not JSON", status=400) from None


def check_age(moment: datetime | None, now: datetime, max_age_seconds: int, skew_seconds: int = 900) -> None:
    if moment is None:
        raise VerificationError("timestamp missing or unreadable", status=400)
    age = (now - moment).total_seconds()
    if age > max_age_seconds or age < -skew_seconds:
        raise VerificationError("timestamp outside the accepted window", status=400)


def text(value: Any, limit: int = 500) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None
