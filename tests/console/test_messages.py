"""The console's message log: the API's query and filters, days in the account's
zone, a message's events, nothing of another account's."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from analytics.events import record_event
from models import Account, Message, db
from tests.support import factories
from tests.support.console import sign_in
from tests.support.db_fixtures import Tenant


def _html(response: Any) -> str:
    return response.get_data(as_text=True)


def _message(account_id: int, subscriber_id: int, key: str, created_at: datetime, **fields: Any) -> int:
    with db.session_scope() as s:
        row = Message(account_id=account_id, subscriber_id=subscriber_id, idempotency_key=key,
                      created_at=created_at, **{"status": "sent", "to_email": "x@example.test", "subject": key,
                                                **fields})
        s.add(row)
        s.flush()
        return row.id


def _log(tenant: Tenant) -> dict[str, int]:
    """Five messages: two of a sequence, one of a broadcast, one failed, one old."""
    a = tenant.account_id
    sequence_id = factories.sequence(a, [{"type": "email", "subject": "x", "text": "x"}])
    [ada, bea] = factories.subscribers(a, 2, prefix=f"{tenant.name.lower()}-r")
    day = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    return {
        "welcome": _message(a, ada, f"{tenant.name}-welcome", day, sequence_id=sequence_id,
                            to_email=f"ada@{tenant.name.lower()}.test"),
        "followup": _message(a, bea, f"{tenant.name}-followup", day, sequence_id=sequence_id,
                             to_email=f"bea@{tenant.name.lower()}.test", status="deferred"),
        "newsletter": _message(a, ada, f"{tenant.name}-newsletter", day, broadcast_id=77,
                               to_email=f"ada@{tenant.name.lower()}.test"),
        "bounced": _message(a, bea, f"{tenant.name}-bounced", day, status="failed", error="550 no such user",
                            to_email=f"bea@{tenant.name.lower()}.test"),
        "old": _message(a, ada, f"{tenant.name}-old", day - timedelta(days=30), to_email=f"ada@{tenant.name.lower()}.test"),
        "sequence_id": sequence_id,
    }


def _subjects(page: str, tenant: Tenant) -> set[str]:
    return {name for name in ("welcome", "followup", "newsletter", "bounced", "old") if f"{tenant.name}-{name}<" in page}


def test_the_log_lists_and_filters_as_the_api(client: Any, alice: Tenant, bob: Tenant) -> None:
    ids = _log(alice)
    _log(bob)
    sign_in(client, alice.api_key)
    assert _subjects(_html(client.get("/console/messages")), alice) == {"welcome", "followup", "newsletter",
                                                                          "bounced", "old"}
    assert "Bob-" not in _html(client.get("/console/messages"))
    assert _subjects(_html(client.get("/console/messages?status=failed")), alice) == {"bounced"}
    assert _subjects(_html(client.get(f"/console/messages?sequence_id={ids['sequence_id']}")), alice) == {
        "welcome", "followup"}
    assert _subjects(_html(client.get("/console/messages?broadcast_id=77")), alice) == {"newsletter"}
    assert _subjects(_html(client.get("/console/messages?email=BEA@")), alice) == {"followup", "bounced"}
    assert _subjects(_html(client.get("/console/messages?from=2026-11-20&to=2026-11-20")), alice) == {
        "welcome", "followup", "newsletter", "bounced"}
    assert _subjects(_html(client.get("/console/messages?to=2026-11-19")), alice) == {"old"}
    assert "No message matches" in _html(client.get("/console/messages?email=nobody"))
    # The API takes the same filters, through the same query.
    api = client.get("/api/v1/messages?email=bea@&status=failed", headers=alice.headers).get_json()
    assert [m["id"] for m in api] == [ids["bounced"]]


def test_days_are_the_accounts_days(client: Any, alice: Tenant) -> None:
    [sid] = factories.subscribers(alice.account_id, 1)
    # 20 Nov 23:30 UTC is already 21 Nov in Tokyo.
    _message(alice.account_id, sid, "late", datetime(2026, 11, 20, 23, 30, tzinfo=timezone.utc))
    sign_in(client, alice.api_key)
    assert "late<" in _html(client.get("/console/messages?from=2026-11-20&to=2026-11-20"))
    with db.session_scope() as s:
        s.get(Account, alice.account_id).timezone = "Asia/Tokyo"
    assert "late<" not in _html(client.get("/console/messages?from=2026-11-20&to=2026-11-20"))
    page = _html(client.get("/console/messages?from=2026-11-21&to=2026-11-21"))
    assert "late<" in page and "2026-11-20 23:30" not in page  # listed at its Tokyo time


def test_bad_filters_name_the_field_and_list_nothing(client: Any, alice: Tenant) -> None:
    _log(alice)
    sign_in(client, alice.api_key)
    for query, field, message in (("status=lost", "status", "Must be one of"),
                                  ("from=yesterday", "from", "Not a valid date"),
                                  ("from=2026-11-21&to=2026-11-20", "from", "Must not be after"),
                                  ("sequence_id=0", "sequence_id", "greater than or equal to 1"),
                                  ("broadcast_id=abc", "broadcast_id", "Not a valid integer")):
        page = _html(client.get(f"/console/messages?{query}"))
        assert message in page and f'id="f-{field}"' in page, query
        assert _subjects(page, alice) == set(), query


def test_the_log_is_paginated_and_an_empty_one_says_what_next(client: Any, alice: Tenant) -> None:
    sign_in(client, alice.api_key)
    assert "Nothing sent yet" in _html(client.get("/console/messages"))
    [sid] = factories.subscribers(alice.account_id, 1)
    for i in range(51):
        _message(alice.account_id, sid, f"m{i}", datetime(2026, 11, 20, tzinfo=timezone.utc))
    page = _html(client.get("/console/messages"))
    assert "Page 1 of 2 (51 in all)" in page and "m50<" in page and "m0<" not in page
    assert "m0<" in _html(client.get("/console/messages?page=2"))


def test_a_message_page_shows_its_events(client: Any, alice: Tenant) -> None:
    ids = _log(alice)
    with db.session_scope() as s:
        message = s.get(Message, ids["welcome"])
        for name in ("delivered", "opened"):
            record_event(s, account_id=alice.account_id, subscriber_id=message.subscriber_id, name=name,
                         now=datetime(2026, 11, 20, 13, tzinfo=timezone.utc), message_id=message.id,
                         source="tracking", properties={"ua": "test"})
    sign_in(client, alice.api_key)
    page = _html(client.get(f"/console/messages/{ids['welcome']}"))
    assert "Alice-welcome" in page and "ada@alice.test" in page
    assert "<td>delivered</td>" in page and "<td>opened</td>" in page and "tracking" in page
    assert "No events yet" in _html(client.get(f"/console/messages/{ids['bounced']}"))
    assert "550 no such user" in _html(client.get(f"/console/messages/{ids['bounced']}"))


def test_another_accounts_message_is_a_404(client: Any, alice: Tenant, bob: Tenant) -> None:
    bobs = _log(bob)
    sign_in(client, alice.api_key)
    response = client.get(f"/console/messages/{bobs['welcome']}")
    assert response.status_code == 404 and "Bob-welcome" not in _html(response)
    assert "Bob-" not in _html(client.get(f"/console/messages?sequence_id={bobs['sequence_id']}"))
