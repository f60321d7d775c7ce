"""Creating accounts and checking API keys.

Keys are 256 bits from ``secrets`` with a short visible prefix; only their SHA-256
digest is stored, and the plain key is returned once, at creation.
"""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.webhook_secret import new_secret
from models import Account, ApiKey
from models.account import new_form_key

KEY_PREFIX = "esk_"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_api_key(session: Session, account: Account) -> str:
    """Add a new key for ``account`` and return its plain text (shown once)."""
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(account_id=account.id, prefix=plain[:12], digest=_digest(plain)))
    return plain


def create_account(session: Session, name: str, from_email: str, from_name: str | None,
                   postal_address: str | None = None, opt_in: str = "single") -> tuple[Account, str]:
    """A new account and its first API key. Its webhook signing secret is random
    from the start (accounts.webhook_secret), as is its subscribe form's key."""
    account = Account(name=name, from_email=from_email.lower(), from_name=from_name, postal_address=postal_address,
                      webhook_secret=new_secret(), opt_in=opt_in, form_key=new_form_key())
    session.add(account)
    session.flush()
    return account, issue_api_key(session, account)


def account_for_key(session: Session, key: str) -> int | None:
    """The account id a live key belongs to, or None. Constant work for any input."""
    found = live_key(session, key)
    return found[1] if found else None


def live_key(session: Session, key: str) -> tuple[int, int] | None:
    """(key id, account id) of a live key, or None: the console's session keeps the
    key's id, so revoking the key ends the sessions signed in with it."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = session.execute(
        select(ApiKey.id, ApiKey.account_id, ApiKey.revoked_at).where(ApiKey.digest == _digest(key))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    return int(row.id), int(row.account_id)


def key_is_live(session: Session, key_id: int, account_id: int) -> bool:
    """Whether the key a console session was signed in with still opens that account."""
    row = session.execute(select(ApiKey.revoked_at).where(ApiKey.id == key_id,
                                                          ApiKey.account_id == account_id)).first()
    return row is not None and row.revoked_at is None
