"""Provider webhook events on the ``analytics`` queue (inbound.store), and the
sweep that hands on events whose enqueue was lost."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import OperationalError

from inbound.store import forget_spent_nonces, process_events, stale_pending
from models.base import utcnow
from models.db import session_scope
from tasks.app import app
from tasks.batching import fan_out


# A database blip retries the batch; the rows stay ``pending`` until it commits.
@app.task(name="analytics.process_inbound", ignore_result=True, autoretry_for=(OperationalError,),
          retry_backoff=True, max_retries=5)
def process_inbound(inbound_event_ids: list[int]) -> dict[str, int]:
    with session_scope() as session:
        return process_events(session, inbound_event_ids, utcnow())


SWEEP_AFTER = timedelta(minutes=2)
SWEEP_BATCH = 500


@app.task(name="analytics.sweep_inbound", ignore_result=True)
def sweep_inbound() -> int:
    """Enqueue stored events left pending (a provider does not retry an event we
    already answered 200). Processing skips rows another worker holds, so an event
    enqueued twice is still processed once."""
    with session_scope() as session:
        ids = stale_pending(session, utcnow(), SWEEP_AFTER, SWEEP_BATCH * 10)
    fan_out(process_inbound, ids, SWEEP_BATCH)
    return len(ids)


@app.task(name="analytics.forget_spent_nonces", ignore_result=True)
def forget_nonces() -> int:
    """Prune signature tokens too old to be replayed (inbound.store.NONCE_KEEP)."""
    with session_scope() as session:
        return forget_spent_nonces(session, utcnow())
