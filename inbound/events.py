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
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from delivery.status_codes import blames_address as address_at_fault, enhanced_code

KINDS = ("delivered", "deferred", "bounced", "rejected", "complained", "opened", "clicked", "unsubscribed")
# The names only the platform records: a client's custom event under one of them
# would count in analytics while suppressing no one.
PLATFORM_NAMES = frozenset(KINDS + ("queued", "sent"))
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


# A signature's timestamp as providers send it: ASCII digits only (str.isdigit()
# also takes "²", which float() then refuses).
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def signed_unix_time(value: str) -> datetime | None:
    """A signature header's Unix time; None for anything but plain digits."""
    return from_unix(value) if _UNIX_SECONDS.fullmatch(value) else None


def from_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def content_id(item: Any) -> str:
    """An event id for providers that send none: the same event re-sent hashes alike.

    ``surrogatepass`` because valid JSON may carry a lone surrogate ("\\ud800"),
    which strict UTF-8 cannot encode; every other string hashes to the same bytes
    as before, so ids already stored stay the same."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def load_json(body: bytes) -> Any:
    """The body as JSON, or a 400. ValueError covers bad syntax, bad UTF-8 and
    integers past Python's digit limit; RecursionError a deeply nested array.
    Runs before any signature check, so nothing in a body may raise past here."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise VerificationError("body is not JSON", status=400) from None


# What PostgreSQL cannot store: NUL in text or JSONB, and lone surrogates (no
# UTF-8 form). Both arrive in valid JSON as \u0000 and \ud800 escapes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    """``value`` without NUL, lone surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


def storable(value: Any) -> Any:
    """A parsed JSON value PostgreSQL can store: every string and key through
    ``storable_text``, and the infinities and NaN that JSONB refuses (Python
    reads 1e400 as inf) as strings. One bad field must not lose a whole batch."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def blames_address(*texts: Any) -> bool:
    """Whether a permanent failure is the recipient address's fault, read from the
    first enhanced status code among ``texts`` (delivery.status_codes, the rule our
    own SMTP refusals follow); with none, the provider's verdict stands."""
    code = enhanced_code(*texts)
    return code is None or address_at_fault(*code)


def check_age(moment: datetime | None, now: datetime, max_age_seconds: int, skew_seconds: int = 900) -> None:
    if moment is None:
        raise VerificationError("timestamp missing or unreadable", status=400)
    age = (now - moment).total_seconds()
    if age > max_age_seconds or age < -skew_seconds:
        raise VerificationError("timestamp outside the accepted window", status=400)


def text(value: Any, limit: int = 500) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None
