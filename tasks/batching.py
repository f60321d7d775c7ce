"""Batch sizes for fan-out, and the one helper that cuts id lists into them.

A Celery task costs about 1 ms of CPU end to end here, so tasks carry batches;
each row keeps its own state, so a batch is only a transport.
"""
from __future__ import annotations

from collections.abc import Iterator

ADVANCE_BATCH = 200
SEND_BATCH = 50
WEBHOOK_BATCH = 20
TICK_CLAIM_LIMIT = 10_000
TICK_MAX_ROUNDS = 5


def chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]
