"""The platform's unsubscribe mailbox: the SMTP server behind List-Unsubscribe's
mailto when ESEQ_UNSUBSCRIBE_DOMAIN is set (RFC 2369).

Each email's mailto names an address of its own (``unsub-<id>-<mac>@<domain>``,
delivery.tracking): a recipient is accepted only if we made it, so the answer to
RCPT already tells a forger "no such mailbox" and nothing changes. A message to
an accepted address unsubscribes that email's recipient (as the page and the
one-click POST do), whatever its subject or body, which are not read. When the
database cannot take it, the answer is 451 and the sending server tries again:
an unsubscribe the mailbox said 250 to is recorded.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from delivery.tracking import Link, Tracker

log = logging.getLogger(__name__)

# The request is the address; its content is never read, so none is worth keeping.
DATA_SIZE_LIMIT = 256 * 1024


class UnsubscribeMailbox:
    """An aiosmtpd handler. ``unsubscribe`` records the unsubscribes of the messages
    a mail's addresses name (in one transaction) and may raise when the database is away."""

    def __init__(self, tracker: Tracker, unsubscribe: Callable[[list[Link]], None]) -> None:
        self.tracker = tracker
        self.unsubscribe = unsubscribe

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802 - aiosmtpd's
                          rcpt_options: list[str]) -> str:
        if self.tracker.mailbox_message(address) is None:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        links = sorted({link for address in envelope.rcpt_tos
                        if (link := self.tracker.mailbox_message(address)) is not None},
                       key=lambda link: (link.message_id, link.account_id or 0))
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.unsubscribe, links)
        except Exception as exc:  # noqa: BLE001 - any failure to record: the sender must try again
            log.warning("unsubscribe by mail not recorded", extra={"error": type(exc).__name__})
            return "451 4.3.0 Not recorded, try again later"
        return "250 2.0.0 Unsubscribed"
