"""Worker liveness: every worker process, and any other that claims work, has an id
and renews a heartbeat row (models.worker_heartbeat) from a thread of its own, so
a process that dies stops renewing within seconds, long before its claims' leases
run out.

The tick asks ``silent_workers`` who stopped, and the owners' packages release their
claims (sequencing.dead_workers); ``mark_released`` then records it, so a worker is
released once. A worker that was only paused (a stopped VM, a GC storm)
clears the mark with its next beat; its late outcomes land nowhere, as after an
expired lease, since the release moved its claims' ``claimed_until``.

A worker that stops cleanly says so (``mark_stopped``): silence without that mark
means it was killed, and may have died holding tasks it had taken from the broker
and not started, which its claims do not show.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import WorkerHeartbeat

log = logging.getLogger(__name__)

HEARTBEATS = WorkerHeartbeat.__table__


def new_worker_id() -> str:
    """hostname:pid:random: unique across hosts, and across a pid reused after a restart."""
    return f"{socket.gethostname()[:150]}:{os.getpid()}:{secrets.token_hex(4)}"


def beat(connection: Connection, worker_id: str, now: datetime) -> None:
    """Record that ``worker_id`` is alive at ``now`` (and no longer released). On a
    connection, not a session: the heartbeat thread commits on its own, apart from
    whatever sessions the process's tasks (or a test) are using."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(HEARTBEATS).values(worker_id=worker_id, started_at=now, beat_at=now, released_messages=0,
                                          released_enrollments=0)
    connection.execute(statement.on_conflict_do_update(
        index_elements=[HEARTBEATS.c.worker_id], set_={"beat_at": now, "released_at": None}))


def mark_stopped(connection: Connection, worker_id: str, now: datetime) -> None:
    """Record that ``worker_id`` stopped on its own, its heartbeat thread already
    ended: a warm shutdown finishes its tasks and gives back the ones it had not
    started (the broker's consumer returns them as it closes)."""
    connection.execute(update(HEARTBEATS).where(HEARTBEATS.c.worker_id == worker_id).values(stopped_at=now))


class Silent(NamedTuple):
    worker_id: str
    stopped: bool  # it said it was stopping (``mark_stopped``); else it was killed


def silent_workers(session: Session, now: datetime, dead_after: timedelta) -> list[Silent]:
    """Workers whose last beat is older than ``dead_after`` and whose claims were not
    yet released. The table holds a row per worker process, so this is cheap."""
    c = HEARTBEATS.c
    return [Silent(worker_id, stopped_at is not None) for worker_id, stopped_at in session.execute(
        select(c.worker_id, c.stopped_at).where(c.beat_at < now - dead_after, c.released_at.is_(None)))]


def workers_alive(session: Session, now: datetime, dead_after: timedelta) -> int:
    """Worker processes that beat within ``dead_after``: a read of this small table,
    so a page can show it without asking the broker (which may be down, or slow to
    gather every worker's answer to a broadcast)."""
    return int(session.scalar(select(func.count()).select_from(HEARTBEATS).where(
        HEARTBEATS.c.beat_at >= now - dead_after)) or 0)


def mark_released(session: Session, worker_id: str, now: datetime, messages: int, enrollments: int) -> None:
    c = HEARTBEATS.c
    session.execute(update(HEARTBEATS).where(c.worker_id == worker_id).values(
        released_at=now, released_messages=c.released_messages + messages,
        released_enrollments=c.released_enrollments + enrollments))


def forget_released(session: Session, before: datetime) -> int:
    """Drop rows of workers released before ``before``: gone for good by then."""
    return int(session.execute(HEARTBEATS.delete().where(HEARTBEATS.c.released_at < before)).rowcount)  # type: ignore[attr-defined]


class Heartbeat:
    """A daemon thread renewing one worker's row every ``interval``. The first beat
    is written by ``start`` itself, so a claim made after ``start`` always has a row
    to be judged by. A failed beat (the database restarting) is logged and tried
    again at the next interval: missing a few is what ``dead_after`` allows for."""

    def __init__(self, worker_id: str, interval: float, write: Callable[[str], None]) -> None:
        self.worker_id = worker_id
        self._interval = interval
        self._write = write
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eseq-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._write(self.worker_id)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self._interval + 1)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._write(self.worker_id)
            except Exception:  # noqa: BLE001 - the thread must outlive a database blip
                log.warning("heartbeat failed", extra={"worker_id": self.worker_id}, exc_info=True)
