"""Folding events into rollups: per sequence, step, variant, day and metric, the
messages with such an event (``uniques``), the events (``total``) and, for
conversions, their value (``revenue``).

Incremental: each account has a watermark, the (``xact``, ``id``) of its last
folded event, and a fold reads only the events after it. ``events.xact`` is the
inserting transaction's id on PostgreSQL (migration 0015): every transaction of
this database below the oldest one still running has ended, so the events under
that horizon are final and (xact, id) orders them for good, where ids alone are
not (a lower id can commit after a higher one was read). A long transaction in
this database holds the horizon back, and the freshness (``as_of``) with it. On SQLite writers are serialised, ids commit in
order, and xact is always 0.

Idempotent: a chunk's counts, its new "first of this metric for this message"
pairs and the moved watermark commit in one transaction, under a lock on the
account's watermark row. A worker killed mid-chunk commits none of it; a second
fold of the same account waits (or, for the beat's task, skips it) and then
starts after the first one's watermark. Counting is done in SQL, one statement per
stage per chunk, never a Python loop per event.

The same chunk folds the account's step transitions (analytics.flow) under the
same lock and horizon, with their own place in the watermark row.

Conversions (``settings.goal``): an event named as the goal, within
``within_days`` after an email of the sequence was sent to its subscriber, is a
conversion of the last such email sent before it (last touch; other models are
a later item), its ``value`` that email's revenue.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from analytics.flow import fold_transitions
from core.redispatch import timed_text
from models import Sequence
from models.bulk import dialect_insert
from models.rollup import RollupWatermark

# Message events counted once per message per metric (and in total).
COUNTED = ("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
CONVERTED = "converted"
CHUNK = 50_000
# SQLite: no concurrent writers, every committed event is final.
NO_HORIZON = 2**62
# "First of this metric for this message" pairs are kept for messages younger than
# this (longer than a goal's longest window, 365 days); analytics.firsts drops older
# ones. An event of a message older than this counts in ``total`` (and revenue),
# never in ``uniques``: its first was counted when it was young, or is given up.
FIRSTS_DAYS = 400


@dataclass(frozen=True)
class Fold:
    """One chunk's outcome: events read, and whether the account is caught up
    (with its events and its step transitions, analytics.flow)."""
    events: int
    caught_up: bool
    transitions: int = 0


def _day(dialect: str, column: str) -> str:
    return f"(({column}) AT TIME ZONE 'UTC')::date" if dialect == "postgresql" else f"date({column})"


def _days_shifted(dialect: str, column: str, param: str, sign: str) -> str:
    if dialect == "postgresql":
        return f"({column} {sign} make_interval(days => :{param}))"
    return f"strftime('%Y-%m-%d %H:%M:%f', {column}, '{sign}' || :{param} || ' days')"


def _days_before(dialect: str, column: str, param: str) -> str:
    return _days_shifted(dialect, column, param, "-")


def days_after(dialect: str, column: str, param: str) -> str:
    """SQL of ``column`` plus ``:param`` days, on either backend."""
    return _days_shifted(dialect, column, param, "+")


def event_horizon(session: Session, dialect: str, now: datetime) -> tuple[int, datetime]:
    """The xact below which every event is final, and the moment before which every
    committed event lies below it.

    Transaction ids are the cluster's, but only this database's transactions can
    write its events: the horizon is the oldest of those still running, from the
    snapshot's in-progress ids, so a long transaction in another database on the
    same server delays nothing. The snapshot is read first, then the activity: a
    transaction of ours in the snapshot is either still listed or has ended (and is
    final). An event's transaction that committed before the oldest running one of
    ours started got its id before that one's, hence below the horizon."""
    if dialect != "postgresql":
        return NO_HORIZON, now
    snapshot = session.execute(text("SELECT pg_current_snapshot()::text")).scalar_one()
    xmin, xmax, xip = snapshot.split(":")
    running = {int(x) for x in xip.split(",") if x}
    ours = session.execute(text(
        "SELECT backend_xid::text::bigint, xact_start, query = '<insufficient privilege>' FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND (backend_xid IS NOT NULL OR query = '<insufficient privilege>')")).all()
    if any(hidden for _, _, hidden in ours):
        # Another role's sessions hide their transactions: the cluster's oldest it is
        # (as_of is then only as good as that role's transactions are short).
        return int(xmin), now
    low32 = {int(xid): started for xid, started, _ in ours}
    held = [(x, low32[x & 0xFFFFFFFF]) for x in running if x & 0xFFFFFFFF in low32]
    if not held:
        return int(xmax), now
    return min(x for x, _ in held), min([now] + [started for _, started in held if started is not None])


def _lock_watermark(session: Session, account_id: int, wait: bool) -> tuple[int, int] | None:
    """The account's (xact, event id) watermark, locked for this transaction; None
    when ``wait`` is false and another fold holds it."""
    session.execute(dialect_insert(session, RollupWatermark).values(
        account_id=account_id, xact=0, event_id=0, folded=0).on_conflict_do_nothing())
    query = select(RollupWatermark.xact, RollupWatermark.event_id).where(RollupWatermark.account_id == account_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=not wait)
    row = session.execute(query).first()
    return (int(row.xact), int(row.event_id)) if row is not None else None


def _goals(session: Session, account_id: int) -> list[tuple[int, str, int]]:
    """(sequence id, goal event, within days) of the account's sequences that have a goal."""
    goals = []
    for sequence_id, settings in session.execute(
            select(Sequence.id, Sequence.settings).where(Sequence.account_id == account_id)):
        goal = (settings or {}).get("goal")
        if isinstance(goal, dict) and goal.get("event"):
            goals.append((sequence_id, str(goal["event"]), int(goal.get("within_days") or 7)))
    return goals


def fold_chunk(session: Session, account_id: int, now: datetime, limit: int = CHUNK, wait: bool = True) -> Fold | None:
    """Fold the account's next ``limit`` final events into the rollups, in the
    caller's transaction (which must not have written yet: the horizon is read
    first). None when ``wait`` is false and another fold holds the account."""
    dialect = session.get_bind().dialect.name
    horizon, as_of = event_horizon(session, dialect, now)
    mark = _lock_watermark(session, account_id, wait)
    if mark is None:
        return None
    flow = fold_transitions(session, account_id, horizon, _day(dialect, "occurred_at"), limit)
    window = {"account": account_id, "xact": mark[0], "id": mark[1], "horizon": horizon, "limit": limit}
    after_mark = "account_id = :account AND (xact, id) > (:xact, :id) AND xact < :horizon"
    if not session.execute(text(f"SELECT EXISTS (SELECT 1 FROM events WHERE {after_mark})"), window).scalar():
        # Caught up: an index probe, no temporary tables (catalog churn on every read).
        session.execute(timed_text("UPDATE rollup_watermarks SET as_of = :as_of WHERE account_id = :account", "as_of"),
                        {"as_of": as_of, "account": account_id})
        return Fold(0, flow.caught_up, flow.transitions)
    temp = "CREATE TEMP TABLE {name} ON COMMIT DROP AS" if dialect == "postgresql" else "CREATE TEMP TABLE {name} AS"
    if dialect != "postgresql":
        for name in ("fold_chunk", "fold_rows", "fold_new"):
            session.execute(text(f"DROP TABLE IF EXISTS temp.{name}"))
    session.execute(text(
        temp.format(name="fold_chunk") + " SELECT id, xact, message_id, subscriber_id, name, value, occurred_at"
        f" FROM events WHERE {after_mark} ORDER BY xact, id LIMIT :limit"), window)
    last = session.execute(text("SELECT xact, id, (SELECT count(*) FROM fold_chunk) FROM fold_chunk"
                                " ORDER BY xact DESC, id DESC LIMIT 1")).one()
    day = _day(dialect, "c.occurred_at")
    counted = ", ".join(f"'{name}'" for name in COUNTED)
    session.execute(text(
        temp.format(name="fold_rows") + " SELECT c.message_id, c.name AS metric, m.sequence_id,"
        f" coalesce(m.step_id, 0) AS step_id, coalesce(m.variant, '') AS variant, {day} AS day,"
        " 0.0 AS value, m.created_at AS message_at FROM fold_chunk c JOIN messages m ON m.id = c.message_id AND m.account_id = :account"
        f" WHERE c.name IN ({counted}) AND m.sequence_id IS NOT NULL"), {"account": account_id})
    for sequence_id, event, within_days in _goals(session, account_id):
        session.execute(text(
            "INSERT INTO fold_rows (message_id, metric, sequence_id, step_id, variant, day, value, message_at)"
            f" SELECT m.id, '{CONVERTED}', m.sequence_id, coalesce(m.step_id, 0), coalesce(m.variant, ''),"
            f" t.day, t.value, m.created_at FROM (SELECT {day} AS day, coalesce(c.value, 0.0) AS value, ("
            "   SELECT m.id FROM messages m WHERE m.subscriber_id = c.subscriber_id AND m.sequence_id = :sequence"
            "   AND m.status = 'sent' AND m.sent_at <= c.occurred_at"
            f"  AND m.sent_at >= {_days_before(dialect, 'c.occurred_at', 'within')}"
            "   ORDER BY m.sent_at DESC, m.id DESC LIMIT 1) AS message_id"
            "  FROM fold_chunk c WHERE c.name = :event AND c.subscriber_id IS NOT NULL) t"
            " JOIN messages m ON m.id = t.message_id"),
            {"sequence": sequence_id, "event": event, "within": within_days})
    session.execute(timed_text(
        temp.format(name="fold_new") + " SELECT r.message_id, r.metric, min(r.sequence_id) AS sequence_id,"
        " min(r.step_id) AS step_id, min(r.variant) AS variant, min(r.day) AS day FROM fold_rows r"
        " WHERE r.message_at >= :young AND NOT EXISTS"
        "  (SELECT 1 FROM rollup_firsts f WHERE f.message_id = r.message_id AND f.metric = r.metric)"
        " GROUP BY r.message_id, r.metric", "young"), {"young": now - timedelta(days=FIRSTS_DAYS)})
    # A plain insert: the watermark's lock makes a conflict impossible, and one
    # would mean a double count, which must fail loudly rather than be skipped.
    session.execute(text("INSERT INTO rollup_firsts (message_id, metric) SELECT message_id, metric FROM fold_new"))
    session.execute(text(
        "INSERT INTO sequence_rollups (account_id, sequence_id, step_id, variant, day, metric, uniques, total, revenue)"
        " SELECT :account, sequence_id, step_id, variant, day, metric, sum(uniques), sum(total), sum(revenue) FROM ("
        "  SELECT sequence_id, step_id, variant, day, metric, 0 AS uniques, count(*) AS total, sum(value) AS revenue"
        "  FROM fold_rows GROUP BY sequence_id, step_id, variant, day, metric"
        "  UNION ALL SELECT sequence_id, step_id, variant, day, metric, count(*), 0, 0.0"
        "  FROM fold_new GROUP BY sequence_id, step_id, variant, day, metric) t"
        " WHERE true GROUP BY sequence_id, step_id, variant, day, metric"
        " ON CONFLICT (sequence_id, step_id, variant, day, metric) DO UPDATE SET"
        " uniques = sequence_rollups.uniques + excluded.uniques, total = sequence_rollups.total + excluded.total,"
        " revenue = sequence_rollups.revenue + excluded.revenue"), {"account": account_id})
    events = int(last[2])
    caught_up = events < limit
    session.execute(timed_text(
        "UPDATE rollup_watermarks SET xact = :xact, event_id = :id, folded = folded + :events"
        + (", as_of = :as_of" if caught_up else "") + " WHERE account_id = :account",
        *(["as_of"] if caught_up else [])),
        {"xact": last[0], "id": last[1], "events": events, "as_of": as_of, "account": account_id})
    if dialect != "postgresql":
        for name in ("fold_chunk", "fold_rows", "fold_new"):
            session.execute(text(f"DROP TABLE temp.{name}"))
    return Fold(events, caught_up and flow.caught_up, flow.transitions)


def accounts_with_new_events(session: Session) -> list[int]:
    """Accounts with events or step transitions past their watermark (index probes): the ones
    beat's fold hands on. A caught-up account is left alone, so an idle one costs
    no write every run; its ``as_of`` moves when it is read (experiment_results.catch_up)."""
    return list(session.scalars(text(
        "SELECT a.id FROM accounts a LEFT JOIN rollup_watermarks w ON w.account_id = a.id WHERE EXISTS"
        " (SELECT 1 FROM events e WHERE e.account_id = a.id"
        "  AND (e.xact, e.id) > (coalesce(w.xact, 0), coalesce(w.event_id, 0)))"
        " OR EXISTS (SELECT 1 FROM step_transitions t WHERE t.account_id = a.id"
        "  AND (t.xact, t.id) > (coalesce(w.flow_xact, 0), coalesce(w.flow_id, 0))) ORDER BY a.id")))


def watermark(session: Session, account_id: int) -> dict[str, Any] | None:
    row = session.execute(select(RollupWatermark.as_of, RollupWatermark.folded)
                          .where(RollupWatermark.account_id == account_id)).first()
    return {"as_of": row.as_of, "folded": int(row.folded)} if row is not None else None
