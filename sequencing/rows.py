"""A batch's enrollments and subscribers as plain rows: read with Core, changed by
the step handlers in memory, written back with one statement per set of changed
columns.

Why not ORM objects: loading 400 of them per batch of 200 and flushing 200
enrollment UPDATEs through the unit of work was most of an advance's CPU (about
1 ms an email). The ORM's rule is kept: only columns whose value changed are
written, so a stale copy never overwrites what another writer (a pause, a wake-up)
committed to a column this advance did not touch.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Any, ClassVar

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from models import Enrollment, Subscriber
from models.base import utcnow
from models.bulk import update_rows


def _changes(names: tuple[str, ...], now: tuple[Any, ...], loaded: tuple[Any, ...]) -> dict[str, Any]:
    """Columns whose value differs from what was loaded (compared by value, as the
    ORM compares; handlers replace ``state`` dicts rather than mutate them)."""
    if now == loaded:
        return {}
    return {name: value for name, value, old in zip(names, now, loaded, strict=True) if value != old}


class _Tracked:
    """Change tracking shared by the row types: the ``WRITABLE`` columns as loaded
    (or last written), so ``changes()`` names only what the walk changed since."""

    __slots__ = ()
    WRITABLE: ClassVar[tuple[str, ...]]
    _writable: ClassVar[Callable[[Any], tuple[Any, ...]]]
    _loaded: tuple[Any, ...]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A plain attribute, not a method (``self._writable(self)``): one C call per row.
        cls._writable = attrgetter(*cls.WRITABLE)

    def __post_init__(self) -> None:
        self._loaded = self._writable(self)

    def changes(self) -> dict[str, Any]:
        return _changes(self.WRITABLE, self._writable(self), self._loaded)

    def written(self) -> None:
        self._loaded = self._writable(self)


@dataclass(slots=True, eq=False)
class EnrollmentRow(_Tracked):
    """One enrollment as the engine walks it (the columns of ``enrollments`` it uses)."""

    WRITABLE: ClassVar[tuple[str, ...]] = ("status", "current_step", "next_run_at", "claimed_until", "claimed_by", "state",
                                           "exit_reason", "completed_at", "crashes", "error")

    id: int
    account_id: int
    sequence_id: int
    subscriber_id: int
    instance_key: str
    status: str
    current_step: int
    next_run_at: datetime | None
    claimed_until: datetime | None
    claimed_by: str | None
    state: dict[str, Any]
    exit_reason: str | None
    enrolled_at: datetime
    completed_at: datetime | None
    crashes: int
    error: str | None
    held_out: bool  # read only: drawn at enrollment (sequencing.holdout)
    _loaded: tuple[Any, ...] = field(init=False, repr=False)


@dataclass(slots=True, eq=False)
class SubscriberRow(_Tracked):
    """One subscriber as handlers see it; actions may change its tags and attributes."""

    WRITABLE: ClassVar[tuple[str, ...]] = ("tags", "attributes")

    id: int
    account_id: int
    email: str
    first_name: str | None
    last_name: str | None
    timezone: str | None
    status: str
    attributes: dict[str, Any]
    tags: list[str]
    _loaded: tuple[Any, ...] = field(init=False, repr=False)


def _columns(model: Any, row_type: Any) -> list[Any]:
    table = model.__table__
    return [table.c[f.name] for f in fields(row_type) if f.init]


# Built once: the ``ids`` list expands at execution, so the compiled form is cached.
_ENROLLMENTS: Select[Any] = (select(*_columns(Enrollment, EnrollmentRow))
                             .where(Enrollment.__table__.c.id.in_(bindparam("ids", expanding=True)))
                             .order_by(Enrollment.__table__.c.id))
_SUBSCRIBERS: Select[Any] = (select(*_columns(Subscriber, SubscriberRow))
                             .where(Subscriber.__table__.c.id.in_(bindparam("ids", expanding=True))))


def load_enrollments(session: Session, ids: list[int]) -> list[EnrollmentRow]:
    """The enrollments with these ids, in id order."""
    return [EnrollmentRow(*row) for row in session.execute(_ENROLLMENTS, {"ids": list(ids)})] if ids else []


def load_subscribers(session: Session, ids: set[int]) -> dict[int, SubscriberRow]:
    """One row per subscriber, shared by all of its enrollments in the batch, so an
    action in one is seen by the next, as with the ORM's identity map."""
    if not ids:
        return {}
    return {row.id: row for row in (SubscriberRow(*r) for r in session.execute(_SUBSCRIBERS, {"ids": list(ids)}))}


def write_back(session: Session, enrollments: list[EnrollmentRow], subscribers: dict[int, SubscriberRow]) -> None:
    """Write what the walk changed so far (``updated_at`` as the ORM's ``onupdate``
    sets it); a later call writes only what changed after this one."""
    also = {"updated_at": utcnow()}
    update_rows(session, Subscriber.__table__, {s.id: s.changes() for s in subscribers.values()}, also)
    update_rows(session, Enrollment.__table__, {e.id: e.changes() for e in enrollments}, also)
    for row in (*subscribers.values(), *enrollments):
        row.written()
