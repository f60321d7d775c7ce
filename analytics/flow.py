"""Folding step transitions (core.flow) into ``step_flow_rollups``: per sequence,
position, day and kind, the number of enrollments that made that move.

The fold runs inside ``analytics.rollups.fold_chunk``, in its transaction, under
its lock on the account's watermark row and below its ``xact`` horizon: the same
discipline as for events, with the transitions' own place in the same row
(``flow_xact``, ``flow_id``). A chunk's counts and its moved watermark commit
together or not at all, so a rerun, a killed worker or two folds at once never
count a transition twice or miss one.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

# The transitions past the account's flow watermark and below the horizon, in order.
_AFTER_MARK = ("account_id = :account AND (xact, id) > (:xact, :id) AND xact < :horizon")


@dataclass(frozen=True)
class FlowFold:
    transitions: int
    caught_up: bool


def fold_transitions(session: Session, account_id: int, horizon: int, day: str, limit: int) -> FlowFold:
    """Fold the account's next ``limit`` final transition rows. The caller holds the
    lock on the account's watermark row; ``day`` is the SQL of ``occurred_at``'s day."""
    mark = session.execute(text("SELECT flow_xact, flow_id FROM rollup_watermarks WHERE account_id = :account"),
                           {"account": account_id}).one()
    window = {"account": account_id, "xact": mark.flow_xact, "id": mark.flow_id, "horizon": horizon, "limit": limit}
    last = session.execute(text(
        "SELECT xact, id, n FROM (SELECT xact, id, count(*) OVER () AS n FROM (SELECT xact, id FROM step_transitions"
        f" WHERE {_AFTER_MARK} ORDER BY xact, id LIMIT :limit) c) t ORDER BY xact DESC, id DESC LIMIT 1"),
        window).first()
    if last is None:
        return FlowFold(0, True)
    chunk = {**window, "last_xact": last.xact, "last_id": last.id}
    session.execute(text(
        "INSERT INTO step_flow_rollups (account_id, sequence_id, position, day, kind, n)"
        f" SELECT :account, sequence_id, position, {day} AS day, kind, sum(n) FROM step_transitions"
        f" WHERE {_AFTER_MARK} AND (xact, id) <= (:last_xact, :last_id)"
        " GROUP BY sequence_id, position, day, kind"
        " ON CONFLICT (sequence_id, position, day, kind) DO UPDATE SET n = step_flow_rollups.n + excluded.n"),
        chunk)
    session.execute(text("UPDATE rollup_watermarks SET flow_xact = :last_xact, flow_id = :last_id"
                         " WHERE account_id = :account"), chunk)
    return FlowFold(int(last.n), int(last.n) < limit)
