"""Batch sizes for fan-out, and the helpers that cut id lists into them and enqueue them.

A Celery task costs about 1 ms of CPU end to end here, so tasks carry batches;
each row keeps its own state, so a batch is only a transport.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

ADVANCE_BATCH = 200
SEND_BATCH = 50
WEBHOOK_BATCH = 20
TICK_CLAIM_LIMIT = 10_000
TICK_MAX_ROUNDS = 5


def chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def ids_repr(ids: list[int]) -> str:
    """How a task of ids shows in Flower and in worker logs: ``([3 ids: 7, 8, 12],)``,
    or its first and last id when longer."""
    shown = ", ".join(map(str, ids)) if len(ids) <= 3 else f"{ids[0]} … {ids[-1]}"
    return f"([{len(ids)} ids: {shown}],)"


def enqueue_ids(task: Any, ids: list[int]) -> None:
    """Enqueue ``task`` with ``ids`` as its one argument. Celery would otherwise
    describe the arguments with its ``saferepr``, a Python walk over every id that
    was half the CPU of publishing a batch of 50 (and, carried in the message,
    makes the worker's task events as cheap)."""
    task.apply_async(args=[ids], argsrepr=ids_repr(ids))


def fan_out(task: Any, ids: list[int], size: int) -> None:
    """``ids`` in batches of ``size``, one task each."""
    for chunk in chunks(ids, size):
        enqueue_ids(task, chunk)
