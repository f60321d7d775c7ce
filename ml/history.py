"""Reading an account's history into pandas, compactly.

10,000,000 events must fit a worker's memory with room to train: an event is an
int64 subscriber id, a categorical name (one byte), an int64 time and a float32
value, about 21 bytes, so 10M events take about 210 MB. On PostgreSQL the rows
leave the server through ``COPY ... TO STDOUT`` as CSV, which pandas' C parser
reads at millions of rows a second; fetching 10M tuples through the DB-API would
build 40M Python objects first.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.zones import zone

# What the platform itself records; any other name is the account's own (a
# purchase, a sign-up) and counts as a conversion, its value as revenue.
PLATFORM_EVENTS = ("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed",
                   "deferred", "rejected")

_EVENTS_SQL = ("SELECT subscriber_id, name, (extract(epoch FROM occurred_at) * 1000000)::bigint AS us, value"
               " FROM events WHERE account_id = {account} AND subscriber_id IS NOT NULL"
               " AND occurred_at <= '{until}'::timestamptz")
_SUBSCRIBERS_SQL = ("SELECT id AS subscriber_id, timezone, status, created_at FROM subscribers"
                    " WHERE account_id = :account")


@dataclass
class History:
    """Events and subscribers of one account up to ``until``.

    ``events``: subscriber_id int64, name category, occurred_at datetime64[ns, UTC],
    value float32. ``subscribers``: index subscriber_id; timezone (str or None),
    status, created_at datetime64[ns, UTC].
    """

    account_id: int
    until: datetime
    events: pd.DataFrame
    subscribers: pd.DataFrame
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def local_hours(self) -> np.ndarray:
        """Each event's hour (0-23) in its subscriber's time zone (UTC when none or
        unknown); computed once per history."""
        if "local_hours" not in self._cache:
            self._cache["local_hours"] = _local_hours(self.events, self.subscribers)
        return self._cache["local_hours"]


def make_history(account_id: int, until: datetime, events: pd.DataFrame, subscribers: pd.DataFrame) -> History:
    """A History from frames built elsewhere (the simulator, tests), in the dtypes
    load_history gives, with events after ``until`` left out."""
    events = events.copy()
    events["subscriber_id"] = events["subscriber_id"].astype("int64")
    events["name"] = events["name"].astype("category")
    events["occurred_at"] = pd.to_datetime(events["occurred_at"], utc=True).astype("datetime64[ns, UTC]")
    events["value"] = (events["value"] if "value" in events else np.nan)
    events["value"] = events["value"].astype("float32")
    events = events.loc[events["occurred_at"] <= pd.Timestamp(until), ["subscriber_id", "name", "occurred_at", "value"]]
    subscribers = subscribers.copy()
    if "subscriber_id" in subscribers.columns:
        subscribers = subscribers.set_index("subscriber_id")
    subscribers.index = subscribers.index.astype("int64")
    subscribers["created_at"] = pd.to_datetime(subscribers["created_at"], utc=True).astype("datetime64[ns, UTC]")
    if "timezone" not in subscribers:
        subscribers["timezone"] = None
    if "status" not in subscribers:
        subscribers["status"] = "active"
    return History(account_id, until, events.reset_index(drop=True), subscribers)


def load_history(session: Session, account_id: int, until: datetime) -> History:
    """The account's events up to ``until`` and its subscribers (see ml.api)."""
    until = until.astimezone(timezone.utc)
    conn = session.connection()
    subscribers = pd.DataFrame(conn.execute(text(_SUBSCRIBERS_SQL), {"account": account_id}).all(),
                               columns=["subscriber_id", "timezone", "status", "created_at"])
    if conn.dialect.name == "postgresql":
        events = _events_by_copy(conn, account_id, until)
    else:
        events = _events_by_query(conn, account_id, until)
    return make_history(account_id, until, events, subscribers)


def _events_by_copy(conn: Any, account_id: int, until: datetime) -> pd.DataFrame:
    # Both values are ours (an int and an ISO time), so formatting them into the COPY
    # is safe; COPY takes no bind parameters.
    sql = _EVENTS_SQL.format(account=int(account_id), until=until.isoformat())
    raw = conn.connection.dbapi_connection
    with tempfile.SpooledTemporaryFile(max_size=64 << 20, mode="w+b") as buffer:
        with raw.cursor() as cursor:
            cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", buffer)
        buffer.seek(0)
        frame = pd.read_csv(buffer, names=["subscriber_id", "name", "us", "value"], header=None,
                            dtype={"subscriber_id": "int64", "name": "category", "us": "int64", "value": "float32"})
    frame["occurred_at"] = pd.to_datetime(frame.pop("us"), unit="us", utc=True)
    return frame


def _events_by_query(conn: Any, account_id: int, until: datetime) -> pd.DataFrame:
    rows = conn.execute(text("SELECT subscriber_id, name, occurred_at, value FROM events WHERE account_id = :a"
                             " AND subscriber_id IS NOT NULL"), {"a": account_id}).all()
    frame = pd.DataFrame(rows, columns=["subscriber_id", "name", "occurred_at", "value"])
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601")
    return frame


def _local_hours(events: pd.DataFrame, subscribers: pd.DataFrame) -> np.ndarray:
    zones = subscribers["timezone"].fillna("UTC").astype("category")
    position = zones.index.get_indexer(events["subscriber_id"].to_numpy())
    codes = np.where(position >= 0, zones.cat.codes.to_numpy()[position], -1)
    times = pd.DatetimeIndex(events["occurred_at"])
    hours = times.hour.to_numpy().astype("int8")  # UTC, kept for unknown subscribers and zones
    for code, name in enumerate(zones.cat.categories):
        mask = codes == code
        if mask.any() and str(name) != "UTC":
            hours[mask] = times[mask].tz_convert(zone(name)).hour.to_numpy()
    return hours
