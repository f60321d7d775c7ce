"""Retention: how long raw events, message bodies and providers' raw events are
kept, per account, and the pruning that enforces it (docs/operations.md#retention).

What "pruned" means, per table:

- ``events``: deleted. On PostgreSQL a whole month's partition is dropped once
  every account with rows in it is past its retention for that month and has
  folded them (analytics.event_partitions); an account keeping less than the
  others has its rows deleted in batches from the months that stay. Their dedup
  keys (``event_keys``) go too, so a replay of an event older than the retention
  is taken as new (it is past every use of the key).
- ``messages``: the row stays (counts, attribution, the sent history read it), its
  body goes: ``subject``, ``error`` and the content a message carries in ``meta``
  (a confirmation's html/text/subject) are cleared, for settled messages only.
- ``inbound_events``: deleted once processed (a ``pending`` one is never).
- Rollups (``sequence_rollups``, step flow) are kept forever.

Never an event the rollups have not folded: only events at or under the account's
watermark (``rollup_watermarks``, analytics.rollups) are deleted, and a month is
dropped only when no account has an unfolded event in it. So a stalled fold holds
pruning back instead of losing counts.

Small steps: each call below does one batch (``BATCH`` rows) in the caller's
transaction, which the caller commits before the next, so no lock is held for
long and a run stopped by its time budget resumes where it was on the next one.
A run shares its budget across accounts (``in_turns``), so one account's backlog
does not hold the others back.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from analytics.event_partitions import DEFAULT, Partition, drop_partition, is_partitioned, month_partitions
from analytics.firsts import first_message_at_or_after
from core.redispatch import timed_text
from models.bulk import dialect_insert
from models.retention import RetentionProgress

# Rows per statement: each batch is its own short transaction.
BATCH = 5_000
# Days, per kind, by default and at least / at most (the accounts API refuses others).
DEFAULTS = {"events": 400, "bodies": 30, "inbound": 30}
MIN_DAYS = {"events": 7, "bodies": 1, "inbound": 1}
MAX_DAYS = 3650
# Keys of a message's ``meta`` that are its content (audience.opt_in's confirmations).
BODY_KEYS = ("html", "text", "subject")


@dataclass(frozen=True)
class Retention:
    """One account's periods and its rollups' watermark (events at or under it are folded)."""

    account_id: int
    events_days: int
    bodies_days: int
    inbound_days: int
    xact: int
    event_id: int

    def cutoff(self, kind: str, now: datetime) -> datetime:
        return now - timedelta(days={"events": self.events_days, "bodies": self.bodies_days,
                                     "inbound": self.inbound_days}[kind])


@dataclass(frozen=True)
class Step:
    """One piece of pruning, done a batch at a time by ``run_step`` until it returns
    fewer than the batch. ``table`` is the partition (or events) for event steps."""

    kind: str  # events, event_keys, bodies, inbound, drop_partition
    account_id: int | None
    cutoff: datetime
    table: str = ""
    below: int = 0  # bodies: messages with a lower id are older than the cutoff


def retentions(session: Session) -> list[Retention]:
    return [Retention(*row) for row in session.execute(text(
        "SELECT a.id, a.retention_events_days, a.retention_bodies_days, a.retention_inbound_days,"
        " coalesce(w.xact, 0), coalesce(w.event_id, 0) FROM accounts a"
        " LEFT JOIN rollup_watermarks w ON w.account_id = a.id ORDER BY a.id"))]


def _has_rows(session: Session, table: str, account: Retention, unfolded: bool = False) -> bool:
    folded = " AND (xact, id) > (:xact, :id)" if unfolded else ""
    return bool(session.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE account_id = :account{folded})"),
                                {"account": account.account_id, "xact": account.xact, "id": account.event_id}).scalar())


def expired_partitions(session: Session, partitions: list[Partition], accounts: list[Retention],
                       now: datetime) -> list[Partition]:
    """Of ``partitions`` (oldest first), the months every account with rows in them
    is done with: past its retention, and folded."""
    expired = []
    for partition in partitions:
        if partition.end > now - timedelta(days=MIN_DAYS["events"]):
            break
        present = [a for a in accounts if _has_rows(session, partition.name, a)]
        if not present and partition.end > now - timedelta(days=DEFAULTS["events"]):
            continue  # an empty recent month stays, for late events (imports) to land in
        if all(partition.end <= a.cutoff("events", now) and not _has_rows(session, partition.name, a, unfolded=True)
               for a in present):
            expired.append(partition)
    return expired


def plan(session: Session, now: datetime) -> list[Step]:
    """This run's steps: whole months to drop first, then per account the batches
    of rows past its retention."""
    accounts = retentions(session)
    partitions = month_partitions(session)
    expired = expired_partitions(session, partitions, accounts, now)
    steps = [Step("drop_partition", None, p.end, p.name) for p in expired]
    if is_partitioned(session):
        tables = [(p.name, p.start) for p in partitions if p not in expired] + [(DEFAULT, None)]
    else:
        tables = [("events", None)]
    first_young: dict[datetime, int] = {}  # the bodies' cutoff id, by cutoff (most accounts share one)
    unsettled = first_unsettled(session)
    for account in accounts:
        cutoff = account.cutoff("events", now)
        steps += [Step("events", account.account_id, cutoff, table) for table, start in tables
                  if start is None or start < cutoff]
        steps.append(Step("event_keys", account.account_id, cutoff))
        bodies = account.cutoff("bodies", now)
        if bodies not in first_young:
            first_young[bodies] = first_message_at_or_after(session, bodies) or 0
        below = min(first_young[bodies], unsettled.get(account.account_id, first_young[bodies]))
        steps.append(Step("bodies", account.account_id, bodies, below=below))
        steps.append(Step("inbound", account.account_id, account.cutoff("inbound", now)))
    # The environment-configured webhook endpoint's events belong to no account.
    steps.append(Step("inbound", None, now - timedelta(days=DEFAULTS["inbound"])))
    return steps


def run_step(session: Session, step: Step, batch: int = BATCH) -> int:
    """One batch of ``step`` in the caller's transaction: the rows pruned (for a
    partition, 1 when dropped); fewer than ``batch`` means the step is done."""
    if step.kind == "drop_partition":
        return int(drop_partition(session, Partition(step.table, step.cutoff, step.cutoff)))
    if step.kind == "events":
        return _delete_events(session, step, batch)
    if step.kind == "event_keys":
        return _delete_keys(session, step, batch)
    if step.kind == "bodies":
        return _prune_bodies(session, step, batch)
    return _delete_inbound(session, step, batch)


def in_turns(steps: list[Step], run_batch: Callable[[Step], int], out_of_time: Callable[[], bool],
             batch: int = BATCH, start: int = 0) -> dict[str, int]:
    """Rows pruned by kind: the plan's steps run until done or ``out_of_time``,
    ``run_batch`` doing one batch of a step in a transaction of its own. The month
    drops go first; then the accounts take turns, from the ``start``-th on (the
    task starts at a random one, so the same account does not always go first when
    the budget ends in the first round). A turn runs the account's steps in order
    until one batch comes back full: the account has more to do, and its next turn
    goes on from there, after every other account's."""
    pruned: dict[str, int] = {}

    def one(step: Step) -> int:
        done = run_batch(step)
        pruned[step.kind] = pruned.get(step.kind, 0) + done
        return done

    queues: dict[int | None, deque[Step]] = {}
    for step in steps:
        if step.kind == "drop_partition":
            if out_of_time():
                return pruned
            one(step)
        else:
            queues.setdefault(step.account_id, deque()).append(step)
    owners = list(queues)
    turns = deque(owners[start % len(owners):] + owners[:start % len(owners)] if owners else [])
    while turns and not out_of_time():
        queue = queues[turns.popleft()]
        while queue and not out_of_time():
            if one(queue[0]) >= batch:
                break
            queue.popleft()
        if queue:
            turns.append(queue[0].account_id)
    return pruned


def _folded_window(session: Session, step: Step, batch: int) -> dict[str, object]:
    """A batch's parameters: the account, the cutoff, and its rollups' watermark read
    afresh (it only moves forward, so a newer one never frees an unfolded event)."""
    row = session.execute(text("SELECT xact, event_id FROM rollup_watermarks WHERE account_id = :account"),
                          {"account": step.account_id}).first()
    return {"account": step.account_id, "cutoff": step.cutoff, "xact": int(row.xact) if row else 0,
            "id": int(row.event_id) if row else 0, "limit": batch}


def _delete_events(session: Session, step: Step, batch: int) -> int:
    """Events of the account older than the cutoff and folded."""
    params = _folded_window(session, step, batch)
    # In the order of ix_events_account_xact (account_id, xact, id): the batch is read
    # from that index, each next one skipping the entries the last one left dead,
    # where a sequential scan would pass over every earlier batch's dead rows again.
    chosen = (f"SELECT {{key}} FROM {step.table} WHERE account_id = :account AND occurred_at < :cutoff"
              " AND (xact, id) <= (:xact, :id) ORDER BY xact, id LIMIT :limit")
    if is_partitioned(session):
        statement = f"DELETE FROM {step.table} WHERE ctid = ANY(ARRAY({chosen.format(key='ctid')}))"
    else:
        statement = f"DELETE FROM {step.table} WHERE id IN ({chosen.format(key='id')})"
    return int(session.execute(timed_text(statement, "cutoff"), params).rowcount or 0)


def _delete_keys(session: Session, step: Step, batch: int) -> int:
    """Dedup keys older than the cutoff, unless an unfolded event that old is still
    kept (its key must then stay, or a replay would add it twice)."""
    params = _folded_window(session, step, batch)
    if session.execute(timed_text(
            "SELECT EXISTS (SELECT 1 FROM events WHERE account_id = :account AND (xact, id) > (:xact, :id)"
            " AND occurred_at < :cutoff)", "cutoff"), params).scalar():
        return 0
    return int(session.execute(timed_text(
        "DELETE FROM event_keys WHERE dedup_key IN (SELECT dedup_key FROM event_keys WHERE account_id = :account"
        " AND occurred_at < :cutoff LIMIT :limit)", "cutoff"), params).rowcount or 0)


def first_unsettled(session: Session) -> dict[int, int]:
    """Per account, its lowest unsettled message id past its progress mark: the
    bodies' steps stop before it. Read once a run from ix_messages_unsettled (only
    the unsettled rows), where asking each batch made PostgreSQL walk the primary
    key over every settled row after the mark (0.5 s a batch at 2M messages).
    Settled is final, so a bound read at the plan can only be lower than the
    current one: safe, and the next run moves past a message settled meanwhile."""
    return {int(account): int(first) for account, first in session.execute(text(
        "SELECT m.account_id, min(m.id) FROM messages m"
        " LEFT JOIN retention_progress p ON p.account_id = m.account_id"
        " WHERE NOT m.settled AND m.id > coalesce(p.messages_through, 0) GROUP BY m.account_id"))}


def _prune_bodies(session: Session, step: Step, batch: int) -> int:
    """Clear the bodies of the account's next messages older than the cutoff, after
    its progress mark, up to ``step.below``: the plan stops it before the first
    unsettled one (its sending may still need them) until a later run sees it settled."""
    through = session.execute(text("SELECT messages_through FROM retention_progress WHERE account_id = :account"),
                              {"account": step.account_id}).scalar() or 0
    window = {"account": step.account_id, "through": through, "below": step.below, "limit": batch}
    ids = list(session.scalars(text(
        "SELECT id FROM messages WHERE account_id = :account AND id > :through AND id < :below"
        " ORDER BY id LIMIT :limit"), window))
    if not ids:
        if through < step.below - 1:
            _mark(session, step.account_id, step.below - 1)
        return 0
    if session.get_bind().dialect.name == "postgresql":
        content = "meta - " + " - ".join(f"'{key}'" for key in BODY_KEYS)
        match = "id = ANY(CAST(:ids AS integer[]))"
        params: dict[str, object] = {"ids": ids}
    else:
        content = "json_remove(meta, " + ", ".join(f"'$.{key}'" for key in BODY_KEYS) + ")"
        match = f"id IN ({', '.join(str(int(i)) for i in ids)})"
        params = {}
    session.execute(text(f"UPDATE messages SET subject = NULL, error = NULL, meta = {content} WHERE {match}"), params)
    _mark(session, step.account_id, ids[-1] if len(ids) == batch else step.below - 1)
    return len(ids)


def _mark(session: Session, account_id: int | None, through: int) -> None:
    session.execute(dialect_insert(session, RetentionProgress).values(account_id=account_id, messages_through=through)
                    .on_conflict_do_update(index_elements=["account_id"], set_={"messages_through": through}))


def _delete_inbound(session: Session, step: Step, batch: int) -> int:
    owner = "account_id = :account" if step.account_id is not None else "account_id IS NULL"
    return int(session.execute(timed_text(
        f"DELETE FROM inbound_events WHERE id IN (SELECT id FROM inbound_events WHERE {owner}"
        " AND received_at < :cutoff AND status <> 'pending' LIMIT :limit)", "cutoff"),
        {"account": step.account_id, "cutoff": step.cutoff, "limit": batch}).rowcount or 0)
