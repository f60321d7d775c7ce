"""This process's worker id and heartbeat (core.liveness). A worker process starts
beating as it starts (tasks.app), so one killed before its first claim is noticed
too, and any other process that claims starts it with its first claim. A prefork
child, which inherits its parent's module state but not its threads, gets an id
and a heartbeat thread of its own (the pid tells it apart from its parent)."""
from __future__ import annotations

import logging
import os
import threading

from core.liveness import Heartbeat, beat, mark_stopped, new_worker_id
from models.base import utcnow
from models import db
from settings import get_settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_heartbeat: Heartbeat | None = None
_pid = 0


def _write(worker_id: str) -> None:
    # One statement, safe to repeat, on the autocommit pool: not the main pool,
    # which busy send threads may hold whole for longer than a beat may wait, nor
    # the session factory, which a test may have bound to its rolled-back transaction.
    with db.autocommit_scope() as session:
        beat(session.connection(), worker_id, utcnow())


def worker_owner() -> str:
    """The id this process's claims carry; its heartbeat is running once this returns."""
    global _heartbeat, _pid
    with _lock:
        if _heartbeat is None or _pid != os.getpid():
            interval = max(get_settings().worker_dead_after_seconds / 5, 0.2)
            _heartbeat = Heartbeat(new_worker_id(), interval, _write).start()
            _pid = os.getpid()
        return _heartbeat.worker_id


def start_heartbeat() -> None:
    """Beat from now on (a worker process starting). A database that cannot be
    reached yet is not fatal: the first claim tries again."""
    try:
        worker_owner()
    except Exception:  # noqa: BLE001 - a worker must start even while the database restarts
        log.warning("could not start the heartbeat", exc_info=True)


def stop_heartbeat() -> None:
    """Stop this process's heartbeat and mark its row stopped: a worker shutting down
    (tasks.app's shutdown signals) or an in-process worker stopping (the suite's
    own); the next claim starts a new one under a new id. Without the mark the tick
    takes the silence for a kill (sequencing.dead_workers.Released.died)."""
    global _heartbeat
    with _lock:
        heartbeat, _heartbeat = _heartbeat, None
        if heartbeat is None or _pid != os.getpid():
            return
        heartbeat.stop()
        try:
            with db.autocommit_scope() as session:
                mark_stopped(session.connection(), heartbeat.worker_id, utcnow())
        except Exception:  # noqa: BLE001 - unmarked, the stop only costs a re-dispatch
            log.warning("could not mark the worker stopped", extra={"worker_id": heartbeat.worker_id}, exc_info=True)
