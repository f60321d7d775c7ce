"""Fewer garbage collections while a job makes millions of short-lived objects.

CPython's cyclic collector runs its youngest generation every 700 net container
allocations, and from time to time an older one that walks every tracked object
the process holds. A history import makes a tuple or list per row and keeps caches
of hundreds of thousands of addresses: with the default thresholds the collector
took about a fifth of the row checks' CPU (measured at a million rows), though the
rows hold no reference cycles. Raising the first threshold while such a job runs
keeps collections (cycles are still freed) but makes them rare.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

FIRST_THRESHOLD = 200_000  # net allocations between collections of the youngest generation

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's first threshold for the block. The thresholds are the
    process's: jobs running at once in threads share the raised one, and the last
    to leave restores what was set before the first came in."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(FIRST_THRESHOLD, _saved[0]), _saved[1], _saved[2])
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
