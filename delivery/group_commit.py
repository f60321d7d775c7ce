"""Group commit: many threads' small writes share one transaction.

Every send thread must have its outcome committed before it sends the next
message, or a crash could lose the record of a message the provider already took
(and the message would go out again). One transaction per outcome makes each
thread pay a whole commit per email, and with dozens of send threads those commits
were most of the send worker's CPU. Here the first thread to arrive while no write
is running becomes the leader: it takes every outcome waiting at that moment and
writes them in one transaction, while the threads that arrive meanwhile queue for
the next one. Under light load each outcome still commits alone and at once; under
heavy load one commit serves many. Each caller still returns only once its own
outcome is committed, so the crash window stays one message per sending thread.

A group whose transaction fails is written again one item at a time, so one bad
item cannot take the others' records down with it; only its own caller sees the error.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# A group larger than this is split: one transaction should stay short.
MAX_GROUP = 500


@dataclass
class _Slot(Generic[Item, Result]):
    item: Item
    done: bool = False
    result: Result | None = None
    error: BaseException | None = field(default=None, repr=False)
    # Set when the slot is written, or when its thread is handed the lead.
    wake: threading.Event = field(default_factory=threading.Event, repr=False)


class GroupCommit(Generic[Item, Result]):
    """``submit(item)`` blocks until ``write`` has committed ``item`` (with whatever
    else was waiting) and returns its result. ``write`` takes a list of items and
    returns one result per item, in order, from one transaction.

    Each waiting thread sleeps on its own event: a leader wakes exactly the threads
    it wrote for and, when others are still waiting, hands the lead to the oldest
    of them. (One condition variable shared by fifty send threads woke all fifty at
    every commit, and that churn cost more CPU than the commits.)"""

    def __init__(self, write: Callable[[list[Item]], Sequence[Result]], max_group: int = MAX_GROUP) -> None:
        self._write = write
        self._max_group = max_group
        self._lock = threading.Lock()
        self._pending: list[_Slot[Item, Result]] = []
        self._writing = False

    def submit(self, item: Item) -> Result:
        slot: _Slot[Item, Result] = _Slot(item)
        with self._lock:
            self._pending.append(slot)
            leading = not self._writing
            self._writing = True
        if not leading:
            slot.wake.wait()
            if slot.done:
                return self._outcome(slot)
            # handed the lead: the previous leader left the group after ours to us
        self._lead()
        return self._outcome(slot)

    def _lead(self) -> None:
        """Write the group our own item heads, then pass the lead on. A leader's item
        is always first in line: a thread leads either because nothing was waiting
        when it came, or because it was first when the lead was handed on."""
        with self._lock:
            group, self._pending = self._pending[:self._max_group], self._pending[self._max_group:]
        try:
            self._run(group)
        finally:
            self._hand_on()

    def _hand_on(self) -> None:
        with self._lock:
            if self._pending:
                self._pending[0].wake.set()  # its thread leads the next group
            else:
                self._writing = False

    def _run(self, group: list[_Slot[Item, Result]]) -> None:
        try:
            results = self._write([s.item for s in group])
        except Exception as exc:
            if len(group) > 1:
                for index, slot in enumerate(group):  # alone, so only the item at fault fails
                    try:
                        self._run([slot])
                    except BaseException as stop:  # SystemExit while rewriting: the rest must hear of it too
                        for rest in group[index + 1:]:
                            rest.error = stop
                        self._finish(group[index + 1:])
                        raise
                return
            group[0].error = exc
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: every waiter must hear of it
            for slot in group:
                slot.error = exc
            self._finish(group)
            raise
        else:
            for slot, result in zip(group, results, strict=True):
                slot.result = result
        self._finish(group)

    @staticmethod
    def _finish(group: list[_Slot[Item, Result]]) -> None:
        for slot in group:
            slot.done = True
            slot.wake.set()

    @staticmethod
    def _outcome(slot: _Slot[Item, Result]) -> Result:
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]
