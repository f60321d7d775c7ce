"""Which worker processes answer Celery's ping right now, by pool: the console's
overview asks this after the page has rendered (it waits up to ``timeout`` for the
answers, and a broker that is down makes it fail, neither of which a page render
should wait on). Answers are kept a few seconds, so operators refreshing the page
do not each broadcast a ping."""
from __future__ import annotations

import threading
import time

from tasks.app import app

_CACHE_SECONDS = 5.0
_lock = threading.Lock()
_last: tuple[float, dict[str, list[str]]] | None = None


def answering(timeout: float = 1.0) -> dict[str, list[str]]:
    """Pool (the name before ``@``, as the Procfile names workers) -> its workers' names.
    Raises whatever the broker connection raises when it cannot be reached."""
    global _last
    with _lock:
        if _last is not None and time.monotonic() - _last[0] < _CACHE_SECONDS:
            return _last[1]
        with app.connection_for_write() as connection:
            # A broker that is down answers a ping with silence, like a pool with no
            # worker; connecting first tells the two apart (kombu's OperationalError).
            connection.ensure_connection(max_retries=1, timeout=timeout)
            replies = app.control.inspect(timeout=timeout, connection=connection).ping() or {}
        pools: dict[str, list[str]] = {}
        for name in sorted(replies):
            pools.setdefault(name.split("@", 1)[0], []).append(name)
        _last = (time.monotonic(), pools)
        return pools
