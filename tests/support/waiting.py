"""Polling for an outcome of real processes, with a deadline instead of a sleep."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

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


def wait_for_job(client: Any, tenant: Any, job_id: int, timeout: float = 120.0) -> dict[str, Any]:
    """A job (``GET /api/v1/jobs/{id}``) once it has completed or failed."""
    seen: dict[str, Any] = {}

    def finished() -> dict[str, Any] | None:
        seen.update(client.get(f"/api/v1/jobs/{job_id}", headers=tenant.headers).get_json())
        return dict(seen) if seen.get("status") in ("completed", "failed") else None

    return wait_for(finished, timeout, f"job {job_id}", interval=0.1, detail=lambda: str(seen))


def at_once(run: Callable[[], T], times: int = 2) -> list[T]:
    """``run()`` in ``times`` threads started together; their results, once all have
    ended. The first error any of them raised is raised here, so a race that fails
    one of them fails the test."""
    results: list[T] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(run())
        except BaseException as exc:  # raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
