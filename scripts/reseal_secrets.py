"""Seal every stored secret with the first key of ESEQ_SECRETS_KEYS (models.sealed).

Run it after putting a new key first (rotation: the old key stays listed until
this has run, then can go), or after setting keys for the first time (what was
stored before is sealed now). One transaction: either every secret moves to the
new key or none does.

    ESEQ_SECRETS_KEYS=new,old python -m scripts.reseal_secrets
"""
from __future__ import annotations

import sys

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from models import Account, EventSubscription, Provider, db, sealed
from scripts import settings_or_complain


def reseal(session: Session) -> int:
    """Write every secret column again, so it is sealed with the current first key;
    returns how many rows were written."""
    rows = 0
    for provider in session.scalars(select(Provider)):
        flag_modified(provider, "config")
        rows += 1
    # Every sealed column of accounts, found by its type, so one added later is not missed.
    sealed_columns = [c.key for c in Account.__table__.columns if isinstance(c.type, sealed.SealedText)]
    holding = or_(*(getattr(Account, name).is_not(None) for name in sealed_columns))
    for account in session.scalars(select(Account).where(holding)):
        for name in sealed_columns:
            if getattr(account, name) is not None:
                flag_modified(account, name)
        rows += 1
    for subscription in session.scalars(select(EventSubscription)):
        flag_modified(subscription, "secret")
        rows += 1
    return rows


def main() -> int:
    settings = settings_or_complain()
    if settings is None:
        return 2
    if not settings.secrets_keys:
        print(f"error: {sealed.SETTING} is not set: there is no key to seal with", file=sys.stderr)
        return 2
    db.configure(settings.database_url, settings.secrets_keys)
    try:
        with db.session_scope() as session:
            rows = reseal(session)
    except sealed.SecretsUnavailable as exc:
        print(f"error: {exc}; nothing was changed", file=sys.stderr)
        return 1
    print(f"sealed the secrets of {rows} rows with the first key of {sealed.SETTING}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
