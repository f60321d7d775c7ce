"""The timer: beat's tick claims what is due and fans it out; advance walks steps."""
from __future__ import annotations

import logging
from datetime import timedelta

from delivery.outbox import claim_for_dispatch
from models.base import utcnow
from models.db import session_scope
from settings import Settings, get_settings
from sequencing.claims import claim_enrollments, take_claims
from sequencing.dead_workers import release_dead_workers, release_lost_hand_overs
from sequencing.engine import advance_enrollments
from tasks.app import app
from tasks.audience import resume_stale_imports
from tasks.broker import broker_was_emptied, keeps_a_dead_workers_tasks
from tasks.liveness import worker_owner
from tasks.batching import ADVANCE_BATCH, SEND_BATCH, TICK_CLAIM_LIMIT, TICK_MAX_ROUNDS, WEBHOOK_BATCH, fan_out
from tasks.sending import send_messages
from tasks.webhooks import claim_webhooks_for_dispatch, deliver_webhooks

log = logging.getLogger(__name__)


def enqueue_sends(message_ids: list[int]) -> None:
    fan_out(send_messages, message_ids, SEND_BATCH)


def enqueue_webhooks(webhook_ids: list[int]) -> None:
    fan_out(deliver_webhooks, webhook_ids, WEBHOOK_BATCH)


def take_back_lost_work(settings: Settings) -> None:
    """Release the claims of workers that stopped beating and, when the broker lost
    its tasks (a flush) or may keep a dead worker's unstarted ones, hand out again
    what was handed over and not started: done before the tick claims, so the same
    tick hands it all out again, seconds after the fault rather than a lease later."""
    with session_scope() as session:
        released = release_dead_workers(session, utcnow(), timedelta(seconds=settings.worker_dead_after_seconds))
    died = {worker_id: r.held for worker_id, r in released.items() if r.died}
    stopped = sorted(released.keys() - died.keys())  # stopped cleanly, holding nothing
    if died:
        log.warning("released the claims of workers that died", extra={"released": died})
    if stopped:
        log.info("workers stopped", extra={"workers": stopped})
    if broker_was_emptied(settings.broker_url, settings.broker_prefix):
        why = "the broker lost its tasks: handing out again what it held"
    elif died and keeps_a_dead_workers_tasks(settings.broker_url):
        # A killed worker may have held tasks it had not started (prefetched), whether
        # or not it held claims: their rows carry no owner, and the broker keeps the
        # tasks for its visibility timeout. A task that was only waiting in the queue
        # gets a second one, which its claim turns away.
        why = "a dead worker's unstarted tasks: handing out again what may have been among them"
    else:
        return
    with session_scope() as session:
        lost = release_lost_hand_overs(session, utcnow())
    log.warning(why, extra=lost)


@app.task(name="sequencing.tick", ignore_result=True)
def tick() -> dict[str, int]:
    """Claim due enrollments and undelivered messages, and hand them to workers.

    Claims commit before anything is enqueued; if enqueueing fails the leases run
    out and a later tick claims the same rows again.
    """
    settings = get_settings()
    lease = timedelta(seconds=settings.lease_seconds)
    take_back_lost_work(settings)
    claimed = 0
    for _ in range(TICK_MAX_ROUNDS):
        now = utcnow()
        with session_scope() as session:
            claim = claim_enrollments(session, now, TICK_CLAIM_LIMIT, lease)
        fan_out(advance, claim.healthy, ADVANCE_BATCH)
        # An enrollment whose last advance crashed goes alone: if it kills its
        # worker again, it takes no one else's advance with it.
        fan_out(advance, claim.crashed, 1)
        claimed += len(claim.ids)
        if len(claim.ids) < TICK_CLAIM_LIMIT:
            break
    with session_scope() as session:
        message_ids = claim_for_dispatch(session, utcnow(), TICK_CLAIM_LIMIT, lease)
    enqueue_sends(message_ids)
    webhook_ids = claim_webhooks_for_dispatch(lease)
    enqueue_webhooks(webhook_ids)
    resume_stale_imports(lease)
    counts = {"enrollments": claimed, "messages": len(message_ids), "webhooks": len(webhook_ids)}
    if any(counts.values()):
        log.info("tick", extra=counts)
    return counts


@app.task(name="sequencing.advance", ignore_result=True)
def advance(enrollment_ids: list[int]) -> int:
    lease = timedelta(seconds=get_settings().lease_seconds)
    with session_scope() as session:  # committed first: if this worker dies, the tick releases them
        take_claims(session, enrollment_ids, worker_owner())
    with session_scope() as session:
        result = advance_enrollments(session, enrollment_ids, utcnow(), dispatch_grace=lease)
    enqueue_sends(result.message_ids)
    enqueue_webhooks(result.webhook_ids)
    return result.advanced
