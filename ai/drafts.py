"""Running one draft: read what it needs, ask the model (or the blueprints), keep
only what the API's own validators accept, sanitise, pre-flight, record.

Three phases, so no database transaction stays open while a model thinks:
``start`` (claim, gather the content, answer from the cache or refuse over
budget), ``compose`` (no session: the calls, the validation with one retry that
shows the model its errors, the pre-flight through a callable that opens its own
session), ``finish`` (write the outcome). ``compose`` returns an ``Outcome`` whose
``status`` tells the task what to do: ``ready``, ``failed``, or ``retry`` after
``retry_after`` seconds (the model server is rate-limiting or its circuit is open).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ai import answer_cache, draft_rows, output_schemas, prompts
from ai.blueprints import draft_sequence
from ai.budget import BudgetExceededError, Prices, check_budget, tokens_used_today
from ai.errors import AiError, AiMalformed, AiRefused, AiTruncated, AiUnavailable
from ai.html_safety import sanitise_html
from models import AiDraft, Sequence, Step, Subscriber
from sequencing.errors import InvalidInputError, NotFoundError
from sequencing.lifecycle import get_sequence
from sequencing.preflight import Preflight
from sequencing.settings_schema import validate_settings
from sequencing.steps import References, split_step, validate_steps

BLUEPRINT = "blueprint"
MAX_TOKENS = 4000
FIX_ROUNDS = 3
MAX_ATTRIBUTE_NAMES = 100
ATTRIBUTE_SAMPLE = 5000  # newest subscribers whose attribute names are read
VARIANT_NAMES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Client(Protocol):
    def complete(self, messages: list[dict[str, str]], *, schema: dict[str, Any], schema_name: str,
                 max_tokens: int, temperature: float = 0.7) -> Any: ...


Check = Callable[[Sequence], Preflight]


@dataclass(frozen=True)
class Job:
    """What ``compose`` needs, read in ``start``: nothing of it is a live ORM object."""

    draft_id: int
    account_id: int
    kind: str
    request: dict[str, Any]
    model: str
    attribute_names: list[str]
    steps: list[dict[str, Any]] = field(default_factory=list)  # the sequence's, as the API takes them
    step: int | None = None
    budget_left: int | None = None  # tokens; None: no limit
    attempts: int = 1  # this run included


@dataclass
class Outcome:
    status: str  # ready | failed | retry
    model: str
    result: dict[str, Any] | None = None
    preflight: dict[str, Any] | None = None
    error: str | None = None
    retry_after: float = 0.0  # seconds the server asked for; 0: it did not say
    usage: dict[str, Any] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0,
                                                           "model_seconds": 0.0})


class _Failed(Exception):
    """The draft fails with this reason."""


def start(session: Session, draft_id: int, now: datetime, *, model: str | None, daily_tokens: int) -> Job | None:
    """Claim the draft and gather its content; None when there is nothing to compose
    (not queued any more, answered from the cache, over budget, sequence gone)."""
    draft = draft_rows.claim(session, draft_id, now)
    if draft is None:
        return None
    model_name = model or BLUEPRINT
    steps: list[dict[str, Any]] = []
    if draft.sequence_id is not None:
        try:
            sequence: Sequence | None = get_sequence(session, draft.account_id, draft.sequence_id)
        except NotFoundError:  # deleted since the draft was asked for
            sequence = None
        if sequence is None:
            draft_rows.record(session, draft_id, now, status="failed", usage={}, model=model_name,
                              error="the sequence was deleted")
            return None
        steps = [{"type": s.type, **s.config} for s in sorted(sequence.steps, key=lambda s: s.position)]
    names = attribute_names(session, draft.account_id)
    content = steps[draft.step] if draft.step is not None and draft.step < len(steps) else None
    key = answer_cache.cache_key(draft.kind, draft.request, model_name, content, names)
    draft.cache_key = key
    session.flush()
    earlier = answer_cache.earlier_answer(session, draft.account_id, key, draft_id)
    if earlier is not None:
        draft_rows.record(session, draft_id, now, status="ready", usage={}, model=earlier.model, cached=True,
                          result=earlier.result, preflight=earlier.preflight, cost=0.0 if earlier.cost else None)
        return None
    budget_left = None
    if model is not None and daily_tokens:
        try:
            check_budget(session, draft.account_id, daily_tokens, now)
        except BudgetExceededError as exc:
            draft_rows.record(session, draft_id, now, status="failed", usage={}, model=model_name, error=str(exc))
            return None
        budget_left = daily_tokens - tokens_used_today(session, draft.account_id, now)
    return Job(draft_id=draft_id, account_id=draft.account_id, kind=draft.kind, request=dict(draft.request),
               model=model_name, attribute_names=names, steps=steps, step=draft.step, budget_left=budget_left,
               attempts=draft.attempts)


def attribute_names(session: Session, account_id: int) -> list[str]:
    """The keys seen in the account's subscribers' attributes (newest subscribers
    first), never their values: what personalisation may name."""
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(text(
            "SELECT DISTINCT k FROM (SELECT attributes FROM subscribers WHERE account_id = :a "
            "ORDER BY id DESC LIMIT :n) s, jsonb_object_keys(CASE WHEN jsonb_typeof(s.attributes) = 'object' "
            "THEN s.attributes ELSE '{}'::jsonb END) k ORDER BY k LIMIT :m"),
            {"a": account_id, "n": ATTRIBUTE_SAMPLE, "m": MAX_ATTRIBUTE_NAMES})
        return [row[0] for row in rows]
    seen: set[str] = set()
    for attributes in session.scalars(select(Subscriber.attributes).where(Subscriber.account_id == account_id)
                                      .order_by(Subscriber.id.desc()).limit(ATTRIBUTE_SAMPLE)):
        seen.update(attributes or {})
    return sorted(seen)[:MAX_ATTRIBUTE_NAMES]


def compose(job: Job, client: Client | None, check: Check) -> Outcome:
    """The draft's outcome; never raises for what the model or the brief did."""
    outcome = Outcome(status="ready", model=job.model)
    try:
        if job.kind == "sequence":
            outcome.result = _sequence(job, client, outcome)
            candidate = outcome.result["sequence"]["steps"]
        else:
            assert client is not None, "queue_draft refuses other kinds without a model"
            candidate = _step_kind(job, client, check, outcome)
        if outcome.preflight is None:
            outcome.preflight = check(transient_sequence(job.account_id, candidate)).as_dict()
    except AiUnavailable as exc:
        outcome.status, outcome.retry_after, outcome.error = "retry", float(exc.retry_after or 0.0), exc.reason
    except AiTruncated:
        outcome.status, outcome.error = "failed", f"the answer was cut off at max_tokens ({MAX_TOKENS})"
    except AiRefused as exc:
        outcome.status, outcome.error = "failed", exc.reason
    except (_Failed, BudgetExceededError) as exc:
        outcome.status, outcome.error = "failed", str(exc)
    except AiError as exc:
        outcome.status, outcome.error = "failed", exc.reason  # malformed: not a chat completion
    if outcome.status != "ready":
        outcome.result = outcome.preflight = None
    return outcome


def finish(session: Session, job_or_id: Job | int, outcome: Outcome, now: datetime, prices: Prices) -> None:
    """Write the outcome of a ``ready`` or ``failed`` compose."""
    draft_id = job_or_id if isinstance(job_or_id, int) else job_or_id.draft_id
    draft = session.get(AiDraft, draft_id)
    if draft is None:
        return
    prompt = draft.prompt_tokens + int(outcome.usage["prompt_tokens"])
    completion = draft.completion_tokens + int(outcome.usage["completion_tokens"])
    draft_rows.record(session, draft_id, now, status=outcome.status, usage=outcome.usage, model=outcome.model,
                      result=outcome.result, preflight=outcome.preflight, error=outcome.error,
                      cost=prices.cost(prompt, completion))


# The kinds

def _sequence(job: Job, client: Client | None, outcome: Outcome) -> dict[str, Any]:
    brief = job.request["brief"]
    notes: list[str] = []
    if client is None:
        body = draft_sequence(brief, job.attribute_names)
        return {"sequence": _valid_sequence(body, brief["emails"], notes), "notes": notes}
    body = _ask(client, job, outcome, prompts.sequence(brief, job.attribute_names), output_schemas.SEQUENCE,
                "email_sequence", lambda answer: _valid_sequence(output_schemas.sequence_body(answer),
                                                                 brief["emails"], notes))
    return {"sequence": body, "notes": sorted(set(notes))}


def _valid_sequence(body: dict[str, Any], emails: int, notes: list[str]) -> dict[str, Any]:
    """The body sanitised and normalised by the API's validators, with ``emails`` emails."""
    steps = body.get("steps")
    if isinstance(steps, list):
        steps = [_sanitised(s, notes) for s in steps]
    errors: dict[str, list[str]] = {}
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        errors["name"] = ["Must be a string of 1 to 200 characters."]
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 10_000):
        errors["description"] = ["Must be a string of at most 10000 characters."]
    try:
        settings = validate_settings(body.get("settings"))
    except InvalidInputError as exc:
        errors.update(exc.errors)
        settings = None
    try:
        steps = validate_steps(steps)
    except InvalidInputError as exc:
        errors.update(exc.errors)
    else:
        found = sum(1 for s in steps if s["type"] == "email")
        if found != emails:
            errors.setdefault("steps", []).append(f"The brief asks for {emails} emails; the answer has {found}.")
    if errors:
        raise InvalidInputError(errors)
    assert isinstance(name, str)
    out = {"name": name.strip(), "description": description, "steps": steps}
    if body.get("settings") is not None:
        out["settings"] = {k: v for k, v in (settings or {}).items() if k in body["settings"]}
    return out


def _step_kind(job: Job, client: Client, check: Check, outcome: Outcome) -> list[dict[str, Any]]:
    """subject_lines, rewrite and fix: the candidate sequence (the step changed), with
    ``outcome.result`` (and for fix its last pre-flight) set."""
    assert job.step is not None
    current = job.steps[job.step]
    notes: list[str] = []
    if job.kind == "subject_lines":
        count = job.request["count"]
        lines = _ask(client, job, outcome,
                     prompts.subject_lines(current, count, job.request.get("brief") or {}, job.attribute_names),
                     output_schemas.subject_lines(count), "subject_lines",
                     lambda answer: _valid_subject_lines(job, answer, count))
        step = with_variants(current, lines)
        outcome.result = {"step": job.step, "subject_lines": lines, "variants": step["variants"][-len(lines):]}
        return _replaced(job, step)
    if job.kind == "rewrite":
        step = _ask(client, job, outcome,
                    prompts.rewrite(current, job.request["brief"], job.attribute_names), output_schemas.EMAIL,
                    "email", lambda answer: _valid_step(job, output_schemas.email_step(answer, current), notes))
        outcome.result = {"step": job.step, "email": _public(step), "notes": sorted(set(notes))}
        return _replaced(job, step)
    return _fix(job, client, check, outcome, current, notes)


def _fix(job: Job, client: Client, check: Check, outcome: Outcome, current: dict[str, Any],
         notes: list[str]) -> list[dict[str, Any]]:
    """Rounds of revision until the step's emails pass the pre-flight (at most
    FIX_ROUNDS), or the model says why they cannot."""
    step, candidate = current, list(job.steps)
    report = check(transient_sequence(job.account_id, candidate))
    rounds, cannot = 0, None
    while rounds < FIX_ROUNDS and not _step_passes(report, job.step):
        rounds += 1
        reasons = _step_reasons(report, job.step)
        said: dict[str, Any] = {}

        def build(answer: dict[str, Any]) -> dict[str, Any]:
            said["cannot_fix"] = answer.get("cannot_fix")
            return _valid_step(job, output_schemas.email_step(answer, current), notes)

        step = _ask(client, job, outcome, prompts.fix(step, reasons, job.attribute_names), output_schemas.FIX,
                    "fixed_email", build)
        candidate = _replaced(job, step)
        report = check(transient_sequence(job.account_id, candidate))
        cannot = said.get("cannot_fix") if isinstance(said.get("cannot_fix"), str) else None
        if cannot:
            break
    passes = _step_passes(report, job.step)
    outcome.preflight = report.as_dict()
    outcome.result = {"step": job.step, "email": _public(step), "rounds": rounds, "passes": passes,
                      "cannot_fix": None if passes else (cannot or f"still fails after {rounds} rounds"),
                      "notes": sorted(set(notes))}
    return candidate


def _step_passes(report: Preflight, position: int | None) -> bool:
    return all(e["passed"] for e in report.emails if e["position"] == position)


def _step_reasons(report: Preflight, position: int | None) -> list[str]:
    return [reason for e in report.emails if e["position"] == position for reason in e["reasons"]]


def _valid_subject_lines(job: Job, answer: dict[str, Any], count: int) -> list[str]:
    lines = answer.get("subject_lines")
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise InvalidInputError({"subject_lines": ["Must be a list of strings."]})
    lines = [line.strip() for line in lines]
    if len(lines) != count or len(set(lines)) != count:
        raise InvalidInputError({"subject_lines": [f"Must be exactly {count} distinct subject lines."]})
    _valid_step(job, with_variants(job.steps[job.step or 0], lines), [])
    return lines


def with_variants(step: dict[str, Any], lines: list[str]) -> dict[str, Any]:
    """The step with one new variant per subject line, named by the next free letters."""
    existing = list(step.get("variants") or [])
    taken = {v.get("name") for v in existing}
    names = [n for n in VARIANT_NAMES if n not in taken]
    return {**step, "variants": existing + [{"name": name, "subject": line} for name, line in zip(names, lines)]}


def _valid_step(job: Job, step: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """The step sanitised, and normalised by validating the whole sequence with it
    (jumps and conditions that look at it included); errors name ``steps.N.field``."""
    steps = validate_steps(_replaced(job, _sanitised(step, notes)), _known_references(job.steps))
    assert job.step is not None
    return steps[job.step]


def _replaced(job: Job, step: dict[str, Any]) -> list[dict[str, Any]]:
    steps = list(job.steps)
    steps[job.step or 0] = step
    return steps


def _known_references(steps: list[dict[str, Any]]) -> References:
    """The stored steps were validated when saved; their template and sequence ids stand."""
    templates = {s.get("template_id") for s in steps}
    sequences = {s.get("sequence_id") for s in steps}
    return References(template_exists=templates.__contains__, sequence_exists=sequences.__contains__)


def _sanitised(step: Any, notes: list[str]) -> Any:
    if not isinstance(step, dict):
        return step
    out = dict(step)
    if isinstance(out.get("html"), str):
        out["html"], removed = sanitise_html(out["html"])
        notes.extend(removed)
    if isinstance(out.get("variants"), list):
        out["variants"] = [_sanitised(v, notes) for v in out["variants"]]
    return out


def _public(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if k != "template_id"}


def transient_sequence(account_id: int, steps: list[dict[str, Any]]) -> Sequence:
    """An unsaved sequence holding ``steps``, for the pre-flight to read."""
    sequence = Sequence(id=0, account_id=account_id, name="draft", status="draft", settings={}, version=1)
    rows = []
    for position, step in enumerate(steps):
        kind, config = split_step(step)
        rows.append(Step(position=position, type=kind, config=config))
    sequence.steps = rows
    return sequence


# Asking

def _ask(client: Client, job: Job, outcome: Outcome, messages: list[dict[str, str]], schema: dict[str, Any],
         name: str, build: Callable[[dict[str, Any]], Any]) -> Any:
    """Ask, parse and ``build`` (which validates); on an invalid answer, one more
    call showing the model its errors; then the draft fails with them."""
    errors: dict[str, list[str]] = {}
    for attempt in range(2):
        _check_budget(job, outcome)
        try:
            completion = client.complete(messages, schema=schema, schema_name=name, max_tokens=MAX_TOKENS)
        except (AiTruncated, AiMalformed) as exc:
            if exc.completion is not None:  # a cut-off or empty answer's tokens were spent all the same
                _count(outcome, exc.completion)
            raise
        _count(outcome, completion)
        content = completion.content or ""
        try:
            answer = json.loads(content)
            if not isinstance(answer, dict):
                raise ValueError("the answer is not a JSON object")
        except ValueError as exc:
            errors = {"answer": [f"Not a JSON object matching the schema: {exc}"]}
        else:
            try:
                return build(answer)
            except InvalidInputError as exc:
                errors = exc.errors
        if attempt == 0:
            messages = messages + prompts.invalid_answer(content, errors)
    raise _Failed("the model's answer was invalid twice: " + "; ".join(
        f"{path}: {' '.join(messages_)}" for path, messages_ in sorted(errors.items())))


def _check_budget(job: Job, outcome: Outcome) -> None:
    spent = outcome.usage["prompt_tokens"] + outcome.usage["completion_tokens"]
    if job.budget_left is not None and spent >= job.budget_left:
        raise BudgetExceededError("the account's daily AI budget (ESEQ_AI_DAILY_TOKENS) ran out during this draft")


def _count(outcome: Outcome, completion: Any) -> None:
    outcome.usage["prompt_tokens"] += int(getattr(completion, "prompt_tokens", 0) or 0)
    outcome.usage["completion_tokens"] += int(getattr(completion, "completion_tokens", 0) or 0)
    outcome.usage["model_seconds"] += float(getattr(completion, "model_seconds", 0.0) or 0.0)
    if getattr(completion, "model", None):
        outcome.model = completion.model
