"""The beat schedule.

Every entry names its task by string (schedules never import tasks) and carries an
``expires`` so that ticks queued while workers were down are dropped rather than
piling up: the next tick does the same work, because the database is the truth.
"""
from __future__ import annotations

from typing import Any

# The rollups' fold: an account's fold task not started by the next run is dropped
# (tasks.analytics), as that run hands the account on again.
FOLD_EVERY_SECONDS = 10.0
ML_RETRAIN_EVERY_SECONDS = 7 * 86400.0
ML_SCORE_EVERY_SECONDS = 86400.0
# Cohorts, RFM and LTV of the accounts that asked for them, recomputed when new
# events or subscribers arrived: weekly figures need no fresher, and a million
# subscribers cost the pool about ten seconds each time.
ANALYSES_EVERY_SECONDS = 900.0


def beat_schedule(tick_seconds: float) -> dict[str, dict[str, Any]]:
    """The platform's periodic work; ``tick_seconds`` is ESEQ_TICK_SECONDS."""
    return {
        "sequencing-tick": {
            "task": "sequencing.tick",
            "schedule": tick_seconds,
            "options": {"queue": "default", "expires": max(tick_seconds * 2, 1.0)},
        },
        # Plans keep their own timezones, so "daily" is a frequent check that
        # closes whichever plan's day has ended; a day is judged once.
        "warming-advance-plans": {
            "task": "warming.advance_plans",
            "schedule": 600.0,
            "options": {"queue": "default", "expires": 600.0},
        },
        "inbound-sweep": {
            "task": "analytics.sweep_inbound",
            "schedule": 60.0,
            "options": {"queue": "analytics", "expires": 60.0},
        },
        # Rollups: each run folds from the accounts' watermarks, so a skipped run
        # only delays the counts and a doubled one finds nothing left to fold.
        "analytics-fold-rollups": {
            "task": "analytics.fold_rollups",
            "schedule": FOLD_EVERY_SECONDS,
            "options": {"queue": "analytics", "expires": FOLD_EVERY_SECONDS},
        },
        # Daily; a skipped run leaves the pairs for the next, a doubled one finds none.
        "analytics-prune-firsts": {
            "task": "analytics.prune_rollup_firsts",
            "schedule": 86400.0,
            "options": {"queue": "analytics", "expires": 3600.0},
        },
        # Each run recomputes only what is stale; a computation already held by a
        # worker is skipped by its claim, so a doubled run computes nothing twice.
        "analytics-refresh-account-analyses": {
            "task": "analytics.refresh_account_analyses",
            "schedule": ANALYSES_EVERY_SECONDS,
            "options": {"queue": "analytics", "expires": ANALYSES_EVERY_SECONDS},
        },
        "inbound-forget-nonces": {
            "task": "analytics.forget_spent_nonces",
            "schedule": 3600.0,
            "options": {"queue": "analytics", "expires": 3600.0},
        },
        # The ml pool: the dispatchers only read and enqueue (on default); the
        # training and scoring they hand out run on the ml queue. Retraining skips
        # kinds already queued or training, so a doubled run queues nothing twice.
        "ml-retrain-weekly": {
            "task": "ml.retrain_all",
            "schedule": ML_RETRAIN_EVERY_SECONDS,
            "options": {"queue": "default", "expires": 3600.0},
        },
        "ml-score-daily": {
            "task": "ml.score_all",
            "schedule": ML_SCORE_EVERY_SECONDS,
            "options": {"queue": "default", "expires": 3600.0},
        },
        "ml-sweep": {
            "task": "ml.sweep",
            "schedule": 600.0,
            "options": {"queue": "default", "expires": 600.0},
        },
        "warming-read-results": {
            "task": "warming.read_results",
            "schedule": 300.0,
            "options": {"queue": "default", "expires": 300.0},
        },
    }
