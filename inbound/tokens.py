"""The account part of a webhook URL: ``/webhooks/<provider>/<account token>``.

The token is ``<account id>-<HMAC of SECRET_KEY over the id>``, derived like the
outgoing webhook secret so it needs no storage: unguessable, checkable in
constant time, and rotated by rotating SECRET_KEY (which rotates every URL).
"""
from __future__ import annotations

import hashlib
import hmac
import re

# Strict ASCII: str.isdigit() also accepts "²" and other digits int() refuses, and
# compare_digest raises TypeError on non-ASCII str, so a token is matched whole
# before anything reads it; anything else is simply not a token (401).
_TOKEN = re.compile(r"([0-9]{1,12})-([0-9a-f]{40})")


def _digest(secret_key: str, account_id: int) -> str:
    return hmac.new(secret_key.encode(), f"inbound-webhook:{account_id}".encode(), hashlib.sha256).hexdigest()[:40]


def account_token(secret_key: str, account_id: int) -> str:
    return f"{account_id}-{_digest(secret_key, account_id)}"


def account_from_token(secret_key: str, token: str) -> int | None:
    """The account id the token was made for; None for anything else."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    account_id = int(match[1])
    expected = _digest(secret_key, account_id).encode()
    return account_id if hmac.compare_digest(match[2].encode(), expected) else None


def webhook_url(public_base_url: str, secret_key: str, kind: str, account_id: int) -> str:
    """The address an operator gives ``kind``'s event webhook for this account."""
    return f"{public_base_url.rstrip('/')}/webhooks/{kind}/{account_token(secret_key, account_id)}"
