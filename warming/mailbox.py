"""Mailbox-provider groups: which provider a recipient's domain belongs to, and each
group's share of the day's cap.

Gmail, Yahoo and Microsoft each keep their own reputation for a sending IP and
throttle it on their own, so each group ramps with its own cap and its own health.
Grouping is by domain alone (no MX lookups here): custom domains hosted by Google
Workspace or Microsoft 365 fall into "other" unless the caller maps them with
``overrides`` (for example from MX records it looked up itself).

The default shares follow a typical consumer list, Gmail first: Gmail 40%,
Microsoft (Outlook, Hotmail) 25%, Yahoo with AOL 15%, everyone else (corporate
domains, ISPs, iCloud) 20%. A group can only use its own share, so a plan whose
list is mostly one provider should set the shares to its own mix.
"""
from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from warming.errors import SharesError, is_number

GROUPS = ("gmail", "yahoo", "microsoft", "other")
DEFAULT_SHARES: Mapping[str, float] = {"gmail": 0.40, "yahoo": 0.15, "microsoft": 0.25, "other": 0.20}
SHARE_SUM_TOLERANCE = 1e-6  # thirds typed as 0.333333 still add up

_EXACT = {
    "gmail.com": "gmail", "googlemail.com": "gmail",
    "ymail.com": "yahoo", "rocketmail.com": "yahoo", "aol.com": "yahoo",  # AOL's mail runs on Yahoo's
    "msn.com": "microsoft",
}
# "yahoo.fr", "hotmail.co.uk": the brand followed by a country or generic suffix.
_BRANDS = {"yahoo": "yahoo", "hotmail": "microsoft", "live": "microsoft", "outlook": "microsoft"}
_NOT_THE_BRAND = {"yahoo.co.jp"}  # Yahoo! JAPAN runs its own mail, apart from Yahoo's


def group_of(address_or_domain: str, overrides: Mapping[str, str] | None = None) -> str:
    """The group of a recipient (``bob@Gmail.com`` or ``gmail.com``): gmail, yahoo, microsoft or other."""
    domain = address_or_domain.rpartition("@")[2].strip().rstrip(".").lower()
    if overrides and domain in overrides:
        return overrides[domain]
    if domain in _EXACT:
        return _EXACT[domain]
    brand, _, suffix = domain.partition(".")
    if brand in _BRANDS and _looks_like_public_suffix(suffix) and domain not in _NOT_THE_BRAND:
        return _BRANDS[brand]
    return "other"


def _looks_like_public_suffix(suffix: str) -> bool:
    """``com``, ``fr``, ``co.uk``, ``com.br``, but not ``example.org``: without a public
    suffix list, one or two labels of at most three letters is the shape of one."""
    labels = suffix.split(".")
    return 1 <= len(labels) <= 2 and all(1 < len(label) <= 3 and label.isalpha() for label in labels)


def check_shares(shares: Any) -> dict[str, float]:
    """``shares`` validated: one number from 0 to 1 for each group, summing to 1."""
    if not isinstance(shares, Mapping):
        raise SharesError("shares", "Must be an object of " + ", ".join(GROUPS) + ".")
    for key in shares:
        if key not in GROUPS:
            raise SharesError(f"shares.{key}", "Unknown group; the groups are " + ", ".join(GROUPS) + ".")
    for group in GROUPS:
        if group not in shares:
            raise SharesError(f"shares.{group}", "Missing: a group without a share could send nothing.")
        if not is_number(shares[group]) or not 0 <= shares[group] <= 1:
            raise SharesError(f"shares.{group}", "Must be a share from 0 to 1.")
    total = sum(shares[group] for group in GROUPS)
    if abs(total - 1) > SHARE_SUM_TOLERANCE:
        raise SharesError("shares", f"The shares add up to {total:g}; they must add up to 1.")
    return {group: float(shares[group]) for group in GROUPS}


def split_cap(total: int, shares: Mapping[str, float] = DEFAULT_SHARES) -> dict[str, int]:
    """``total`` divided between the groups by their shares, the parts summing to exactly ``total``.

    Largest remainder: each group gets the whole part of its share, and the units
    left over go to the largest fractional parts (ties to the earlier group in
    ``GROUPS``), so rounding can never add or lose a send.
    """
    if total < 0:
        raise ValueError(f"A cap cannot be negative: {total}.")
    checked = check_shares(shares)
    # str() first: Fraction(0.15) is the binary float, Fraction("0.15") is 3/20.
    exact = {group: Fraction(str(checked[group])) for group in GROUPS}
    scale = sum(exact.values())
    quotas = {group: total * share / scale for group, share in exact.items()}
    parts = {group: int(quota) for group, quota in quotas.items()}
    by_remainder = sorted(GROUPS, key=lambda g: (-(quotas[g] - parts[g]), GROUPS.index(g)))
    for group in by_remainder[: total - sum(parts.values())]:
        parts[group] += 1
    return parts
