"""Which enrollments are held out of a sequence's emails (``settings.holdout_percent``).

A held-out enrollment walks every step as the others do (delays, conditions,
actions, webhook calls, goals) but its email steps send nothing, so conversions
of treated enrollments can be compared with conversions of people the emails never
reached (analytics.holdout).

The draw is a hash of (sequence, subscriber), not a random number: the same
subscriber falls in the same group on every run and every keyed instance of the
sequence, so a re-enrollment cannot move someone from one group to the other, and
a retried enroll request draws the same. It is made once, when the enrollment is
created, and stored (``enrollments.held_out``): raising or lowering the percent
later changes the groups of new enrollments only. Since each subscriber's point
is fixed, raising the percent only ever adds subscribers to the holdout.
"""
from __future__ import annotations

import hashlib
from typing import Any

_SCALE = 2**64


def _point(salt: str) -> float:
    """A fixed place in [0, 100) drawn from a hash of ``salt``."""
    digest = hashlib.sha256(salt.encode()).digest()
    return int.from_bytes(digest[:8], "big") * 100 / _SCALE


def holdout_point(sequence_id: int, subscriber_id: int) -> float:
    """The subscriber's fixed place in [0, 100) for this sequence."""
    return _point(f"holdout:{sequence_id}:{subscriber_id}")


def is_held_out(sequence_id: int, subscriber_id: int, percent: float | int | None) -> bool:
    """Whether a new enrollment of this subscriber is held out at ``percent`` (0-50)."""
    return bool(percent) and holdout_point(sequence_id, subscriber_id) < float(percent)  # type: ignore[arg-type]


def holdout_percent(settings: dict[str, Any] | None) -> float:
    """The sequence's holdout share in percent (0 when unset)."""
    return float((settings or {}).get("holdout_percent") or 0)


def arm_point(step_id: int, enrollment_id: int) -> float:
    """The enrollment's fixed place in [0, 100) at one email step, for its
    experiment's holdout arm (salted apart from the variant choice's hash)."""
    return _point(f"experiment-holdout:{step_id}:{enrollment_id}")


def in_arm_holdout(step_id: int, enrollment_id: int, experiment: dict[str, Any] | None) -> bool:
    """Whether this enrollment's visits of the step fall in its experiment's "no email"
    arm (``experiment.holdout_percent``, 0-50). The same enrollment always draws the
    same at the same step, so a retried advance or a loop back cannot switch arms."""
    percent = float((experiment or {}).get("holdout_percent") or 0)
    return percent > 0 and arm_point(step_id, enrollment_id) < percent
