"""Inbound events and signature nonces are unique per account (the environment
endpoint's NULL account counting as one), on both backends, and migration 0009
keeps the tokens already seen."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from inbound.events import NormalizedEvent
from inbound.store import NONCE_KEEP, forget_spent_nonces, store_events
from models import db
from models.db import make_engine
from tests.support import factories
from tests.support.database import fresh_database, migrate

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)


def event(event_id: str) -> NormalizedEvent:
    return NormalizedEvent(event_id, "msg-1", "bounced", "hard", NOW, {"id": event_id})


def store(account_id: int | None, event_ids: list[str], nonce: str | None = None) -> list[int]:
    with db.session_scope() as s:
        return store_events(s, "mailgun", account_id, [event(i) for i in event_ids], nonce, NOW)


def stored() -> list[tuple[int | None, str]]:
    with db.session_scope() as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            text("SELECT account_id, provider_event_id FROM inbound_events ORDER BY id"))]


def test_the_same_event_id_is_stored_once_per_account():
    alice, bob = factories.account("Alice"), factories.account("Bob")
    [bobs] = store(bob, ["777"])
    [alices] = store(alice, ["777"])  # Bob stored it first: Alice's is hers all the same
    assert alices != bobs
    assert store(alice, ["777"]) == [alices]  # her retry hands back her own pending row only
    [environment] = store(None, ["777"])
    assert store(None, ["777"]) == [environment]  # NULL account: still one row
    assert stored() == [(bob, "777"), (alice, "777"), (None, "777")]


def test_a_nonce_is_spent_even_when_every_event_of_its_request_was_stored_before():
    alice, bob = factories.account("Alice"), factories.account("Bob")
    store(alice, ["ev-1"], nonce="token:a")
    store(alice, ["ev-1"], nonce="token:b")  # a duplicate event under a new token
    assert store(alice, ["forged"], nonce="token:b") == []  # that token cannot carry other events
    assert store(bob, ["ev-2"], nonce="token:b") != []  # another account's tokens are its own
    store(None, ["ev-3"], nonce="token:c")
    assert store(None, ["forged"], nonce="token:c") == []
    assert stored() == [(alice, "ev-1"), (bob, "ev-2"), (None, "ev-3")]


def _seed_0008(engine: Engine) -> None:
    """An account, and events stored the 0008 way: the nonce on the event row."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (id, name, from_email, created_at) "
                          "VALUES (1, 'Alice', 'a@sender.test', :now)"), {"now": NOW})
        for account_id, event_id, nonce in ((1, "e1", "token:x"), (None, "e2", "token:y"), (1, "e3", None)):
            conn.execute(text(
                "INSERT INTO inbound_events (account_id, provider, provider_event_id, nonce, payload, status, received_at)"
                " VALUES (:a, 'mailgun', :e, :n, '{}', 'pending', :now)"), {"a": account_id, "e": event_id, "n": nonce,
                                                                            "now": NOW})


def _assert_0009(engine: Engine) -> None:
    with engine.begin() as conn:
        nonces = conn.execute(text("SELECT account_id, nonce FROM inbound_nonces ORDER BY nonce")).all()
        assert [tuple(n) for n in nonces] == [(1, "token:x"), (None, "token:y")]
        insert = text("INSERT INTO inbound_events (account_id, provider, provider_event_id, payload, status, received_at)"
                      " VALUES (:a, 'mailgun', :e, '{}', 'pending', :now) ON CONFLICT DO NOTHING")
        for account_id, event_id in ((None, "e1"), (1, "e1"), (None, "e2"), (None, "new")):
            conn.execute(insert, {"a": account_id, "e": event_id, "now": NOW})
        rows = conn.execute(text("SELECT account_id, provider_event_id FROM inbound_events ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "e1"), (None, "e2"), (1, "e3"), (None, "e1"), (None, "new")]


@pytest.fixture
def postgres_at_0008() -> Iterator[str]:
    with fresh_database(f"eseq_mig_{secrets.token_hex(4)}") as url:
        migrate(url, "0008", "downgrade")
        yield url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0009_keeps_the_tokens_seen_and_keys_events_per_account(backend, tmp_path: Path, request):
    url = f"sqlite:///{tmp_path / 'eseq.sqlite'}" if backend == "sqlite" else request.getfixturevalue("postgres_at_0008")
    if backend == "sqlite":
        migrate(url, "0008")
    engine = make_engine(url)
    try:
        _seed_0008(engine)
        migrate(url)
        _assert_0009(engine)
    finally:
        engine.dispose()


def test_tokens_too_old_to_verify_are_forgotten_and_the_rest_kept():
    alice = factories.account("Alice")
    store(alice, ["ev-old"], nonce="token-old")
    store(alice, ["ev-new"], nonce="token-new")
    with db.session_scope() as s:
        s.execute(text("UPDATE inbound_nonces SET received_at = :at WHERE nonce = 'token-old'"),
                  {"at": NOW - NONCE_KEEP - timedelta(minutes=1)})
    with db.session_scope() as s:
        assert forget_spent_nonces(s, NOW) == 1
    with db.session_scope() as s:
        assert list(s.execute(text("SELECT nonce FROM inbound_nonces")).scalars()) == ["token-new"]
    # A token still inside the window is still spent: its replay stores nothing.
    assert store(alice, ["ev-other"], nonce="token-new") == []
