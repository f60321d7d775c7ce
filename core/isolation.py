"""Running a batch of rows so that one bad row costs only itself (the engine's
advance, inbound events, subscriber imports): the batch in one savepoint, so the usual batch costs
what it did; when it raises, the rows one at a time, each in a savepoint of its
own."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def run_isolated(session: Session, items: Sequence[T], run: Callable[[Sequence[T]], R],
                 failed: Callable[[T, Exception], None], passthrough: tuple[type[Exception], ...],
                 what: str, caught: tuple[type[Exception], ...] = (Exception,)) -> list[R]:
    """``run(items)`` in a savepoint. If it raises, the savepoint is rolled back and
    each item is run alone in a savepoint of its own; ``failed(item, exc)`` is told
    of one that raises again (a batch of one is not run twice: its failure is that
    item's). Only ``caught`` errors are an item's fault; ``passthrough`` ones (the
    database's own, nobody's fault) and any others propagate. Returns the results
    of the runs that went through: the batch's, or each item's."""
    try:
        with session.begin_nested():
            return [run(items)]
    except passthrough:
        raise
    except caught as exc:  # one item's fault, found below
        if len(items) == 1:
            failed(items[0], exc)
            return []
        log.warning("%s batch failed; running its rows one at a time", what,
                    extra={"rows": len(items), "error": repr(exc)})
    results: list[R] = []
    for item in items:
        try:
            with session.begin_nested():
                results.append(run([item]))
        except passthrough:
            raise
        except caught as exc:  # this item alone
            failed(item, exc)
    return results
