"""This process's worker id and heartbeat (core.liveness), started the first time
the process claims work: only processes that claim get a row, and a prefork child,
which inherits its parent's module state but not its threads, gets an id and a
heartbeat thread of its own (the pid tells it apart from its parent)."""
from __future__ import annotations

import os
import threading

from core.liveness import Heartbeat, beat, new_worker_id
from models.base import utcnow
from models import db
from settings import get_settings

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


def stop_heartbeat() -> None:
    """Stop this process's heartbeat (an in-process worker stopping: the suite's
    own); the next claim starts a new one under a new id."""
    global _heartbeat
    with _lock:
        if _heartbeat is not None and _pid == os.getpid():
            _heartbeat.stop()
        _heartbeat = None
