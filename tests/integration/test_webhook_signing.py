"""Receivers verify webhook-step calls with the documented check
(scripts/verify_webhook_example.py, quoted verbatim in the docs): a real HTTP
receiver on loopback runs it on every call and refuses (400) what it cannot
verify, so a call it cannot verify ends "failed". Secrets come from the API, as a
receiver's owner would get them; time is injected by calling webhooks.outbound's
claim -> call -> record directly."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select, update

from accounts.webhook_secret import derived_secret, rotate_webhook_secret, webhook_secret
from models import Account, WebhookDelivery, db
from scripts.verify_webhook_example import TOLERANCE_SECONDS, verify
from settings import get_settings
from tests.support.engine import webhook_calls as advance_webhook_steps
from webhooks import outbound

SECRET = "/api/v1/account/webhook-secret"
ROTATE = "/api/v1/account/webhook-secret/rotate"


class VerifyingReceiver:
    """An HTTP server on 127.0.0.1 that checks each call with the documented
    ``verify``, using the secret the test gave its path, at the clock the test
    set: 200 when it verifies, 400 when not. Keeps (path, header, body, verified)."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.clock: float = 0.0
        self.calls: list[tuple[str, str, bytes, bool]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                header = self.headers.get("X-Eseq-Signature", "")
                with receiver.lock:
                    ok = verify(receiver.secrets[self.path], header, body, now=receiver.clock)
                    receiver.calls.append((self.path, header, body, ok))
                self.send_response(200 if ok else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def receiver() -> Iterator[VerifyingReceiver]:
    r = VerifyingReceiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        r.thread.join(5)


def webhook_calls(account_id: int, urls: list[str], now: datetime) -> list[int]:
    """One subscriber per URL through a one-step webhook sequence at ``now``: the delivery ids, in URL order."""
    return advance_webhook_steps(account_id, urls, now, prefix=f"s{int(now.timestamp())}-")[1]


def deliver(receiver: VerifyingReceiver, ids: list[int], now: datetime, secret_key: str | None = None) -> dict[int, str]:
    """What the webhooks.deliver task does, at ``now`` (the receiver's clock too): each row's status after."""
    receiver.clock = now.timestamp()
    with db.session_scope() as s:
        calls = outbound.claim(s, ids, now)
    results = [outbound.call(c, secret_key or get_settings().secret_key, now, True) for c in calls]
    with db.session_scope() as s:
        outbound.record(s, results, now)
    with db.session_scope() as s:
        return {r.id: r.status for r in s.execute(select(WebhookDelivery.id, WebhookDelivery.status)
                                                  .where(WebhookDelivery.id.in_(ids)))}


def test_a_receiver_holding_the_shown_secret_verifies_a_call_and_one_holding_another_accounts_refuses_it(
        client, alice, bob, receiver):
    receiver.secrets["/alice"] = client.get(SECRET, headers=alice.headers).get_json()["secret"]
    receiver.secrets["/bob"] = client.get(SECRET, headers=bob.headers).get_json()["secret"]
    now = datetime.now(timezone.utc)
    mine, misrouted = webhook_calls(alice.account_id, [receiver.url("/alice"), receiver.url("/bob")], now)

    statuses = deliver(receiver, [mine, misrouted], now)

    assert statuses == {mine: "delivered", misrouted: "failed"}
    [(_, header, _, _)] = [c for c in receiver.calls if c[0] == "/alice"]
    assert header.count("v1=") == 1  # no old secret: one signature


def test_during_the_grace_period_the_old_secret_still_verifies_and_after_it_only_the_new_one_does(
        client, alice, receiver):
    old = client.get(SECRET, headers=alice.headers).get_json()["secret"]
    rotated = client.post(ROTATE, json={"grace_seconds": 3600}, headers=alice.headers).get_json()
    receiver.secrets.update({"/old": old, "/new": rotated["secret"]})
    ends = datetime.fromisoformat(rotated["previous_expires_at"])

    during = ends - timedelta(minutes=1)
    old_call, new_call = webhook_calls(alice.account_id, [receiver.url("/old"), receiver.url("/new")], during)
    assert deliver(receiver, [old_call, new_call], during) == {old_call: "delivered", new_call: "delivered"}
    assert sorted((path, ok) for path, _, _, ok in receiver.calls) == [("/new", True), ("/old", True)]
    assert all(header.count("v1=") == 2 for _, header, _, _ in receiver.calls)

    receiver.calls.clear()
    after = ends + timedelta(seconds=1)
    old_call, new_call = webhook_calls(alice.account_id, [receiver.url("/old"), receiver.url("/new")], after)
    assert deliver(receiver, [old_call, new_call], after) == {old_call: "failed", new_call: "delivered"}
    assert all(header.count("v1=") == 1 for _, header, _, _ in receiver.calls)


def test_the_documented_check_refuses_a_tampered_body_and_a_call_replayed_after_the_tolerance(
        client, alice, receiver):
    receiver.secrets["/hook"] = secret = client.get(SECRET, headers=alice.headers).get_json()["secret"]
    now = datetime.now(timezone.utc)
    [hook] = webhook_calls(alice.account_id, [receiver.url("/hook")], now)
    assert deliver(receiver, [hook], now) == {hook: "delivered"}
    [(_, header, body, _)] = receiver.calls

    t = now.timestamp()
    assert verify(secret, header, body, now=t + TOLERANCE_SECONDS - 1)
    assert not verify(secret, header, body, now=t + TOLERANCE_SECONDS + 1)
    assert not verify(secret, header, body.replace(b"}", b',"x":1}', 1), now=t)
    assert not verify(secret, header.replace("t=", "t=1", 1), body, now=t)
    assert not verify(secret + "x", header, body, now=t)
    assert not verify(secret, "t=\u00b2,v1=\u00e9", body, now=t)  # non-ASCII: refused, never raises


def test_an_account_made_before_secrets_were_stored_signs_with_its_derived_secret_which_showing_it_stores(
        alice, receiver):
    # As the migration leaves every account that existed before it.
    with db.session_scope() as s:
        s.execute(update(Account).where(Account.id == alice.account_id).values(webhook_secret=None))
    key = get_settings().secret_key
    receiver.secrets["/hook"] = derived_secret(key, alice.account_id)
    now = datetime.now(timezone.utc)
    [before] = webhook_calls(alice.account_id, [receiver.url("/hook")], now)
    assert deliver(receiver, [before], now) == {before: "delivered"}  # what receivers could verify before

    with db.session_scope() as s:
        shown = webhook_secret(s, alice.account_id, key, now)
    assert shown.secret == derived_secret(key, alice.account_id)
    # Stored now: a new SECRET_KEY (random per run in the embedded mode) no longer changes it.
    [after] = webhook_calls(alice.account_id, [receiver.url("/hook")], now + timedelta(seconds=1))
    assert deliver(receiver, [after], now + timedelta(seconds=1), secret_key=key + "-changed") == {after: "delivered"}


def test_rotating_again_in_a_grace_period_ends_the_older_secrets_at_once_and_grace_zero_ends_the_old_one(
        alice, receiver):
    now = datetime.now(timezone.utc)
    key = get_settings().secret_key
    with db.session_scope() as s:
        first = webhook_secret(s, alice.account_id, key, now).secret
    with db.session_scope() as s:
        second = rotate_webhook_secret(s, alice.account_id, key, now, timedelta(hours=1)).secret
    with db.session_scope() as s:
        third = rotate_webhook_secret(s, alice.account_id, key, now, timedelta(hours=1)).secret
    receiver.secrets.update({"/first": first, "/second": second, "/third": third})
    ids = webhook_calls(alice.account_id, [receiver.url(p) for p in ("/first", "/second", "/third")], now)
    statuses = deliver(receiver, ids, now)
    assert [statuses[i] for i in ids] == ["failed", "delivered", "delivered"]

    with db.session_scope() as s:
        fourth = rotate_webhook_secret(s, alice.account_id, key, now, timedelta(0))
    assert fourth.previous_expires_at is None
    receiver.secrets.update({"/third": third, "/fourth": fourth.secret})
    later = now + timedelta(seconds=1)
    ids = webhook_calls(alice.account_id, [receiver.url("/third"), receiver.url("/fourth")], later)
    statuses = deliver(receiver, ids, later)
    assert [statuses[i] for i in ids] == ["failed", "delivered"]


def test_the_migration_leaves_existing_accounts_on_their_derived_secret_and_comes_back_down(tmp_path):
    from sqlalchemy import create_engine, text

    from tests.support.database import migrate

    url = f"sqlite:///{tmp_path / 'eseq.sqlite'}"
    migrate(url, "0013")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO accounts (id, name, from_email, created_at) "
                              "VALUES (7, 'Old', 'old@example.test', '2026-01-01 00:00:00')"))
        migrate(url, "0014")
        with engine.connect() as conn:
            row = conn.execute(text("SELECT webhook_secret, webhook_secret_previous, webhook_secret_previous_until "
                                    "FROM accounts WHERE id = 7")).one()
        assert tuple(row) == (None, None, None)  # NULL: signs with the derived secret, as before
        migrate(url, "0013", "downgrade")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM accounts WHERE id = 7")).scalar() == "Old"
            columns = {r[1] for r in conn.execute(text("PRAGMA table_info(accounts)"))}
        assert "webhook_secret" not in columns
    finally:
        engine.dispose()
