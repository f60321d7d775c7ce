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


class GroupCommit(Generic[Item, Result]):
    """``submit(item)`` blocks until ``write`` has committed ``item`` (with whatever
    else was waiting) and returns its result. ``write`` takes a list of items and
    returns one result per item, in order, from one transaction."""

    def __init__(self, write: Callable[[list[Item]], Sequence[Result]], max_group: int = MAX_GROUP) -> None:
        self._write = write
        self._max_group = max_group
        self._cond = threading.Condition()
        self._pending: list[_Slot[Item, Result]] = []
        self._writing = False
        self.groups = 0  # transactions run, for tests and benchmarks

    def submit(self, item: Item) -> Result:
        slot: _Slot[Item, Result] = _Slot(item)
        with self._cond:
            self._pending.append(slot)
        while True:
            with self._cond:
                while not slot.done and self._writing:
                    self._cond.wait()
                if slot.done:
                    break
                # Nobody is writing: lead the next group (ours is in it, unless
                # more than max_group were waiting: then lead again after).
                self._writing = True
                group, self._pending = self._pending[:self._max_group], self._pending[self._max_group:]
            try:
                self._run(group)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
        return self._outcome(slot)

    def _run(self, group: list[_Slot[Item, Result]]) -> None:
        self.groups += 1
        try:
            results = self._write([s.item for s in group])
        except Exception as exc:
            if len(group) > 1:
                for slot in group:  # alone, so only the item at fault fails
                    self._run([slot])
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

    def _finish(self, group: list[_Slot[Item, Result]]) -> None:
        with self._cond:
            for slot in group:
                slot.done = True

    @staticmethod
    def _outcome(slot: _Slot[Item, Result]) -> Result:
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]
