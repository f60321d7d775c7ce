"""What a piece of code allocates at its peak, for tests that a refusal builds nothing large."""
from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def allocation_peak(call: Callable[[], T]) -> tuple[T, int]:
    """What ``call()`` returns, and the most Python had allocated (bytes) while it ran."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
