"""Attribution answers served from a cache the analytics pool refreshes
(models.attribution_answer), so the endpoint answers in milliseconds for an
account with ten million events.

- An account with at most SYNC_LIMIT conversions (found by a
  probe that stops counting there) is computed live on every request, as of it.
- A larger one is answered from the stored answer to the same query, with its
  ``as_of``. An answer older than REFRESH is asked of the pool again (the row is
  marked ``queued`` for the caller to enqueue analytics.compute_attribution) while
  the request keeps serving it. Only a query never answered before is computed in
  the request (once; seconds) and stored, so the endpoint always answers 200.
- Answers nobody asked for again within FORGOTTEN are deleted by beat's refresh:
  the queries an account can ask are many, the ones it keeps asking few.

Nothing here commits; callers do.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from time import perf_counter
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from analytics import leases
from analytics.attribution import attribute, conversion_names, count_conversions
from models.attribution_answer import AttributionAnswer
from models.bulk import dialect_insert

SYNC_LIMIT = 1_000  # conversions: live costs about 50 µs each, so this keeps a live answer near 50 ms
REFRESH = timedelta(seconds=60)
LEASE = timedelta(minutes=6)
FORGOTTEN = timedelta(days=7)


@dataclass(frozen=True)
class AttributionQuery:
    """One question to attribution: what the endpoint's query string says."""
    model: str = "last_touch"
    window_days: int = 7
    touch: str = "sent"
    start: date | None = None  # conversions from this UTC day, inclusive
    end: date | None = None  # up to this UTC day, inclusive
    event: str | None = None

    def params(self) -> dict[str, Any]:
        return {**asdict(self), "start": _day(self.start), "end": _day(self.end)}

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> AttributionQuery:
        return cls(**{**params, "start": _parse_day(params["start"]), "end": _parse_day(params["end"])})

    def answer(self, session: Session, account_id: int, names: list[str] | None = None) -> dict[str, Any]:
        """Computed now, in the stored (JSON) form: revenue as exact decimal text,
        conversions rounded to six places."""
        start = datetime.combine(self.start, time(), timezone.utc) if self.start else None
        end = datetime.combine(self.end, time(), timezone.utc) + timedelta(days=1) if self.end else None
        return _jsonable(attribute(session, account_id, self.model, self.window_days, self.touch, start, end,
                                   self.event, names))


@dataclass(frozen=True)
class Served:
    answer: dict[str, Any]
    as_of: datetime
    ask: int | None  # the stored answer's id, when the caller should enqueue its recompute after committing


def serve(session: Session, account_id: int, query: AttributionQuery, now: datetime) -> Served:
    """The answer to ``query``: live when the account is small, else stored (see the module)."""
    key = query.key()
    row = session.scalar(select(AttributionAnswer).where(AttributionAnswer.account_id == account_id,
                                                         AttributionAnswer.key == key)
                         .execution_options(populate_existing=True))
    if row is not None:
        ask = row.computed_at < now - REFRESH and request(session, row.id, now)
        return Served(row.result, row.computed_at, row.id if ask else None)
    names = conversion_names(session, account_id, query.event)
    if count_conversions(session, account_id, names, SYNC_LIMIT + 1) <= SYNC_LIMIT:
        return Served(query.answer(session, account_id, names), now, None)
    return Served(store(session, account_id, query, now), now, None)


def request(session: Session, answer_id: int, now: datetime) -> bool:
    """Mark the answer wanted again (analytics.leases.request)."""
    return leases.request(session, AttributionAnswer, AttributionAnswer.id == answer_id, now)


def claim(session: Session, answer_id: int, now: datetime) -> bool:
    """Take the recompute for LEASE (analytics.leases.claim)."""
    return leases.claim(session, AttributionAnswer, AttributionAnswer.id == answer_id, now, LEASE)


def store(session: Session, account_id: int, query: AttributionQuery, now: datetime) -> dict[str, Any]:
    """Compute now and store the answer (a new row or over the old one): ``ready``."""
    started = perf_counter()
    answer = query.answer(session, account_id)
    values = {"status": "ready", "claimed_until": None, "computed_at": now, "error": None, "result": answer,
              "seconds": round(perf_counter() - started, 3)}
    insert = dialect_insert(session, AttributionAnswer).values(account_id=account_id, key=query.key(),
                                                               params=query.params(), requested_at=now, **values)
    session.execute(insert.on_conflict_do_update(index_elements=["account_id", "key"], set_=values))
    return answer


def recompute(session: Session, answer_id: int, now: datetime) -> bool:
    """The pool's recompute of a claimed answer; False when it is gone."""
    row = session.get(AttributionAnswer, answer_id)
    if row is None:
        return False
    store(session, row.account_id, AttributionQuery.from_params(row.params), now)
    return True


def fail(session: Session, answer_id: int, error: str) -> None:
    leases.fail(session, AttributionAnswer, AttributionAnswer.id == answer_id, error)


def waiting(session: Session, now: datetime) -> list[int]:
    """Answers asked for and not taken up (a broker that refused the task) or
    abandoned by a dead worker: for beat's refresh to hand on."""
    a = AttributionAnswer
    return list(session.scalars(select(a.id).where(leases.waiting(a, now)).order_by(a.id)))


def forget(session: Session, now: datetime) -> int:
    """Delete the answers nobody asked for within FORGOTTEN."""
    a = AttributionAnswer
    return int(session.execute(delete(a).where(a.requested_at < now - FORGOTTEN, a.status != "computing")).rowcount)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _parse_day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Fraction):
        return round(float(value), 6)
    return value
