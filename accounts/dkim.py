"""An account's own DKIM key: setting, reading and removing it.

With one, the account's mail is signed for its own domain (delivery.sender), so
From its domain passes DMARC alignment; without one the platform's key signs.
What leaves here is the public half only: the private key is a secret, never
returned or logged.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.dkim_keys import DkimKeyError, is_dns_name, parse_account_key, public_key_record
from delivery.dkim import account_key
from models import Account


class DkimSettingError(ValueError):
    """A refused part of a DKIM setting; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field


class NoDkimKeyError(LookupError):
    """The account has no key of its own."""


@dataclass(frozen=True)
class DkimRecord:
    selector: str
    domain: str
    public_key_dns: str  # the TXT record for <selector>._domainkey.<domain>


def _account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NoDkimKeyError("Account not found.")
    return account


def _record(account: Account) -> DkimRecord:
    key = account_key(account)
    if key is None:
        raise NoDkimKeyError("This account has no DKIM key of its own.")
    return DkimRecord(key.selector, key.domain, public_key_record(key.private_key))


def set_dkim_key(session: Session, account_id: int, selector: str, domain: str, private_key: str) -> DkimRecord:
    """Check all three, then store them; nothing is written when any is refused."""
    if not is_dns_name(selector):
        raise DkimSettingError("selector", "must be a DNS name (letters, digits, hyphens, dots).")
    domain = domain.lower().rstrip(".")
    if not is_dns_name(domain) or "." not in domain:
        raise DkimSettingError("domain", "must be a domain name such as example.com.")
    try:
        pem = parse_account_key(private_key)
    except DkimKeyError as exc:
        raise DkimSettingError("private_key", f"{exc}.") from None
    account = _account(session, account_id)
    account.dkim_selector, account.dkim_domain, account.dkim_private_key = selector, domain, pem
    return _record(account)


def dkim_record(session: Session, account_id: int) -> DkimRecord:
    return _record(_account(session, account_id))


def clear_dkim_key(session: Session, account_id: int) -> None:
    """Back to the platform's key; removing a key that is not there is no error."""
    account = session.get(Account, account_id)
    if account is not None:
        account.dkim_selector = account.dkim_domain = account.dkim_private_key = None
