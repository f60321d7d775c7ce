"""How the API limits what one client can ask of it: the size of a request's body,
per endpoint, and the rate limiter's storage and what it does when that is down."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Flask, request
from marshmallow import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from audience.event_import import MAX_BYTES as EVENT_IMPORT_BYTES
from audience.payloads import MAX_BYTES as IMPORT_BYTES
from settings import Settings
from web.provider_webhooks import MAX_BODY_BYTES as PROVIDER_WEBHOOK_BYTES

MIB = 1024 * 1024
# Every JSON body the API takes fits in 1 MiB but for these: a template's html and
# text (500,000 characters each), a sequence's emails written inline, 10,000
# addresses enrolled in one call, an import file (plus its multipart framing). A
# body is parsed whole in memory, so one cap for all would let any endpoint be made
# to hold the largest.
DEFAULT_BODY_BYTES = 1 * MIB
BODY_BYTES_BY_BLUEPRINT = {
    "email_templates": 8 * MIB,
    "email_sequences": 8 * MIB,
    "enrollments": 4 * MIB,
    "provider_webhooks": PROVIDER_WEBHOOK_BYTES + 1,
    "subscribe": 64 * 1024,  # the public form: an address, a name and a few topics
}
# An event history is streamed to the database in parts, never held whole.
BODY_BYTES_BY_ENDPOINT = {"subscribers.Import": IMPORT_BYTES + 64 * 1024, "events.EventImport": EVENT_IMPORT_BYTES + 1}
# Views that refuse an oversized body themselves, in their own words (an import
# "over 50 MB; split it"; providers read {"status", "message"}) and reading at most
# one byte past their cap: here they only get werkzeug's limit set.
SELF_CAPPED = frozenset({"provider_webhooks", "subscribers.Import", "events.EventImport"})

# Free-form JSON stored on a row and read back by the engine (an event's
# properties are reloaded for every batch that evaluates conditions on them).
PROPERTIES_MAX_BYTES = 64 * 1024


def json_at_most(limit: int) -> Callable[[Any], None]:
    """A marshmallow validator: the value, as compact UTF-8 JSON, is at most ``limit`` bytes."""
    def _check(value: Any) -> None:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
        if size > limit:
            raise ValidationError(f"At most {limit // 1024} kB of JSON; this is {size:,} bytes.")

    return _check


def body_limit(endpoint: str | None, blueprint: str | None) -> int:
    """The most bytes a request to this endpoint may send."""
    if endpoint in BODY_BYTES_BY_ENDPOINT:
        return BODY_BYTES_BY_ENDPOINT[endpoint]
    return BODY_BYTES_BY_BLUEPRINT.get(blueprint or "", DEFAULT_BODY_BYTES)


def _too_large(limit: int) -> RequestEntityTooLarge:
    """Answered in the API's error shape (extensions.PlatformApi), naming the limit."""
    return RequestEntityTooLarge(f"The request body is over {limit:,} bytes, the limit for {request.path}.")


def init_body_limits(app: Flask) -> None:
    """Cap each request's body before anything reads it: a Content-Length over the
    endpoint's limit is refused unread. A body without one (chunked) is read here to
    one byte past the limit (werkzeug's per-request max_content_length, which stops
    there without an error, so the view would see a truncated body: a 422 for
    "invalid JSON" instead of this 413); what is read stays cached for the view."""
    app.config["MAX_CONTENT_LENGTH"] = DEFAULT_BODY_BYTES

    def _cap_body() -> None:
        limit = body_limit(request.endpoint, request.blueprint)
        request.max_content_length = limit
        if request.blueprint in SELF_CAPPED or request.endpoint in SELF_CAPPED:
            return
        if request.content_length is not None:
            if request.content_length > limit:
                raise _too_large(limit)
            return
        request.max_content_length = limit + 1
        if len(request.get_data(cache=True)) > limit:
            raise _too_large(limit)

    # After the rate limiter's hook (a flood of oversized bodies is still counted) and
    # before the hooks that read the body (security.init_input_guard): call this first.
    app.before_request(_cap_body)


# A Redis that is down or silent costs a request at most this long before the
# limiter falls back to memory, and a recovery probe (flask-limiter's, at growing
# intervals up to about half a minute) no longer.
STORAGE_TIMEOUT_SECONDS = 0.5


def rate_limit_config(settings: Settings) -> dict[str, Any]:
    """flask-limiter's settings. Limits are counted in Redis when there is one, so
    every web process shares them; when Redis cannot be reached, each process
    counts in its own memory until it answers again (the limits stay, per process)
    and an error that still escapes is logged instead of turning every request into
    a 500: the rate limiter must never be why the API is down."""
    config: dict[str, Any] = {
        "RATELIMIT_STORAGE_URI": settings.redis_url or "memory://",
        "RATELIMIT_DEFAULT": settings.rate_limit,
        "RATELIMIT_KEY_PREFIX": f"{settings.broker_prefix}eseq-ratelimit",  # platforms sharing a Redis count apart
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
    }
    if settings.redis_url:
        config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": STORAGE_TIMEOUT_SECONDS,
                                               "socket_timeout": STORAGE_TIMEOUT_SECONDS}
    return config
