"""RFC 3463 enhanced status codes (class.subject.detail), read one way for our own
SMTP replies (delivery.smtp) and for the bounces providers report back
(inbound): only a code that blames the address suppresses it."""
from __future__ import annotations

import re
from typing import Any

# "5.1.1", "550 5.1.1 user unknown", "smtp; 550 5.7.1 blocked as spam".
_ENHANCED = re.compile(r"(?<![0-9.])[245]\.([0-9]{1,3})\.([0-9]{1,3})(?![0-9.])")


def enhanced_code(*texts: Any) -> tuple[int, int] | None:
    """(subject, detail) of the first enhanced status code among ``texts``."""
    for value in texts:
        found = _ENHANCED.search(value) if isinstance(value, str) else None
        if found is not None:
            return int(found[1]), int(found[2])
    return None


def blames_address(subject: int, detail: int) -> bool:
    """Whether a permanent failure with this code is the recipient address's fault:
    X.1.x (bad mailbox, domain, syntax) but our sender's X.1.7/X.1.8, X.2.x (mailbox
    disabled) but a full mailbox (X.2.2) or the size (X.2.3), X.4.4 (no route to
    the domain), X.0.x (unspecified). Not the address: the network (other X.4.x),
    the receiving system (X.3.x), protocol (X.5.x), content (X.6.x) and policy
    (X.7.x: spam filters, blocklists, DMARC)."""
    if subject == 1:
        return detail not in (7, 8)
    if subject == 2:
        return detail not in (2, 3)
    if subject == 4:
        return detail == 4
    return subject == 0


def blames_us(subject: int, detail: int) -> bool:
    """Policy (X.7.x: relaying denied, our IP on a blocklist, DMARC) or our sender
    (X.1.7/X.1.8): another provider, another IP, may be accepted."""
    return subject == 7 or (subject == 1 and detail in (7, 8))
