"""An account's webhook signing secret: showing it, rotating it, and which secrets sign now.

Receivers verify the signature of webhook-step calls with this secret, so the
account must be able to read it and replace it. It is stored sealed at rest
(models.sealed), like the account's DKIM key.

Accounts made before it was stored have none (NULL): they sign with the secret
derived from SECRET_KEY and the account id, as every call was signed before. It
is stored the first time it is shown, so what a receiver was given stays valid
when SECRET_KEY changes (it is random per run in the embedded ``make run`` mode).
New accounts get a random secret at creation, owing nothing to SECRET_KEY.

Rotation keeps the old secret signing too until its grace period ends, so
receivers can switch over without refusing a call; rotating again during a grace
period ends the older secret's at once (one old secret at most, as Stripe does).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Account

PREFIX = "whsec_"  # recognisable by secret scanners, as API keys are by esk_
DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=7)


class NoAccountError(LookupError):
    """No such account."""


@dataclass(frozen=True)
class WebhookSecret:
    secret: str
    previous_expires_at: datetime | None  # the old secret signs too until then; None: no old secret


@dataclass(frozen=True)
class StoredSecrets:
    """An account's columns as read, before SECRET_KEY resolves a NULL secret."""

    current: str | None
    previous: str | None
    previous_until: datetime | None

    def live_previous(self, now: datetime) -> str | None:
        """The old secret while its grace period lasts at ``now``; else None."""
        if self.previous_until is not None and now < self.previous_until:
            return self.previous
        return None

    def in_force(self, secret_key: str, account_id: int, now: datetime) -> tuple[str, ...]:
        """The secrets that sign a call made at ``now``: the current one, then the
        old one while its grace period lasts."""
        current = self.current or derived_secret(secret_key, account_id)
        previous = self.live_previous(now)
        return (current,) if previous is None else (current, previous)


def derived_secret(secret_key: str, account_id: int) -> str:
    """The secret of an account that has none stored: what every call was signed with
    before secrets were stored, so the first one stored is this one."""
    return hmac.new(secret_key.encode(), f"webhook-signing:{account_id}".encode(), hashlib.sha256).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def stored_secrets(session: Session, account_ids: list[int]) -> dict[int, StoredSecrets]:
    """The signing columns of these accounts, in one query (a send batch spans accounts)."""
    rows = session.execute(
        select(Account.id, Account.webhook_secret, Account.webhook_secret_previous,
               Account.webhook_secret_previous_until).where(Account.id.in_(set(account_ids))))
    return {r.id: StoredSecrets(r.webhook_secret, r.webhook_secret_previous, r.webhook_secret_previous_until)
            for r in rows}


def _shown(account: Account, now: datetime) -> WebhookSecret:
    assert account.webhook_secret is not None
    stored = StoredSecrets(account.webhook_secret, account.webhook_secret_previous,
                           account.webhook_secret_previous_until)
    return WebhookSecret(account.webhook_secret,
                         stored.previous_until if stored.live_previous(now) is not None else None)


def webhook_secret(session: Session, account_id: int, secret_key: str, now: datetime) -> WebhookSecret:
    """The account's current secret, stored first if it had none (see the module's note)."""
    # Conditional, so a rotation committed meanwhile is never overwritten by the derived secret.
    session.execute(update(Account).where(Account.id == account_id, Account.webhook_secret.is_(None))
                    .values(webhook_secret=derived_secret(secret_key, account_id))
                    .execution_options(synchronize_session=False))
    account = session.scalars(select(Account).where(Account.id == account_id)
                              .execution_options(populate_existing=True)).first()
    if account is None:
        raise NoAccountError("Account not found.")
    return _shown(account, now)


def rotate_webhook_secret(session: Session, account_id: int, secret_key: str, now: datetime,
                          grace: timedelta = DEFAULT_GRACE) -> WebhookSecret:
    """A new random secret; the one it replaces keeps signing for ``grace`` (0: stops now)."""
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise ValueError(f"grace must be between 0 and {MAX_GRACE}")
    # Locked, so two rotations at once cannot both demote the same secret and
    # lose the first one's new secret (its caller would hold a secret never used).
    account = session.scalars(select(Account).where(Account.id == account_id).with_for_update()
                              .execution_options(populate_existing=True)).first()
    if account is None:
        raise NoAccountError("Account not found.")
    old = account.webhook_secret or derived_secret(secret_key, account_id)
    account.webhook_secret = new_secret()
    if grace > timedelta(0):
        account.webhook_secret_previous, account.webhook_secret_previous_until = old, now + grace
    else:
        account.webhook_secret_previous = account.webhook_secret_previous_until = None
    return _shown(account, now)
