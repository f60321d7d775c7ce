"""How long a failed try waits before the next: the email outbox and webhook
calls retry on the same curve."""
from __future__ import annotations

import random
from datetime import timedelta


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: 30 s, 1 min, 2 min ... capped at 6 h."""
    base = min(30 * 2 ** max(attempts - 1, 0), 6 * 3600)
    return timedelta(seconds=base * (rng or random).uniform(0.8, 1.2))
