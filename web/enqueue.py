"""Handing stored work to a worker pool once its row has committed."""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def enqueue_stored(task: Any, args: tuple[Any, ...], what: str, then: str, **extra: Any) -> None:
    """Send ``task`` with ``args``. The work is already stored, so a broker that
    refuses it loses nothing: ``then`` (the sweep that takes stored work up) will
    run it; the refusal is only logged, and the request still succeeds."""
    try:
        task.apply_async(args=args)
    except Exception:  # noqa: BLE001 - stored, so swept up later; see the docstring
        log.warning("%s stored but not queued; %s", what, then, exc_info=True, extra=extra)
