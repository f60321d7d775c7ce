"""Loading an account's history from the real database into pandas: PostgreSQL
(through COPY) and the embedded SQLite give the same frames, only the account's
own events up to ``until``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from ml.api import features, load_history
from models import Event, Subscriber, db
from tests.support import factories
from tests.support.database import embedded_sqlite

UNTIL = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _seed(account_row: bool = False) -> tuple[int, int, int]:
    if account_row:
        alice = factories.account_row(UNTIL - timedelta(days=400), "Alice")
        bob = factories.account_row(UNTIL - timedelta(days=400), "Bob")
    else:
        alice, bob = factories.account("Alice"), factories.account("Bob")
    with db.session_scope() as s:
        tokyo = Subscriber(account_id=alice, email="t@example.test", timezone="Asia/Tokyo",
                           created_at=UNTIL - timedelta(days=90))
        plain = Subscriber(account_id=alice, email="p@example.test", created_at=UNTIL - timedelta(days=30))
        other = Subscriber(account_id=bob, email="o@example.test", created_at=UNTIL - timedelta(days=30))
        s.add_all([tokyo, plain, other])
        s.flush()
        at = datetime(2026, 2, 20, 0, 30, 15, 250000, tzinfo=timezone.utc)
        s.add_all([Event(account_id=alice, subscriber_id=tokyo.id, name="sent", occurred_at=at - timedelta(hours=1)),
                   Event(account_id=alice, subscriber_id=tokyo.id, name="opened", occurred_at=at),
                   Event(account_id=alice, subscriber_id=tokyo.id, name="purchase", value=19.5, occurred_at=at),
                   Event(account_id=alice, subscriber_id=plain.id, name="opened", occurred_at=at),
                   Event(account_id=alice, subscriber_id=plain.id, name="opened", occurred_at=UNTIL + timedelta(seconds=1)),
                   Event(account_id=alice, subscriber_id=None, name="page_view", occurred_at=at),
                   Event(account_id=bob, subscriber_id=other.id, name="opened", occurred_at=at)])
        return alice, tokyo.id, plain.id


def _check(alice: int, tokyo: int, plain: int) -> None:
    with db.session_scope() as s:
        history = load_history(s, alice, UNTIL)
    events = history.events.sort_values(["subscriber_id", "name"]).reset_index(drop=True)
    assert str(events["name"].dtype) == "category" and str(events["value"].dtype) == "float32"
    assert str(events["occurred_at"].dtype) == "datetime64[ns, UTC]"
    at = pd.Timestamp("2026-02-20T00:30:15.250000Z")
    assert events[["subscriber_id", "name"]].astype({"name": str}).values.tolist() == [
        [tokyo, "opened"], [tokyo, "purchase"], [tokyo, "sent"], [plain, "opened"]]
    assert events["occurred_at"].tolist() == [at, at, at - pd.Timedelta(hours=1), at]
    assert events["value"].iloc[1] == 19.5 and events["value"].isna().sum() == 3
    assert sorted(history.subscribers.index) == [tokyo, plain]
    assert history.subscribers.loc[tokyo, "timezone"] == "Asia/Tokyo"
    frame = features(history, UNTIL)
    assert frame.loc[tokyo, "open_h09"] == 1 and frame.loc[plain, "open_h00"] == 1
    assert frame.loc[tokyo, "revenue_365d"] == 19.5 and frame.loc[plain, "opens_total"] == 1


@pytest.mark.committing
def test_it_loads_only_the_accounts_events_up_to_until_from_postgresql(database: str):
    _check(*_seed())


def test_it_loads_the_same_history_from_the_embedded_sqlite(tmp_path: Path):
    with embedded_sqlite(tmp_path):
        _check(*_seed(account_row=True))
