"""Applying a ready draft, once: the only way a draft reaches a sequence.

A ``sequence`` draft becomes a new sequence through the normal creation path, in
status ``draft``: activating it runs the pre-flight like any other. A step draft
(subject lines as new A/B variants, a rewrite, a fix) replaces the step through
the normal replacement path (``lifecycle.update_sequence``), only if the sequence
is still the version the draft was made from; on an active sequence the new
content must pass the pre-flight, as a ``PUT`` must. Nothing is ever sent or
activated here. Takes a session and ``now``; never commits.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from ai.draft_rows import get_draft
from ai.drafts import with_variants
from models import AiDraft, Sequence
from sequencing import lifecycle
from sequencing.errors import NotFoundError, StateConflictError
from sequencing.preflight import Preflight


def apply_draft(session: Session, account_id: int, draft_id: int, now: datetime,
                preflight: Callable[[Sequence], Preflight] | None = None) -> dict[str, Any]:
    """{"sequence_id", "step"} of what the draft made or changed. NotFoundError for
    another account's draft; StateConflictError when it is not ready, was applied
    already, or its sequence changed or went away since."""
    draft = get_draft(session, account_id, draft_id)
    if draft.status != "ready" or draft.result is None:
        raise StateConflictError(f"Draft {draft_id} is {draft.status}; only a ready draft can be applied.")
    taken = session.execute(
        update(AiDraft).where(AiDraft.id == draft_id, AiDraft.applied_at.is_(None)).values(applied_at=now)
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise StateConflictError(f"Draft {draft_id} was applied already.")
    if draft.kind == "sequence":
        sequence = lifecycle.create_sequence(session, account_id, draft.result["sequence"], now)
        applied = {"sequence_id": sequence.id, "step": None}
    else:
        sequence = _changed_step(session, account_id, draft, now, preflight)
        applied = {"sequence_id": sequence.id, "step": draft.step}
    session.execute(update(AiDraft).where(AiDraft.id == draft_id).values(applied=applied)
                    .execution_options(synchronize_session=False))
    return {**applied, "status": sequence.status, "version": sequence.version}


def _changed_step(session: Session, account_id: int, draft: AiDraft, now: datetime,
                  preflight: Callable[[Sequence], Preflight] | None) -> Sequence:
    assert draft.sequence_id is not None and draft.step is not None and draft.result is not None
    try:
        sequence = lifecycle.get_sequence(session, account_id, draft.sequence_id, lock=True)
    except NotFoundError:
        raise StateConflictError(f"Sequence {draft.sequence_id} was deleted since the draft was made.") from None
    if sequence.version != draft.sequence_version:
        raise StateConflictError(f"Sequence {sequence.id} changed since the draft was made (version "
                                 f"{draft.sequence_version}, now {sequence.version}); ask for a new draft.")
    steps = [{"type": s.type, **s.config} for s in sorted(sequence.steps, key=lambda s: s.position)]
    if draft.kind == "subject_lines":
        steps[draft.step] = with_variants(steps[draft.step], draft.result["subject_lines"])
    else:
        steps[draft.step] = {"type": "email", **draft.result["email"]}
    body = {"name": sequence.name, "description": sequence.description, "settings": sequence.settings,
            "steps": steps}
    return lifecycle.update_sequence(session, account_id, sequence.id, body, now, preflight=preflight)
