"""Per-provider send-rate limits, shared by every send worker.

The limit is a GCRA kept on the provider row (``rate_tat``, the moment the next
send may start): a worker reserves a run of slots with one compare-and-set
UPDATE, then spaces its own sends over them. The state lives in the database, not
in Redis or in one worker's memory, so many workers and a restart still respect
the limit (Celery's ``rate_limit`` is per worker, not global).

A worker reserves slots for about 50 ms of the provider's rate at a time, so a
fast provider costs one UPDATE per chunk rather than per message; a chunk cut
short by the end of a batch is simply not used, which errs on the slow side.
When the next free slot is further away than ``max_wait`` the provider counts as
busy: failover moves on, and a message no provider can take now is held, not
failed.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.errors import ProviderBusyError

CHUNK_SECONDS = 0.05
MAX_WAIT_SECONDS = 2.0


# (provider_id, count, per_second, now, max_wait) -> start of the reserved run;
# raises ProviderBusyError when the first free slot is beyond ``max_wait``.
Reserve = Callable[[int, int, float, datetime, float], datetime]


def reserve_run(tat: datetime | None, count: int, per_second: float, now: datetime,
                max_wait: float) -> tuple[datetime, datetime]:
    """The GCRA step: (start of the run, the new tat)."""
    start = max(tat or now, now)
    ahead = (start - now).total_seconds()
    if ahead > max_wait:
        raise ProviderBusyError(ahead - max_wait)
    return start, start + timedelta(seconds=count / per_second)


@dataclass
class _Run:
    next_at: datetime
    left: int


class Pacer:
    """One batch's view of the limits: hands out this worker's reserved slots and
    sleeps until each one."""

    def __init__(self, reserve: Reserve, clock: Callable[[], datetime],
                 sleep: Callable[[float], None] = time.sleep, max_wait: float = MAX_WAIT_SECONDS) -> None:
        self._reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait
        self._runs: dict[int, _Run] = {}

    def admit(self, route: Any, recipient: str) -> None:
        """The Failover gate: pace a route that has a rate limit."""
        if route.max_per_second is not None and route.provider_id is not None:
            self.acquire(route.provider_id, route.max_per_second)

    def close(self) -> None:
        """Slots booked but not used are left to expire: erring on the slow side."""

    def acquire(self, provider_id: int, per_second: float) -> float:
        """Wait for the next slot and take it; returns the seconds waited. Raises
        ProviderBusyError, taking nothing, when the provider is booked beyond
        ``max_wait``."""
        run = self._runs.get(provider_id)
        if run is None or run.left == 0:
            count = max(1, math.ceil(per_second * CHUNK_SECONDS))
            start = self._reserve(provider_id, count, per_second, self._clock(), self._max_wait)
            run = self._runs[provider_id] = _Run(start, count)
        wait = max((run.next_at - self._clock()).total_seconds(), 0.0)
        if wait > 0:
            self._sleep(wait)
        run.next_at += timedelta(seconds=1 / per_second)
        run.left -= 1
        return wait
