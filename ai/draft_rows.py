"""A draft's row from request to outcome: the request checked and stored, the claim,
the outcome written, a wait for the model server, and the sweep.

``queue_draft`` refuses what can never work before anything is stored (422 naming
the field, 404 for another account's sequence); the rest moves the row along
``queued`` -> ``running`` -> ``ready`` | ``failed`` with conditional UPDATEs, so a
duplicate task or a late worker changes nothing. Takes a session and ``now``;
never commits.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ai.html_safety import private_host
from models import AiDraft, Sequence
from models.ai_draft import DRAFT_KINDS
from sequencing.errors import MAX_INT, InvalidInputError, NotFoundError, Problems
from sequencing.lifecycle import get_sequence
from sequencing.steps import MAX_VARIANTS

# A running draft's lease: past the ai task's hard time limit, so a live one is never swept.
LEASE = timedelta(seconds=420)
# A queued draft no worker took this long after it was due (its task lost with the
# broker) is handed to the pool again; the claim is conditional, so twice is harmless.
REDISPATCH_AFTER = timedelta(minutes=2)
MAX_ERROR = 2000
MIN_EMAILS, MAX_EMAILS, DEFAULT_EMAILS = 3, 10, 5
DEFAULT_SUBJECT_LINES = 5
_TEXT_LIMITS = {"goal": 500, "audience": 500, "product": 2000, "tone": 200, "language": 50, "sender_name": 100,
                "length": 200, "segment": 500, "url": 2000}
BRIEF_KEYS = {
    "sequence": ("goal", "audience", "product", "tone", "emails", "language", "sender_name", "url"),
    "subject_lines": ("audience", "product", "tone", "language"),
    "rewrite": ("tone", "length", "segment", "language"),
    "fix": (),
}
NEEDS_A_MODEL = ("needs a model server (OPENAI_BASE_URL, or OPENAI_API_KEY for OpenAI); without one only "
                 "kind sequence drafts, from the built-in blueprints")


def queue_draft(session: Session, account_id: int, data: dict[str, Any], now: datetime, *,
                model_configured: bool) -> AiDraft:
    """A new queued draft; InvalidInputError names each bad field, NotFoundError an
    unknown (or another account's) sequence. The caller commits, then enqueues."""
    p = Problems()
    kind = data.get("kind")
    if kind not in DRAFT_KINDS:
        p.add("kind", "Must be one of: " + ", ".join(DRAFT_KINDS) + ".")
        p.raise_if_any()
    if kind != "sequence" and not model_configured:
        p.add("kind", f"Kind {kind} {NEEDS_A_MODEL}.")
    request: dict[str, Any] = {"brief": _brief(p, kind, data.get("brief"))}
    sequence: Sequence | None = None
    if kind == "sequence":
        for key in ("sequence_id", "step", "count"):
            if data.get(key) is not None:
                p.add(key, "Not used by kind sequence.")
    else:
        sequence = _email_step(p, session, account_id, data)
        if kind == "subject_lines":
            count = p.integer(data, "count", "", minimum=1, maximum=MAX_VARIANTS)
            request["count"] = count or DEFAULT_SUBJECT_LINES
        elif data.get("count") is not None:
            p.add("count", "Only used by kind subject_lines.")
    p.errors = {path.lstrip("."): messages for path, messages in p.errors.items()}
    p.raise_if_any()
    draft = AiDraft(account_id=account_id, kind=kind, status="queued", request=request,
                    sequence_id=sequence.id if sequence else None, step=data.get("step") if sequence else None,
                    sequence_version=sequence.version if sequence else None, cached=False, prompt_tokens=0,
                    completion_tokens=0, model_seconds=0.0, attempts=0, due_at=now, created_at=now)
    session.add(draft)
    session.flush()
    return draft


def _brief(p: Problems, kind: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        if kind in ("sequence", "rewrite"):
            p.add("brief", "Missing data for required field.")
        return {}
    brief = p.mapping(raw, "brief")
    if brief is None:
        return {}
    allowed = BRIEF_KEYS[kind]
    p.unknown(brief, allowed, "brief")
    out: dict[str, Any] = {}
    for key in allowed:
        if key == "emails":
            emails = p.integer(brief, "emails", "brief", minimum=MIN_EMAILS, maximum=MAX_EMAILS)
            out["emails"] = emails or DEFAULT_EMAILS
            continue
        value = p.text(brief, key, "brief", required=kind == "sequence" and key == "goal", max_len=_TEXT_LIMITS[key])
        if value is not None and value.strip():
            out[key] = value.strip()
    if "url" in out:
        try:
            parts = urlsplit(out["url"])
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in out["url"]
        except ValueError:  # e.g. a malformed IPv6 literal
            ok = False
        if not ok:
            p.add("brief.url", "Must be an http or https URL with a host.")
        elif private_host(out["url"]):
            p.add("brief.url", "Must not point at a private or loopback address.")
    if kind == "rewrite" and not {"tone", "length", "segment"} & set(out):
        p.add("brief", "Say what to change: tone, length or segment.")
    return out


def _email_step(p: Problems, session: Session, account_id: int, data: dict[str, Any]) -> Sequence | None:
    """The account's sequence (NotFoundError otherwise) whose step ``step`` is an email
    step written in the sequence itself (not a template's)."""
    sequence_id = p.integer(data, "sequence_id", "", required=True, minimum=1)
    position = p.integer(data, "step", "", required=True, minimum=0, maximum=MAX_INT)
    if sequence_id is None:
        return None
    sequence = get_sequence(session, account_id, sequence_id)
    if position is None:
        return sequence
    step = next((s for s in sequence.steps if s.position == position), None)
    if step is None:
        p.add("step", f"No step at position {position}.")
    elif step.type != "email":
        p.add("step", f"Step {position} is a {step.type} step, not an email step.")
    elif step.config.get("template_id") is not None:
        p.add("step", f"Step {position} uses template {step.config['template_id']}: draft the template's content "
                      "into the step first.")
    return sequence


def get_draft(session: Session, account_id: int, draft_id: int) -> AiDraft:
    draft = None
    if 0 < draft_id <= MAX_INT:
        draft = session.scalar(select(AiDraft).where(AiDraft.id == draft_id, AiDraft.account_id == account_id))
    if draft is None:
        raise NotFoundError(f"Draft {draft_id} not found.")
    return draft


def claim(session: Session, draft_id: int, now: datetime) -> AiDraft | None:
    """Move a queued draft to ``running`` under a lease; None if it is not queued (done,
    or another worker got there first: the UPDATE's row count decides)."""
    claimed = session.execute(
        update(AiDraft).where(AiDraft.id == draft_id, AiDraft.status == "queued")
        .values(status="running", claimed_until=now + LEASE, started_at=now, attempts=AiDraft.attempts + 1)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(AiDraft, draft_id, populate_existing=True)


def record(session: Session, draft_id: int, now: datetime, *, status: str, usage: dict[str, Any],
           **values: Any) -> bool:
    """Write a running draft's outcome (``ready`` or ``failed``) with the usage of this
    attempt added to what earlier attempts recorded; False if it was no longer running."""
    if values.get("error"):
        values["error"] = values["error"][:MAX_ERROR]
    done = session.execute(
        update(AiDraft).where(AiDraft.id == draft_id, AiDraft.status == "running")
        .values(status=status, claimed_until=None, finished_at=now, **_added(usage), **values)
        .execution_options(synchronize_session=False))
    return done.rowcount == 1  # type: ignore[attr-defined]


def wait_for_server(session: Session, draft_id: int, due_at: datetime, usage: dict[str, Any]) -> bool:
    """Queue a running draft again, due once the model server said it would take
    calls (Retry-After, or its circuit's reopening), keeping this attempt's usage."""
    done = session.execute(
        update(AiDraft).where(AiDraft.id == draft_id, AiDraft.status == "running")
        .values(status="queued", claimed_until=None, due_at=due_at, **_added(usage))
        .execution_options(synchronize_session=False))
    return done.rowcount == 1  # type: ignore[attr-defined]


def _added(usage: dict[str, Any]) -> dict[str, Any]:
    return {"prompt_tokens": AiDraft.prompt_tokens + int(usage.get("prompt_tokens", 0)),
            "completion_tokens": AiDraft.completion_tokens + int(usage.get("completion_tokens", 0)),
            "model_seconds": AiDraft.model_seconds + float(usage.get("model_seconds", 0.0))}


def sweep(session: Session, now: datetime) -> tuple[list[int], list[int]]:
    """(drafts failed because their lease lapsed: the worker died mid-draft; queued
    drafts due for a while that no worker took, to hand to the pool again)."""
    lapsed = list(session.scalars(
        update(AiDraft).where(AiDraft.status == "running", AiDraft.claimed_until < now)
        .values(status="failed", claimed_until=None, finished_at=now,
                error="the draft stopped without finishing (worker killed or past its time limit); ask again")
        .returning(AiDraft.id).execution_options(synchronize_session=False)))
    stale = list(session.scalars(select(AiDraft.id).where(
        AiDraft.status == "queued", AiDraft.due_at < now - REDISPATCH_AFTER).order_by(AiDraft.id).limit(1000)))
    return lapsed, stale
