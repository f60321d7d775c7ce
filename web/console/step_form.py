"""The sequence editor's form: steps as HTML fields and back, and the API's
validation messages put next to the step (and field) their path names.

A step is a type, the email step's subject, HTML and text as plain fields, and
every other field as a JSON object in a textarea, with a working default per
type. What the form gives is assembled into the API's own body
(``{"name", "description", "settings", "steps": [{"type", ...}]}``) and goes
through the same schema (``SequenceInSchema``) and the same domain validation
(``sequencing.steps``) as ``POST /email-sequences``: the console adds no rule of
its own beyond reading the JSON.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from models.sequence import STEP_TYPES

EMAIL_FIELDS = ("subject", "html", "text")
MAX_FORM_STEPS = 200  # sequencing.steps.MAX_STEPS: more is refused there, this only bounds the loop

# What a new step of each type starts with: valid as it stands, so adding a step
# never starts with an error, and showing each type's main fields.
DEFAULTS: dict[str, dict[str, Any]] = {
    "email": {},
    "delay": {"days": 1},
    "condition": {"condition": {"type": "opened"}, "else_goto": "exit"},
    "action": {"action": "add_tag", "tag": "engaged"},
    "webhook": {"url": "https://example.com/hook", "payload": {}},
    "wait_until": {"until": {"opened": True}, "timeout_seconds": 86400, "on_timeout_goto": "next"},
    "goto": {"goto": 0},
}
HELP = {
    "email": 'Optional: template_id, variants, experiment, send_at. E.g. {"template_id": 3}',
    "delay": '{"seconds": 3600} or {"days": 1, "hours": 2} or {"until": {"weekday": "monday", "time": "09:00"}}',
    "condition": 'condition: opened, clicked, has_tag, attribute, event or score; else_goto: a position or "exit"',
    "action": 'add_tag/remove_tag {"tag"}, set_attribute {"name", "value"}, move_to_sequence {"sequence_id"}, exit',
    "webhook": '{"url": "https://...", "payload": {...}}: posted, signed with the account\'s webhook secret',
    "wait_until": 'until: {"event": name}, {"opened": true}, {"clicked": true} or {"tag": t}; '
                  'on_timeout_goto: a position, "exit" or "next"',
    "goto": '{"goto": position}',
}


@dataclass
class StepFields:
    """One step as the form shows it."""

    type: str
    subject: str = ""
    html: str = ""
    text: str = ""
    extra: str = "{}"

    @property
    def help(self) -> str:
        return HELP.get(self.type, "")


@dataclass
class EditorForm:
    """The whole editor: what was typed, and errors keyed by form field name
    (``name``, ``settings``, ``steps-2-subject``, ``steps-2-extra``, ``steps-2``)."""

    name: str = ""
    description: str = ""
    settings: str = ""
    steps: list[StepFields] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add_error(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)


def new_step(kind: str) -> StepFields:
    kind = kind if kind in STEP_TYPES else "email"
    if kind == "email":
        return StepFields("email", subject="Welcome",
                          html="<p>Hello!</p>", text="Hello!")
    return StepFields(kind, extra=json.dumps(DEFAULTS[kind]))


def form_of(name: str, description: str | None, settings: dict[str, Any] | None,
            steps: list[dict[str, Any]]) -> EditorForm:
    """The editor filled from a stored sequence (steps as ``dump_steps`` gives them)."""
    fields_ = []
    for step in steps:
        body = {k: v for k, v in step.items() if k not in ("id", "position", "type")}
        plain = {k: body.pop(k) for k in EMAIL_FIELDS if step["type"] == "email" and isinstance(body.get(k), str)}
        fields_.append(StepFields(step["type"], extra=json.dumps(body, indent=1) if body else "{}", **plain))
    return EditorForm(name=name, description=description or "",
                      settings=json.dumps(settings, indent=1) if settings else "", steps=fields_)


def read_form(form: MultiDict[str, str]) -> EditorForm:
    """What the browser posted, as typed (nothing is judged here)."""
    count = form.get("step_count", "0")
    total = min(int(count), MAX_FORM_STEPS) if count.isdigit() else 0
    steps = [StepFields(type=form.get(f"steps-{i}-type", "email"), extra=form.get(f"steps-{i}-extra", "{}"),
                        **{k: form.get(f"steps-{i}-{k}", "") for k in EMAIL_FIELDS}) for i in range(total)]
    return EditorForm(name=form.get("name", ""), description=form.get("description", ""),
                      settings=form.get("settings", ""), steps=steps)


def edit(editor: EditorForm, op: str, add_type: str) -> bool:
    """Apply a button other than Save (add, remove, move up); False for Save."""
    verb, _, index = op.partition(":")
    position = int(index) if index.isdigit() else -1
    if verb == "add":
        editor.steps.append(new_step(add_type))
    elif verb == "remove" and 0 <= position < len(editor.steps):
        editor.steps.pop(position)
    elif verb == "up" and 0 < position < len(editor.steps):
        editor.steps[position - 1], editor.steps[position] = editor.steps[position], editor.steps[position - 1]
    else:
        return False
    return True


def _json_object(editor: EditorForm, raw: str, key: str, empty: Any) -> Any:
    if not raw.strip():
        return empty
    try:
        value = json.loads(raw)
    except ValueError as exc:
        editor.add_error(key, f"Not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).")
        return None
    if not isinstance(value, dict):
        editor.add_error(key, "Must be a JSON object ({...}).")
        return None
    return value


def api_body(editor: EditorForm) -> dict[str, Any] | None:
    """The ``POST /email-sequences`` body, or None when some JSON cannot be read
    (the errors are then on ``editor``)."""
    settings = _json_object(editor, editor.settings, "settings", None)
    steps = []
    for i, step in enumerate(editor.steps):
        extra = _json_object(editor, step.extra, f"steps-{i}-extra", {})
        if extra is None:
            continue
        body = {**extra, "type": step.type}
        if step.type == "email":
            body.update({k: getattr(step, k) for k in EMAIL_FIELDS if getattr(step, k)})
        steps.append(body)
    if editor.errors:
        return None
    return {"name": editor.name, "description": editor.description or None, "settings": settings, "steps": steps}


def place_errors(editor: EditorForm, errors: dict[str, Any]) -> None:
    """Put each message where its path points: ``steps.2.subject`` next to step 2's
    subject, ``steps.2.condition.type`` on step 2's JSON (with the rest of the path
    said), ``steps.2`` (a pre-flight failure) on step 2 as a whole."""
    for path, messages in errors.items():
        texts = messages if isinstance(messages, list) else [messages]
        texts = [t if isinstance(t, str) else json.dumps(t) for t in texts]
        head, _, rest = str(path).partition(".")
        if head != "steps" or not rest:
            key = head if head in ("name", "description", "settings") else "form"
            prefix = f"{rest}: " if head == "settings" and rest else ("" if key != "form" else f"{path}: ")
            for text in texts:
                editor.add_error(key, prefix + text)
            continue
        index, _, field_path = rest.partition(".")
        if not index.isdigit() or int(index) >= len(editor.steps):
            for text in texts:
                editor.add_error("form", f"{path}: {text}")
            continue
        step = editor.steps[int(index)]
        if not field_path:
            key, prefix = f"steps-{index}", ""
        elif field_path == "type":
            key, prefix = f"steps-{index}-type", ""
        elif step.type == "email" and field_path in EMAIL_FIELDS:
            key, prefix = f"steps-{index}-{field_path}", ""
        else:
            key, prefix = f"steps-{index}-extra", f"{field_path}: "
        for text in texts:
            editor.add_error(key, prefix + text)
