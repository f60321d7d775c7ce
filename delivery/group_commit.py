"""Group commit: many threads' small writes share one transaction.

A send thread must not lose the record of a message the provider already took
(the message would go out again after a crash), and one transaction per outcome
made each thread pay a whole commit per email: with dozens of send threads those
commits were most of the send worker's CPU. Here one writer thread per process
takes every outcome waiting when it comes round and writes them in one
transaction, while the outcomes that arrive meanwhile queue for the next one.
Under light load each outcome still commits alone and at once; under heavy load
one commit serves many.

``start`` hands an item over and returns at once, so a send thread can send its
next message while its last outcome commits (delivery.batch keeps at most one in
flight); ``submit`` waits for the commit. With a thread leading each group itself,
every send thread waited about one and a half commits an email, under a GIL shared
with dozens of others: at 20 ms an SMTP transaction, sending while the last record
commits made 64 connections faster in each of eight alternating runs, by 4-29%
(bench/send_pipeline, 2026-12-02; three runs of this writer, five of a first
version that recorded through a thread pool).

A group whose transaction fails is written again one item at a time, so one bad
item cannot take the others' records down with it; only its own caller sees the error.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# A group larger than this is split: one transaction should stay short.
MAX_GROUP = 500


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class Recording(Generic[Item, Result]):
    """One item on its way to the database: ``result()`` waits for its commit.

    The wait is a lock taken when the item is queued and released by the writer
    once it is written: a ``threading.Event`` does the same through a Python-level
    condition variable, and setting one per outcome in the writer was 4% of the
    send worker's Python time (py-spy), under a GIL fifty threads share."""

    item: Item
    value: Result | None = None
    error: BaseException | None = field(default=None, repr=False)
    _pending: threading.Lock = field(default_factory=_held_lock, repr=False)

    def result(self) -> Result:
        with self._pending:  # blocks until written; released again, so asking twice answers twice
            pass
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class GroupCommit(Generic[Item, Result]):
    """``start(item)`` queues ``item`` for the writer thread; ``submit(item)``
    also waits until ``write`` has committed it (with whatever else was waiting)
    and returns its result. ``write`` takes a list of items and returns one result
    per item, in order, from one transaction.

    Each caller waits on its own lock, released when its item is written (one
    condition variable shared by fifty send threads woke all fifty at every
    commit, and that churn cost more CPU than the commits)."""

    def __init__(self, write: Callable[[list[Item]], Sequence[Result]], max_group: int = MAX_GROUP) -> None:
        self._write = write
        self._max_group = max_group
        self._fresh()
        # A forked child has only the thread that forked: no writer, and maybe a
        # lock some other thread held at the fork.
        os.register_at_fork(after_in_child=self._fresh)

    def _fresh(self) -> None:
        self._lock = threading.Lock()
        self._waiting = threading.Condition(self._lock)
        self._pending: list[Recording[Item, Result]] = []
        self._writer: threading.Thread | None = None

    def start(self, item: Item) -> Recording[Item, Result]:
        recording: Recording[Item, Result] = Recording(item)
        with self._lock:
            self._pending.append(recording)
            self._ensure_writer()
            if len(self._pending) == 1:  # the writer may be asleep: nothing was waiting
                self._waiting.notify()
        return recording

    def submit(self, item: Item) -> Result:
        return self.start(item).result()

    def _ensure_writer(self) -> None:
        """Started with the first item, in each process (``_fresh`` forgets the
        parent's after a fork); it never returns, whatever a write raises."""
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_forever, name="group-commit", daemon=True)
            self._writer.start()

    def _write_forever(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._waiting.wait()
                group, self._pending = self._pending[:self._max_group], self._pending[self._max_group:]
            try:
                self._run(group)
            except BaseException:  # noqa: BLE001 - each caller of the group has been given it
                continue

    def _run(self, group: list[Recording[Item, Result]]) -> None:
        try:
            results = self._write([s.item for s in group])
        except Exception as exc:
            if len(group) > 1:
                for index, recording in enumerate(group):  # alone, so only the item at fault fails
                    try:
                        self._run([recording])
                    except BaseException as stop:  # SystemExit while rewriting: the rest must hear of it too
                        for rest in group[index + 1:]:
                            rest.error = stop
                        self._finish(group[index + 1:])
                        raise
                return
            group[0].error = exc
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: every waiter must hear of it
            for recording in group:
                recording.error = exc
            self._finish(group)
            raise
        else:
            for recording, result in zip(group, results, strict=True):
                recording.value = result
        self._finish(group)

    @staticmethod
    def _finish(group: list[Recording[Item, Result]]) -> None:
        for recording in group:
            recording._pending.release()  # each recording is finished once, by this writer
