"""Polling for an outcome of real processes, with a deadline instead of a sleep."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, what: str = "the condition", *,
             interval: float = 0.05, detail: Callable[[], str] | None = None) -> T:
    """The predicate's first truthy value. On timeout the error names ``what`` and adds
    ``detail()`` (the state seen, a process's log), which is what a failure needs to be
    diagnosed without a rerun."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    message = f"timed out after {timeout} s waiting for {what}"
    raise AssertionError(f"{message}: {detail()}" if detail is not None else message)
