"""The subscribe form with Redis (the limits' storage and the broker) unreachable: it
keeps taking sign-ups, still limited per address (each process counting in memory),
and the confirmation it could not hand to the broker waits in the outbox for the
tick's sweep."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from models import Message, Subscriber, db
from tests.api.test_degraded import call, serve_without_redis, tenant

pytestmark = pytest.mark.committing


@pytest.fixture
def no_redis(tmp_path: Path) -> Iterator[int]:
    yield from serve_without_redis(tmp_path, "subscribe-no-redis")


def test_the_form_takes_sign_ups_and_limits_each_address_while_redis_is_down(no_redis: int) -> None:
    headers = tenant(no_redis)
    status, _, account = call(no_redis, "PATCH", "/api/v1/account", {"opt_in": "double"}, headers)
    assert status == 200
    path = f"/subscribe/{account['form_key']}"
    statuses = [call(no_redis, "POST", path, {"email": "ada@example.com"})[0] for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
    with db.session_scope() as s:
        assert s.scalars(select(Subscriber.status)).all() == ["pending"]
        assert sorted(s.scalars(select(Message.status))) == ["queued"] * 3
