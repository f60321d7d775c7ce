"""Provider webhook events on the ``analytics`` queue (inbound.store)."""
from __future__ import annotations

from sqlalchemy.exc import OperationalError

from inbound.store import process_events
from models.base import utcnow
from models.db import session_scope
from tasks.app import app


# A database blip retries the batch; the rows stay ``pending`` until it commits.
@app.task(name="analytics.process_inbound", ignore_result=True, autoretry_for=(OperationalError,),
          retry_backoff=True, max_retries=5)
def process_inbound(inbound_event_ids: list[int]) -> dict[str, int]:
    with session_scope() as session:
        return process_events(session, inbound_event_ids, utcnow())
