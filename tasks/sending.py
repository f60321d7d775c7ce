"""Provider I/O on the ``send`` queue: claim, deliver with failover, record (delivery.sender)."""
from __future__ import annotations

from datetime import timedelta

from delivery.circuits import load_routes
from delivery.routing import Failover, Route, Transport
from delivery.sender import SenderIdentity, deliver, prepare, record
from delivery.providers import build_transport as build_provider_transport
from delivery.tracking import Tracker
from models.base import utcnow
from models.db import session_scope
from settings import get_settings
from tasks.app import app


def default_route() -> Route | None:
    """The SMTP provider from the environment (SMTP_HOST...), for accounts with no
    providers of their own; None when it is not configured."""
    s = get_settings()
    if not s.smtp_host:
        return None
    return Route(provider_id=None, name="smtp", kind="smtp", config={
        "host": s.smtp_host, "port": s.smtp_port, "username": s.smtp_username, "password": s.smtp_password,
        "use_tls": s.smtp_use_tls, "use_ssl": s.smtp_port == 465})


def build_transport(route: Route) -> Transport:
    return build_provider_transport(route.kind, route.config, route.name)  # type: ignore[no-any-return]


@app.task(name="sending.send_messages", ignore_result=True)
def send_messages(message_ids: list[int]) -> dict[str, int]:
    s = get_settings()
    tracker = Tracker(s.secret_key, s.public_base_url)
    now = utcnow()
    with session_scope() as session:
        outgoing = prepare(session, message_ids, now, tracker, SenderIdentity(s.from_email, s.from_name),
                           lease=timedelta(seconds=s.lease_seconds))
        routes = load_routes(session, {o.account_id for o in outgoing}, default_route()) if outgoing else {}
    counts: dict[str, int] = {}
    failover = Failover(build_transport, now)
    try:
        for outcome in deliver(outgoing, failover, routes):
            with session_scope() as session:
                for status, n in record(session, [outcome], utcnow()).items():
                    counts[status] = counts.get(status, 0) + n
    finally:
        failover.close()
    return counts
