"""How the API limits what one client can ask of it: the rate limiter's storage and
what it does when that storage is down."""
from __future__ import annotations

from typing import Any

from settings import Settings

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
