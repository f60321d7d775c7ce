"""JSON schemas for the model's answers (``response_format: json_schema``), and the
step each answer becomes.

The schemas are the API's own email and delay steps (``sequencing.steps``: the same
field names and limits) in the strict form chat-completions servers accept: every
property required, no extra ones, ``null`` where a field may be absent. A schema
only shapes the answer; what is kept is what ``sequencing.steps.validate_steps``
accepts, as for a client's ``POST /email-sequences``. A ``preheader`` (the line
inboxes show after the subject) has no field of its own in a step, so it becomes
the hidden first line of the HTML, as email authors write it.
"""
from __future__ import annotations

from html import escape
from typing import Any

from sequencing.steps import MAX_VARIANTS

SUBJECT_MAX = 998  # sequencing.steps: a subject is one header line
PREHEADER = '<div style="display:none;max-height:0;overflow:hidden">{}</div>'

_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": ["string", "null"]}
_EMAIL_FIELDS = {
    "subject": {"type": "string", "description": f"One line, at most {SUBJECT_MAX} characters; Jinja2 allowed"},
    "preheader": {"type": ["string", "null"], "description": "The inbox preview line, or null"},
    "html": {"type": "string", "description": "The email's HTML body (no <html>/<head>); Jinja2 allowed"},
    "text": {"type": "string", "description": "The plain-text part, saying the same as the HTML"},
}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": list(properties), "properties": properties}


EMAIL_STEP = _object({"type": {"type": "string", "enum": ["email"]}, **_EMAIL_FIELDS})
DELAY_STEP = _object({"type": {"type": "string", "enum": ["delay"]},
                      "days": {"type": "number", "description": "Days to wait before the next step, more than 0"}})

SEQUENCE = _object({
    "name": _TEXT,
    "description": _TEXT,
    "exit_event": {"type": ["string", "null"],
                   "description": "A custom event that means the goal was reached (e.g. purchase), or null"},
    "steps": {"type": "array", "items": {"anyOf": [EMAIL_STEP, DELAY_STEP]}},
})
EMAIL = _object(dict(_EMAIL_FIELDS))
FIX = _object({**_EMAIL_FIELDS, "cannot_fix": {**_MAYBE_TEXT, "description": (
    "null when the email is revised to pass; otherwise why it cannot pass without changing its meaning")}})


def subject_lines(count: int) -> dict[str, Any]:
    """``count`` subject lines (1 to the API's MAX_VARIANTS)."""
    assert 1 <= count <= MAX_VARIANTS
    return _object({"subject_lines": {"type": "array", "items": {"type": "string"},
                                      "description": f"Exactly {count} distinct subject lines"}})


def email_step(answer: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """An API email step from the model's email fields (kept over ``base``, the step's
    other settings: variants, experiment, send_at)."""
    step = {k: v for k, v in (base or {}).items() if k not in ("subject", "html", "text", "template_id")}
    html = answer.get("html")
    preheader = answer.get("preheader")
    if isinstance(html, str) and isinstance(preheader, str) and preheader.strip():
        html = PREHEADER.format(escape(preheader.strip())) + html
    step.update({"type": "email", "subject": answer.get("subject"), "html": html, "text": answer.get("text")})
    return step


def sequence_body(answer: dict[str, Any]) -> dict[str, Any]:
    """The ``POST /email-sequences`` body the model's sequence answer stands for."""
    steps = []
    for step in answer.get("steps") or []:
        if isinstance(step, dict) and step.get("type") == "delay":
            steps.append({"type": "delay", "days": step.get("days")})
        elif isinstance(step, dict):
            steps.append(email_step(step))
        else:
            steps.append(step)
    body: dict[str, Any] = {"name": answer.get("name"), "description": answer.get("description"), "steps": steps}
    event = answer.get("exit_event")
    if isinstance(event, str) and event.strip():
        body["settings"] = {"exit_events": [event.strip()], "goal": {"event": event.strip()}}
    return body
