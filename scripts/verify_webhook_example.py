"""How a receiver verifies a webhook-step call: the documented example, kept as code.

The documentation quotes ``verify`` below verbatim, and
tests/integration/test_webhook_signing.py runs it in a real receiver against real
deliveries (current secret, old secret in its grace period, after it), so the
documented check cannot drift from what the platform sends. Standard library only,
so it can be pasted into any Python receiver.
"""
# --- documented example: begin ---
import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300  # refuse calls signed longer ago than this (replays)


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """True when ``header`` (the X-Eseq-Signature value) signs ``body`` (the raw
    request body, before any JSON parsing) with ``secret``, recently enough."""
    timestamp, signatures = "", []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":  # two during a rotation's grace period: either may match
            signatures.append(value)
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected.encode(), s.encode()) for s in signatures)
# --- documented example: end ---
