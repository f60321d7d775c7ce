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
# How late an "entered segment" trigger may be: each check is one query per segment.
SEGMENT_ENTRIES_EVERY_SECONDS = 60.0
# Event subscriptions: how stale a delivered event may be, and the cost of one
# index probe per subscription per run.
FEED_EVERY_SECONDS = 5.0
# Retention's pruning (analytics.retention): a run stops after its budget and the
# next goes on, so the analytics pool is never held for long.
RETENTION_EVERY_SECONDS = 900.0
RETENTION_BUDGET_SECONDS = 120.0


def _every(task: str, seconds: float, queue: str, expires: float | None = None) -> dict[str, Any]:
    """An entry running ``task`` on ``queue`` every ``seconds``; a run not started
    within ``expires`` (by default, before the next one is due) is dropped."""
    return {"task": task, "schedule": seconds, "options": {"queue": queue, "expires": expires or seconds}}


def beat_schedule(tick_seconds: float) -> dict[str, dict[str, Any]]:
    """The platform's periodic work; ``tick_seconds`` is ESEQ_TICK_SECONDS."""
    return {
        "sequencing-tick": _every("sequencing.tick", tick_seconds, "default", expires=max(tick_seconds * 2, 1.0)),
        # Plans keep their own timezones, so "daily" is a frequent check that
        # closes whichever plan's day has ended; a day is judged once.
        "warming-advance-plans": _every("warming.advance_plans", 600.0, "default"),
        "inbound-sweep": _every("analytics.sweep_inbound", 60.0, "analytics"),
        # Rollups: each run folds from the accounts' watermarks, so a skipped run
        # only delays the counts and a doubled one finds nothing left to fold.
        "analytics-fold-rollups": _every("analytics.fold_rollups", FOLD_EVERY_SECONDS, "analytics"),
        # Daily; a skipped run leaves the pairs for the next, a doubled one finds none.
        "analytics-prune-firsts": _every("analytics.prune_rollup_firsts", 86400.0, "analytics", expires=3600.0),
        # Each run recomputes only what is stale; a computation already held by a
        # worker is skipped by its claim, so a doubled run computes nothing twice.
        "analytics-refresh-account-analyses": _every("analytics.refresh_account_analyses", ANALYSES_EVERY_SECONDS,
                                                     "analytics"),
        # Batches of old rows, each its own transaction, from where the last run
        # stopped; a doubled run finds less to do, never prunes unfolded events.
        "analytics-prune-retention": _every("analytics.prune_retention", RETENTION_EVERY_SECONDS, "analytics"),
        # Events' coming months (three ahead), created daily; a doubled run finds them there.
        "analytics-ensure-event-partitions": _every("analytics.ensure_event_partitions", 86400.0, "analytics",
                                                    expires=3600.0),
        "inbound-forget-nonces": _every("analytics.forget_spent_nonces", 3600.0, "analytics"),
        # The ml pool: the dispatchers only read and enqueue (on default); the
        # training and scoring they hand out run on the ml queue. Retraining skips
        # kinds already queued or training, so a doubled run queues nothing twice.
        "ml-retrain-weekly": _every("ml.retrain_all", ML_RETRAIN_EVERY_SECONDS, "default", expires=3600.0),
        "ml-score-daily": _every("ml.score_all", ML_SCORE_EVERY_SECONDS, "default", expires=3600.0),
        "ml-sweep": _every("ml.sweep", 600.0, "default"),
        # Drafts whose task was lost are handed on, drafts whose worker died are failed;
        # claims are conditional, so a doubled run drafts nothing twice.
        "ai-sweep": _every("ai.sweep", 60.0, "ai"),
        "warming-read-results": _every("warming.read_results", 300.0, "default"),
        # "Entered segment" triggers: who entered since the last check is enrolled in the
        # same transaction that records them as in, so a doubled run enrolls nobody twice.
        "audience-check-segment-entries": _every("audience.check_segment_entries", SEGMENT_ENTRIES_EVERY_SECONDS,
                                                 "default"),
        # Unconfirmed double opt-ins older than ESEQ_OPT_IN_EXPIRY_HOURS go; a doubled
        # run finds none left, a skipped one leaves them to the next.
        "audience-expire-pending": _every("audience.expire_pending", 900.0, "default"),
        # Broadcasts' steps (start, a test's decision, finish), each claimed under a
        # lease and committed with its bookkeeping, so a doubled run does nothing twice.
        "broadcasts-run-due": _every("broadcasts.run_due", tick_seconds, "default", expires=max(tick_seconds * 2, 1.0)),
        # Each run reads from the subscriptions' cursors under a lock per
        # subscription, so a doubled run batches nothing twice (webhooks.event_feed).
        "webhooks-feed-events": _every("webhooks.feed_events", FEED_EVERY_SECONDS, "webhooks"),
    }
