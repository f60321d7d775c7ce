"""Validation and normalisation of step definitions: the one place that says what a
step may contain, so the engine can trust ``Step.config`` without re-checking it.

A step arrives as ``{"type": ..., **fields}``; what is stored is ``Step.type`` and
``Step.config`` (the same dict minus ``type``), with ``Step.position`` its index.
Errors name the field path (``steps.2.seconds``) so a client can point at the
mistake. No I/O: references to templates and sequences are checked through
callables the caller supplies.

Stored ``Step.config`` by type (``?`` = key absent when not given):

    email       {subject?, html?, text?, template_id?, variants?: [{name, subject?, html?, text?, weight}],
                 experiment?: {metric, confidence?, min_per_variant?, holdout_percent? (0-50), auto_promote?},
                 send_at?: "best_time"}
                subject is present unless template_id is; weight defaults to 1; an experiment
                needs two variants or more (its defaults live in analytics/experiments.py)
    delay       {seconds} | {days?, hours?, minutes?} | {until: {weekday: "monday".., time: "HH:MM"}}, + timezone?
    condition   {condition: {type: opened|clicked, step?} | {type: has_tag, tag}
                 | {type: attribute, name, op, value?} | {type: event, name, within_seconds?}
                 | {type: score, score: churn_risk|engagement, op: gt|gte|lt|lte, value: 0..1},
                 else_goto: position | "exit", wait_seconds?}
    action      {action: add_tag|remove_tag, tag} | {action: set_attribute, name, value}
                | {action: move_to_sequence, sequence_id} | {action: exit}
    webhook     {url, method: "POST", payload?}
    wait_until  {until: {event} | {opened: true} | {clicked: true} | {tag}, timeout_seconds,
                 on_timeout_goto: position | "exit" | "next"}
    goto        {goto: position}

Numbers of seconds/days/hours/minutes may be int or float. Every jump target is an
existing position, and a jump backwards crosses a delay, wait_until or waiting
condition, so no loop can spin without pausing.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from analytics.experiments import HOLDOUT_ARM
from content.render import TemplateRenderError, check_template
from core.validators import is_int
from models.sequence import STEP_TYPES
from sequencing.errors import MAX_INT, Problems

MAX_STEPS = 200
MAX_VARIANTS = 10
MAX_ARM_HOLDOUT = 50  # an experiment's "no email" arm: at most half of the step's visitors
MAX_SECONDS = 10 * 365 * 86400  # ten years: longer is a typo, and keeps datetimes in range
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
CONDITION_TYPES = ("opened", "clicked", "has_tag", "attribute", "event", "score")
SCORES = ("churn_risk", "engagement")
SCORE_OPS = ("gt", "gte", "lt", "lte")
SEND_AT = ("best_time",)
ATTRIBUTE_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists")
EXPERIMENT_METRICS = ("opened", "clicked", "converted")
ACTIONS = ("add_tag", "remove_tag", "set_attribute", "move_to_sequence", "exit")
READ_ONLY = ("id", "position")  # echoed by GET; accepted and dropped so a GET body can be PUT back


@dataclass(frozen=True)
class References:
    """How validation asks whether an id belongs to the caller's account."""

    template_exists: Callable[[int], bool] = lambda _id: False
    sequence_exists: Callable[[int], bool] = lambda _id: False


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError on odd paths: not a zone either way
        return False
    return True


def _jinja(p: Problems, obj: dict[str, Any], key: str, path: str, *, required: bool = False,
           subject: bool = False) -> str | None:
    value = p.text(obj, key, path, required=required, max_len=998 if subject else 500_000, single_line=subject)
    if value is not None:
        try:
            check_template(value)
        except TemplateRenderError as exc:
            p.add(f"{path}.{key}", f"Invalid template: {exc}")
            return None
    return value


def _email(p: Problems, step: dict[str, Any], path: str, refs: References) -> dict[str, Any]:
    p.unknown(step, ("subject", "html", "text", "template_id", "variants", "experiment", "send_at"), path)
    config: dict[str, Any] = {}
    if step.get("send_at") is not None:
        if step["send_at"] in SEND_AT:
            config["send_at"] = step["send_at"]
        else:
            p.add(f"{path}.send_at", "Must be one of: " + ", ".join(SEND_AT) + ".")
    template_id = p.integer(step, "template_id", path, minimum=1)
    if template_id is not None:
        if refs.template_exists(template_id):
            config["template_id"] = template_id
        else:
            p.add(f"{path}.template_id", "Template not found.")
    for key in ("subject", "html", "text"):
        value = _jinja(p, step, key, path, required=key == "subject" and "template_id" not in step, subject=key == "subject")
        if value is not None:
            config[key] = value
    if step.get("variants") is not None:
        config["variants"] = _variants(p, step["variants"], f"{path}.variants")
    if step.get("experiment") is not None:
        config["experiment"] = _experiment(p, step["experiment"], f"{path}.experiment", len(config.get("variants", [])))
        if config["experiment"].get("holdout_percent") and any(
                v.get("name") == HOLDOUT_ARM for v in config.get("variants", [])):
            p.add(f"{path}.experiment.holdout_percent",
                  f"The holdout arm is reported as '{HOLDOUT_ARM}': rename the variant of that name.")
    return config


def _experiment(p: Problems, raw: Any, path: str, variants: int) -> dict[str, Any]:
    """An A/B test of the step's variants: what counts as success and how sure to be."""
    experiment = p.mapping(raw, path)
    if experiment is None:
        return {}
    p.unknown(experiment, ("metric", "confidence", "min_per_variant", "holdout_percent", "auto_promote"), path)
    if variants < 2:
        p.add(path, "An experiment needs at least two variants.")
    out: dict[str, Any] = {}
    if experiment.get("metric") not in EXPERIMENT_METRICS:
        p.add(f"{path}.metric", "Must be one of: " + ", ".join(EXPERIMENT_METRICS) + ".")
    else:
        out["metric"] = experiment["metric"]
    confidence = experiment.get("confidence")
    if confidence is not None:
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.8 <= confidence <= 0.999:
            p.add(f"{path}.confidence", "Must be a number between 0.8 and 0.999.")
        else:
            out["confidence"] = confidence
    for key, value in (("min_per_variant", p.integer(experiment, "min_per_variant", path, minimum=1,
                                                     maximum=10_000_000)),
                       ("holdout_percent", p.number(experiment, "holdout_percent", path, maximum=MAX_ARM_HOLDOUT))):
        if value is not None:
            out[key] = value
    if experiment.get("auto_promote") is not None:
        if isinstance(experiment["auto_promote"], bool):
            out["auto_promote"] = experiment["auto_promote"]
        else:
            p.add(f"{path}.auto_promote", "Not a valid boolean.")
    return out


def _variants(p: Problems, raw: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_VARIANTS:
        p.add(path, f"Must be a list of 1 to {MAX_VARIANTS} variants.")
        return []
    variants, names = [], set()
    for index, item in enumerate(raw):
        where = f"{path}.{index}"
        variant = p.mapping(item, where)
        if variant is None:
            continue
        p.unknown(variant, ("name", "subject", "html", "text", "weight"), where)
        out: dict[str, Any] = {}
        name = p.text(variant, "name", where, required=True, max_len=100, single_line=True)
        if name is not None:
            if name in names:
                p.add(f"{where}.name", "Variant names must be unique.")
            names.add(name)
            out["name"] = name
        for key in ("subject", "html", "text"):
            value = _jinja(p, variant, key, where, subject=key == "subject")
            if value is not None:
                out[key] = value
        out["weight"] = p.integer(variant, "weight", where, minimum=1, maximum=1_000_000) or 1
        variants.append(out)
    return variants


def _delay(p: Problems, step: dict[str, Any], path: str) -> dict[str, Any]:
    p.unknown(step, ("seconds", "days", "hours", "minutes", "until", "timezone"), path)
    config: dict[str, Any] = {}
    forms = [f for f, keys in (("seconds", ("seconds",)), ("span", ("days", "hours", "minutes")), ("until", ("until",)))
             if any(step.get(k) is not None for k in keys)]
    if len(forms) != 1:
        p.add(f"{path}.seconds", "Give exactly one of: seconds; days/hours/minutes; until.")
    elif forms[0] == "seconds":
        seconds = p.number(step, "seconds", path, maximum=MAX_SECONDS, allow_zero=False)
        if seconds is not None:
            config["seconds"] = seconds
    elif forms[0] == "span":
        limits = {"days": MAX_SECONDS / 86400, "hours": MAX_SECONDS / 3600, "minutes": MAX_SECONDS / 60}
        parts = {k: p.number(step, k, path, maximum=m) for k, m in limits.items() if step.get(k) is not None}
        total = sum(v * {"days": 86400, "hours": 3600, "minutes": 60}[k] for k, v in parts.items() if v is not None)
        if None not in parts.values():
            if total <= 0:
                p.add(f"{path}.{next(iter(parts))}", "The delay must add up to more than 0.")
            elif total > MAX_SECONDS:
                p.add(f"{path}.{next(iter(parts))}", "The delay must add up to at most ten years.")
            else:
                config.update(parts)
    else:
        until = p.mapping(step["until"], f"{path}.until")
        if until is not None:
            p.unknown(until, ("weekday", "time"), f"{path}.until")
            weekday = p.text(until, "weekday", f"{path}.until", required=True, max_len=20)
            if weekday is not None and weekday.lower() not in WEEKDAYS:
                p.add(f"{path}.until.weekday", "Must be one of: " + ", ".join(WEEKDAYS) + ".")
            at = p.text(until, "time", f"{path}.until", max_len=5) or "09:00"
            if not HHMM.match(at):
                p.add(f"{path}.until.time", "Must be a time as HH:MM.")
            if weekday is not None:
                config["until"] = {"weekday": weekday.lower(), "time": at}
    tz = p.text(step, "timezone", path, max_len=64)
    if tz is not None:
        if valid_timezone(tz):
            config["timezone"] = tz
        else:
            p.add(f"{path}.timezone", "Not a known IANA timezone.")
    return config


def _condition(p: Problems, step: dict[str, Any], path: str) -> dict[str, Any]:
    p.unknown(step, ("condition", "else_goto", "wait_seconds"), path)
    config: dict[str, Any] = {}
    where = f"{path}.condition"
    cond = p.mapping(step.get("condition"), where) if "condition" in step else None
    if "condition" not in step:
        p.add(where, "Missing data for required field.")
    if cond is not None:
        kind = cond.get("type")
        if kind not in CONDITION_TYPES:
            p.add(f"{where}.type", "Must be one of: " + ", ".join(CONDITION_TYPES) + ".")
        else:
            config["condition"] = _condition_fields(p, cond, kind, where)
    config["else_goto"] = _target(p, step, "else_goto", path, required=True, words=("exit",))
    wait = p.number(step, "wait_seconds", path, maximum=MAX_SECONDS)
    if wait is not None:
        config["wait_seconds"] = wait
    return config


def _condition_fields(p: Problems, cond: dict[str, Any], kind: str, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    if kind in ("opened", "clicked"):
        p.unknown(cond, ("type", "step"), where)
        if cond.get("step") is not None:
            out["step"] = p.integer(cond, "step", where, minimum=0)
    elif kind == "has_tag":
        p.unknown(cond, ("type", "tag"), where)
        out["tag"] = p.text(cond, "tag", where, required=True, max_len=100)
    elif kind == "attribute":
        p.unknown(cond, ("type", "name", "op", "value"), where)
        out["name"] = p.text(cond, "name", where, required=True, max_len=100)
        op = cond.get("op", "eq")
        if op not in ATTRIBUTE_OPS:
            p.add(f"{where}.op", "Must be one of: " + ", ".join(ATTRIBUTE_OPS) + ".")
        out["op"] = op
        if op != "exists":
            if "value" not in cond:
                p.add(f"{where}.value", "Missing data for required field.")
            elif p.json_value(cond["value"], f"{where}.value"):
                out["value"] = cond["value"]
    elif kind == "score":
        out.update(_score_fields(p, cond, where))
    else:
        p.unknown(cond, ("type", "name", "within_seconds"), where)
        out["name"] = p.text(cond, "name", where, required=True, max_len=100)
        within = p.number(cond, "within_seconds", where, maximum=MAX_SECONDS, allow_zero=False)
        if within is not None:
            out["within_seconds"] = within
    return out


def _score_fields(p: Problems, cond: dict[str, Any], where: str) -> dict[str, Any]:
    """``{score, op, value}``: a subscriber's learned score against a number in 0..1."""
    p.unknown(cond, ("type", "score", "op", "value"), where)
    out: dict[str, Any] = {}
    if cond.get("score") not in SCORES:
        p.add(f"{where}.score", "Must be one of: " + ", ".join(SCORES) + ".")
    else:
        out["score"] = cond["score"]
    if cond.get("op") not in SCORE_OPS:
        p.add(f"{where}.op", "Must be one of: " + ", ".join(SCORE_OPS) + ".")
    else:
        out["op"] = cond["op"]
    if cond.get("value") is None:
        p.add(f"{where}.value", "Missing data for required field.")
    else:
        value = p.number(cond, "value", where, maximum=1)
        if value is not None:
            out["value"] = value
    return out


def _target(p: Problems, step: dict[str, Any], key: str, path: str, *, required: bool,
            words: tuple[str, ...]) -> Any:
    """A jump target: a step position (checked later against the list) or one of ``words``."""
    if step.get(key) is None:
        if required:
            p.add(f"{path}.{key}", "Missing data for required field.")
        return None
    value = step[key]
    if (is_int(value) and 0 <= value <= MAX_INT) or value in words:
        return value
    allowed = " or ".join(("a step position",) + tuple(f'"{w}"' for w in words))
    p.add(f"{path}.{key}", f"Must be {allowed}.")
    return None


def _action(p: Problems, step: dict[str, Any], path: str, refs: References) -> dict[str, Any]:
    action = step.get("action")
    needs = {"add_tag": ("tag",), "remove_tag": ("tag",), "set_attribute": ("name", "value"),
             "move_to_sequence": ("sequence_id",), "exit": ()}
    if action not in ACTIONS:
        p.add(f"{path}.action", "Must be one of: " + ", ".join(ACTIONS) + ".")
        return {}
    p.unknown(step, ("action",) + needs[action], path)
    config: dict[str, Any] = {"action": action}
    if action in ("add_tag", "remove_tag"):
        config["tag"] = p.text(step, "tag", path, required=True, max_len=100)
    elif action == "set_attribute":
        config["name"] = p.text(step, "name", path, required=True, max_len=100)
        if "value" not in step:
            p.add(f"{path}.value", "Missing data for required field.")
        elif p.json_value(step["value"], f"{path}.value"):
            config["value"] = step["value"]
    elif action == "move_to_sequence":
        target = p.integer(step, "sequence_id", path, required=True, minimum=1)
        if target is not None and not refs.sequence_exists(target):
            p.add(f"{path}.sequence_id", "Sequence not found.")
        config["sequence_id"] = target
    return config


def _webhook(p: Problems, step: dict[str, Any], path: str) -> dict[str, Any]:
    p.unknown(step, ("url", "payload", "method"), path)
    config: dict[str, Any] = {"method": "POST"}
    url = p.text(step, "url", path, required=True, max_len=2000, single_line=True)
    if url is not None:
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url
        except ValueError:  # e.g. a malformed IPv6 literal
            ok = False
        if ok:
            config["url"] = url
        else:
            p.add(f"{path}.url", "Must be an http or https URL with a host.")
    if step.get("payload") is not None:
        payload = p.mapping(step["payload"], f"{path}.payload")
        if payload is not None and p.json_value(payload, f"{path}.payload"):
            config["payload"] = payload
    method = step.get("method")
    if method is not None and (not isinstance(method, str) or method.upper() != "POST"):
        p.add(f"{path}.method", 'Must be "POST".')
    return config


def _wait_until(p: Problems, step: dict[str, Any], path: str) -> dict[str, Any]:
    p.unknown(step, ("until", "timeout_seconds", "on_timeout_goto"), path)
    config: dict[str, Any] = {}
    where = f"{path}.until"
    until = p.mapping(step.get("until"), where)
    kinds = ("event", "opened", "clicked", "tag")
    if until is not None:
        given = [k for k in kinds if k in until]
        if len(given) != 1:
            p.add(where, "Give exactly one of: event, opened, clicked, tag.")
        elif given[0] in ("event", "tag"):
            p.unknown(until, given, where)
            config["until"] = {given[0]: p.text(until, given[0], where, required=True, max_len=100)}
        else:  # the engine waits on the latest email sent before this step
            p.unknown(until, given, where)
            if until[given[0]] is not True:
                p.add(f"{where}.{given[0]}", "Must be true.")
            config["until"] = {given[0]: True}
    if step.get("timeout_seconds") is None:
        p.add(f"{path}.timeout_seconds", "Missing data for required field.")
    config["timeout_seconds"] = p.number(step, "timeout_seconds", path, maximum=MAX_SECONDS, allow_zero=False)
    config["on_timeout_goto"] = _target(p, step, "on_timeout_goto", path, required=False, words=("exit", "next")) or "next"
    return config


def _goto(p: Problems, step: dict[str, Any], path: str) -> dict[str, Any]:
    p.unknown(step, ("goto",), path)
    return {"goto": _target(p, step, "goto", path, required=True, words=())}


def _pauses(step: dict[str, Any]) -> bool:
    """Whether an enrollment waits at this step, which is what keeps a loop from spinning."""
    return step["type"] in ("delay", "wait_until") or bool(step["type"] == "condition" and step.get("wait_seconds"))


def _check_references(p: Problems, steps: list[dict[str, Any]], path: str) -> None:
    """Jumps must land on a step, loops must wait somewhere, and opened/clicked must
    refer to an email step."""
    emails = {i for i, s in enumerate(steps) if s["type"] == "email"}
    for i, step in enumerate(steps):
        for key in ("else_goto", "goto", "on_timeout_goto"):
            target = step.get(key)
            if not is_int(target):
                continue
            if target >= len(steps):
                p.add(f"{path}.{i}.{key}", f"No step at position {target}.")
            elif target <= i and key != "on_timeout_goto" and not any(_pauses(s) for s in steps[target:i + 1]):
                p.add(f"{path}.{i}.{key}", f"Jumps back to step {target} with no delay or wait in between.")
        cond = step.get("condition") if step["type"] == "condition" else step.get("until")
        if not isinstance(cond, dict) or not ({"opened", "clicked"} & {cond.get("type"), *cond}):
            continue
        field = f"{path}.{i}.condition" if step["type"] == "condition" else f"{path}.{i}.until"
        ref = cond.get("step")
        if is_int(ref) and ref not in emails:
            p.add(f"{field}.step", f"Step {ref} is not an email step.")
        elif ref is None and not any(e < i for e in emails):
            p.add(field, "There is no email step before this one to look at.")


def validate_steps(raw: Any, refs: References | None = None, path: str = "steps") -> list[dict[str, Any]]:
    """The normalised step list (``{"type", **config}`` each), or InvalidInputError."""
    refs = refs or References()
    p = Problems()
    if not isinstance(raw, list):
        p.add(path, "Must be a list of steps.")
        p.raise_if_any()
    if not 1 <= len(raw) <= MAX_STEPS:
        p.add(path, f"A sequence needs between 1 and {MAX_STEPS} steps.")
        p.raise_if_any()
    steps: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        where = f"{path}.{index}"
        step = p.mapping(item, where)
        kind = step.get("type") if step is not None else None
        if step is None or kind not in STEP_TYPES:
            if step is not None:
                p.add(f"{where}.type", "Must be one of: " + ", ".join(STEP_TYPES) + ".")
            steps.append({"type": None})
            continue
        body = {k: v for k, v in step.items() if k not in READ_ONLY and k != "type"}
        if kind == "email":
            config = _email(p, body, where, refs)
        elif kind == "action":
            config = _action(p, body, where, refs)
        else:
            config = _PLAIN[kind](p, body, where)
        steps.append({"type": kind, **config})
    _check_references(p, steps, path)
    p.raise_if_any()
    return steps


def split_step(step: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(``Step.type``, ``Step.config``) of a normalised step."""
    config = dict(step)
    return config.pop("type"), config


_PLAIN: dict[str, Callable[[Problems, dict[str, Any], str], dict[str, Any]]] = {
    "delay": _delay, "condition": _condition, "webhook": _webhook, "wait_until": _wait_until, "goto": _goto,
}
