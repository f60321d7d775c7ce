"""Run the unsubscribe mailbox (inbound/unsubscribe_mailbox.py) until stopped:
``python -m scripts.unsubscribe_mailbox``. Needs ESEQ_UNSUBSCRIBE_DOMAIN, whose MX
points at this host; listens on ESEQ_UNSUBSCRIBE_SMTP_HOST:ESEQ_UNSUBSCRIBE_SMTP_PORT
(0.0.0.0:2525: forward port 25 to it)."""
from __future__ import annotations

import signal
import sys
import threading

from aiosmtpd.controller import Controller

from delivery.tracking import Link, Tracker
from delivery.unsubscribe import unsubscribe_by_link
from inbound.unsubscribe_mailbox import DATA_SIZE_LIMIT, UnsubscribeMailbox
from models import db
from models.base import utcnow
from observability.logs import configure_logging
from observability.sentry import init_sentry
from scripts import settings_or_complain
from settings import Settings


def record_unsubscribes(links: list[Link]) -> None:
    """Each named message's recipient unsubscribed, in one transaction (a message
    since deleted is skipped: there is nobody left to write to)."""
    with db.session_scope() as session:
        for link in links:
            unsubscribe_by_link(session, link, utcnow(), source="mailto")


def mailbox(settings: Settings) -> Controller:
    tracker = Tracker(settings.secret_key, settings.public_base_url, settings.unsubscribe_domain)
    return Controller(UnsubscribeMailbox(tracker, record_unsubscribes), hostname=settings.unsubscribe_smtp_host,
                      port=settings.unsubscribe_smtp_port, server_hostname=settings.unsubscribe_domain,
                      data_size_limit=DATA_SIZE_LIMIT)


def main() -> int:
    settings = settings_or_complain()
    if settings is None:
        return 2
    if settings.unsubscribe_domain is None:
        print("error: ESEQ_UNSUBSCRIBE_DOMAIN is not set: List-Unsubscribe's mailto goes to each sender", file=sys.stderr)
        return 2
    configure_logging()
    init_sentry(settings, "unsubscribe_mailbox")
    db.configure(settings.database_url, settings.secrets_keys)
    server = mailbox(settings)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    server.start()
    print(f"unsubscribe mailbox for @{settings.unsubscribe_domain} on "
          f"{settings.unsubscribe_smtp_host}:{settings.unsubscribe_smtp_port}", flush=True)
    stopped.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
