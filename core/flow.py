"""Recording step transitions (the funnel's raw material, ``step_transitions``).

Whatever moves an enrollment onto a step or off it (the engine's advance, an
enrollment's creation, an unsubscribe, an erasure, a sequence edit that clamps
positions) counts the move here and writes the counts in its own transaction, in
one INSERT: a rolled-back or killed transaction records nothing, a committed one
records its moves once. Rows are counts per (sequence, position, kind), never
per enrollment and never updated in place, so parallel advances do not contend
for a row. analytics.flow folds them; analytics.funnel reads them.

Kinds: ``entered`` a step, ``passed`` it (went on, or jumped by a branch),
left at it by the ``goal``, by an ``exit`` (a condition's exit branch or an exit
action), ``left`` (the subscriber unsubscribed, bounced, complained or was
erased), ``failed`` there, ``completed`` (at position len(steps)), or was
``moved`` off it by an edit that removed its step. An enrollment waits at a step
it entered and has not left by any of these.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy.orm import Session

from models.bulk import insert_rows_returning
from models.flow import StepTransition

KINDS = ("entered", "passed", "goal", "exit", "left", "failed", "completed", "moved")
# What an ``exited`` enrollment's reason says about who ended it.
SUBSCRIBER_LEFT = ("unsubscribed", "bounced", "complained")


def ending_kind(status: str, reason: str | None) -> str:
    """The kind of transition that ends an enrollment with this status and reason."""
    if status != "exited":
        return status  # completed, failed
    reason = reason or ""
    if reason.startswith("goal:"):
        return "goal"
    return "left" if reason in SUBSCRIBER_LEFT or reason.startswith("subscriber_") else "exit"


class FlowLog:
    """A transaction's transitions, counted in memory and written at once."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: Counter[tuple[int, int, int, str]] = Counter()

    def add(self, account_id: int, sequence_id: int, position: int, kind: str, n: int = 1) -> None:
        self.counts[account_id, sequence_id, position, kind] += n

    def write(self, session: Session, now: datetime) -> None:
        """One INSERT of everything counted so far; the log is empty after it."""
        if not self.counts:
            return
        rows = [{"account_id": a, "sequence_id": s, "position": p, "kind": k, "n": n, "occurred_at": now}
                for (a, s, p, k), n in self.counts.items() if n]
        self.counts.clear()
        insert_rows_returning(session, StepTransition.__table__, rows)


def record(session: Session, moves: list[tuple[int, int, int, str, int]], now: datetime) -> None:
    """Write (account, sequence, position, kind, n) moves made outside the engine."""
    log = FlowLog()
    for account_id, sequence_id, position, kind, n in moves:
        log.add(account_id, sequence_id, position, kind, n)
    log.write(session, now)
