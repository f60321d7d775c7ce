"""Accounts (tenants) and their API keys."""
from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow
from models.sealed import SealedText

OPT_IN_MODES = ("single", "double")


def new_form_key() -> str:
    """The public key of an account's subscribe form: random, so the form's URL
    says nothing about the account and cannot be guessed from its id."""
    return secrets.token_urlsafe(16)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    from_email: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str | None] = mapped_column(String(200))
    postal_address: Mapped[str | None] = mapped_column(String(500))
    # The account's own DKIM key, so mail From its domain passes DMARC alignment;
    # without one the platform's key (DKIM_*) signs. The key is a secret: never
    # logged or returned (PEM, checked on the way in by delivery.dkim).
    dkim_selector: Mapped[str | None] = mapped_column(String(63))
    dkim_domain: Mapped[str | None] = mapped_column(String(253))
    dkim_private_key: Mapped[str | None] = mapped_column(SealedText())  # sealed at rest (models.sealed)
    # The secret webhook-step calls are signed with (accounts.webhook_secret): shown
    # to the account, sealed at rest. NULL: derived from SECRET_KEY until first shown.
    # During a grace period after a rotation the previous secret signs as well.
    webhook_secret: Mapped[str | None] = mapped_column(SealedText())
    webhook_secret_previous: Mapped[str | None] = mapped_column(SealedText())
    webhook_secret_previous_until: Mapped[datetime | None]
    # How the public subscribe form takes new addresses (audience.opt_in): "single"
    # makes them active at once, "double" pending until they confirm by email.
    opt_in: Mapped[str] = mapped_column(String(10), server_default="single", default="single")
    # Addresses the account's subscribe form (/subscribe/<form_key>); shown to the account.
    form_key: Mapped[str | None] = mapped_column(String(32), index=True, unique=True, default=new_form_key)
    # Where a browser goes after posting the form (the account's own thank-you page);
    # None: the platform's small one. Set by the account, so no open redirect.
    form_redirect_url: Mapped[str | None] = mapped_column(String(2000))
    # The zone the console shows this account's times in (the API answers in UTC).
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC", default="UTC")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Days kept before the pruning job (analytics.retention) removes them: raw events,
    # the content of sent messages (the rows stay, for counts), providers' raw events.
    retention_events_days: Mapped[int] = mapped_column(server_default="400", default=400)
    retention_bodies_days: Mapped[int] = mapped_column(server_default="30", default=30)
    retention_inbound_days: Mapped[int] = mapped_column(server_default="30", default=30)


class ApiKey(Base):
    """An API key, stored as a SHA-256 digest: keys are 256-bit random, so a fast
    hash is enough, and a leaked table does not leak usable keys."""

    __tablename__ = "api_keys"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
