"""The account part of a webhook URL: ``/webhooks/<provider>/<account token>``.

The token is ``<account id>-<HMAC of SECRET_KEY over the id>``, derived like the
outgoing webhook secret so it needs no storage: unguessable, checkable in
constant time, and rotated by rotating SECRET_KEY (which rotates every URL).
"""
from __future__ import annotations

import hashlib
import hmac


def _digest(secret_key: str, account_id: int) -> str:
    return hmac.new(secret_key.encode(), f"inbound-webhook:{account_id}".encode(), hashlib.sha256).hexdigest()[:40]


def account_token(secret_key: str, account_id: int) -> str:
    return f"{account_id}-{_digest(secret_key, account_id)}"


def account_from_token(secret_key: str, token: str) -> int | None:
    """The account id the token was made for; None for anything else."""
    head, _, digest = token.partition("-")
    if not head.isdigit() or len(head) > 12 or not digest:
        return None
    account_id = int(head)
    return account_id if hmac.compare_digest(digest, _digest(secret_key, account_id)) else None



def webhook_url(public_base_url: str, secret_key: str, kind: str, account_id: int) -> str:
    """The address an operator gives ``kind``'s event webhook for this account."""
    return f"{public_base_url.rstrip('/')}/webhooks/{kind}/{account_token(secret_key, account_id)}"
