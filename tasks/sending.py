"""Provider I/O on the ``send`` queue: one send batch per task (delivery.batch)."""
from __future__ import annotations

from delivery.batch import record_outcomes, send_batch
from delivery.group_commit import GroupCommit
from delivery.sender import Outcome
from settings import get_settings
from tasks.app import app
from tasks.liveness import worker_owner

# One per process: the send pool's threads share its commits (delivery.group_commit).
RECORDER: GroupCommit[Outcome, str] = GroupCommit(record_outcomes)


@app.task(name="sending.send_messages", ignore_result=True)
def send_messages(message_ids: list[int]) -> dict[str, int]:
    return send_batch(message_ids, get_settings(), RECORDER.start, owner=worker_owner())
