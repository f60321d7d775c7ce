"""One handler per step type: given an enrollment on a step, decide the move.

Handlers read and change the enrollment's ``state`` (waits in progress, emails
sent per step) and append outside effects (outbox messages, webhook calls) to the
batch; they never commit and never talk to the network. The engine applies the move.

Enrollment state keys:
- ``wait``: ``{"step": position, "until": iso, "since": iso}`` while a delay,
  a condition's wait or a wait_until is in progress on that step;
- ``sent``: ``{position: idempotency key}`` of the last email sent at each step;
- ``visits``: ``{position: n}`` how often an email step has sent (loops resend);
- ``withheld``: ``{position: n}`` how often an email step was passed without
  sending, for an enrollment in the sequence's holdout group (sequencing.holdout);
- ``arm_held``: ``{position: n}`` how often an email step was passed without
  sending because its experiment's holdout arm drew the enrollment
  (``experiment.holdout_percent``); each such visit is also written as a row
  (models.ExperimentHoldout) for the experiments' counts.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sequencing.conditions import evaluate
from sequencing.holdout import in_arm_holdout
from sequencing.moves import Exit, Goto, Move, Next, Wait, branch
from sequencing.timing import delay_until, next_send_opening, zone

if TYPE_CHECKING:
    from models import Step
    from sequencing.engine import Batch
    from sequencing.rows import EnrollmentRow, SubscriberRow

# How often a wait_until with a long timeout looks again; events and opens also
# wake waiting enrollments at once (sequencing.wakeups), so this is a backstop.
WAIT_POLL = timedelta(minutes=5)


def _iso(value: datetime) -> str:
    return value.isoformat()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def start_or_check_wait(enrollment: EnrollmentRow, step: Step, now: datetime, until: datetime) -> datetime | None:
    """Start a wait on this step (returning its end) or, on a later visit, return
    None once the wait is over."""
    state = dict(enrollment.state or {})
    wait = state.get("wait")
    if wait and wait.get("step") == step.position:
        end = _parse(wait["until"])
        return end if now < end else None
    state["wait"] = {"step": step.position, "until": _iso(until), "since": _iso(now)}
    enrollment.state = state
    return until if now < until else None


def wait_started_at(enrollment: EnrollmentRow, step: Step, now: datetime) -> datetime:
    wait = (enrollment.state or {}).get("wait")
    if wait and wait.get("step") == step.position:
        return _parse(wait["since"])
    return now


def clear_wait(enrollment: EnrollmentRow) -> None:
    if (enrollment.state or {}).get("wait"):
        enrollment.state = {k: v for k, v in enrollment.state.items() if k != "wait"}


def choose_variant(enrollment_id: int, step: Step, promoted: str | None = None) -> dict[str, Any] | None:
    """Deterministic weighted A/B choice: the same enrollment always gets the same
    variant, so a retried advance cannot switch it. ``promoted``, the stored winner
    of the step's experiment (Batch.promoted), takes every visit while it is still
    one of the step's variants."""
    variants = step.config.get("variants") or []
    if not variants:
        return None
    if promoted is not None:
        for variant in variants:
            if variant.get("name") == promoted:
                return variant
    weights = [max(int(v.get("weight", 1)), 0) for v in variants]
    total = sum(weights) or len(variants)
    digest = hashlib.sha256(f"{enrollment_id}:{step.id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for variant, weight in zip(variants, weights, strict=True):
        if point < weight:
            return variant
        point -= weight
    return variants[-1]


def handle_email(batch: Batch, enrollment: EnrollmentRow, step: Step, subscriber: SubscriberRow) -> Move:
    from sequencing.best_time import hold_for_best_time  # it builds on this module's waits

    held = hold_for_best_time(batch, enrollment, step, subscriber)
    if held is not None:
        return Wait(held)
    settings = batch.sequence(enrollment.sequence_id).settings or {}
    tz = zone(subscriber.timezone, settings.get("timezone"))
    opening = next_send_opening(batch.now, settings.get("send_window"), settings.get("quiet_days"), tz)
    if opening > batch.now:
        return Wait(opening)
    if enrollment.held_out:
        return _withhold(enrollment, step)
    if in_arm_holdout(step.id, enrollment.id, step.config.get("experiment")):
        return _hold_in_arm(batch, enrollment, step)
    capped_until = batch.frequency_cap_until(enrollment)
    if capped_until is not None:
        return Wait(capped_until)
    variant = choose_variant(enrollment.id, step, batch.promoted.get(step.id))
    state, visit = _take_visit(enrollment, step)
    variant_name = variant["name"] if variant else None
    key = f"{enrollment.id}:{step.id}:{variant_name or ''}:{visit}"
    batch.queue_message(enrollment, step, subscriber, variant_name, key, variant)
    sent = dict(state.get("sent") or {})
    sent[str(step.position)] = key
    state["sent"] = sent
    enrollment.state = state
    return Next()


def _withhold(enrollment: EnrollmentRow, step: Step) -> Move:
    """A held-out enrollment passes an email step unsent, at the moment a treated one
    would have been sent it (the send window is kept, so both groups walk on the same
    clock; the frequency cap is not, as nothing is sent). No message row is written:
    nothing can dispatch it and no count can take it for a send."""
    enrollment.state, _visit = _take_visit(enrollment, step, "withheld")
    return Next()


def _hold_in_arm(batch: Batch, enrollment: EnrollmentRow, step: Step) -> Move:
    """The step's experiment holdout arm: the visit sends nothing and passes on, as
    a sequence holdout's does (send window kept, no frequency cap, no message row),
    and is recorded (Batch.hold_in_arm) so the arm's visitors and what they did
    afterwards can be counted. A promoted winner does not end the arm: the winner's
    lift over no email keeps being measured."""
    enrollment.state, visit = _take_visit(enrollment, step, "arm_held")
    batch.hold_in_arm(enrollment, step, visit)
    return Next()


def handle_delay(batch: Batch, enrollment: EnrollmentRow, step: Step, subscriber: SubscriberRow) -> Move:
    settings = batch.sequence(enrollment.sequence_id).settings or {}
    tz = zone(step.config.get("timezone"), subscriber.timezone, settings.get("timezone"))
    pending = start_or_check_wait(enrollment, step, batch.now, delay_until(batch.now, step.config, tz))
    return Wait(pending) if pending else Next()


def handle_condition(batch: Batch, enrollment: EnrollmentRow, step: Step, subscriber: SubscriberRow) -> Move:
    wait_seconds = float(step.config.get("wait_seconds") or 0)
    since = wait_started_at(enrollment, step, batch.now)
    if wait_seconds > 0:
        pending = start_or_check_wait(enrollment, step, batch.now, batch.now + timedelta(seconds=wait_seconds))
        if pending:
            return Wait(pending)
    facts = batch.facts(enrollment, subscriber)
    if evaluate(step.config["condition"], step.position, facts, batch.now, since=None if wait_seconds == 0 else since):
        return Next()
    return branch(step.config.get("else_goto", "exit"))


def handle_wait_until(batch: Batch, enrollment: EnrollmentRow, step: Step, subscriber: SubscriberRow) -> Move:
    until = step.config.get("until") or {}
    timeout = float(step.config.get("timeout_seconds") or 0)
    since = wait_started_at(enrollment, step, batch.now)
    deadline = start_or_check_wait(enrollment, step, batch.now, batch.now + timedelta(seconds=timeout))
    facts = batch.facts(enrollment, subscriber)
    if "event" in until:
        condition: dict[str, Any] = {"type": "event", "name": until["event"]}
    elif until.get("clicked"):
        condition = {"type": "clicked"}
    elif until.get("opened"):
        condition = {"type": "opened"}
    else:
        condition = {"type": "has_tag", "tag": until.get("tag")}
    if evaluate(condition, step.position, facts, batch.now, since=since):
        return Next()
    if deadline is None:
        return branch(step.config.get("on_timeout_goto", "next"))
    return Wait(min(deadline, batch.now + WAIT_POLL))


def handle_action(batch: Batch, enrollment: EnrollmentRow, step: Step, subscriber: SubscriberRow) -> Move:
    config = step.config
    action = config.get("action")
    if action == "add_tag":
        if config["tag"] not in (subscriber.tags or []):
            subscriber.tags = [*(subscriber.tags or []), config["tag"]]
            batch.tag_added(subscriber, config["tag"])
    elif action == "remove_tag":
        subscriber.tags = [t for t in (subscriber.tags or []) if t != config["tag"]]
    elif action == "set_attribute":
        subscriber.attributes = {**(subscriber.attributes or {}), config["name"]: config.get("value")}
    elif action == "move_to_sequence":
        batch.enroll_elsewhere(enrollment, int(config["sequence_id"]))
        return Exit(f"moved_to_sequence:{config['sequence_id']}")
    elif action == "exit":
        return Exit("exit_action")
    return Next()


def _take_visit(enrollment: EnrollmentRow, step: Step, counter: str = "visits") -> tuple[dict[str, Any], int]:
    """This visit's number at the step (part of the outbox key, so a loop back sends
    again) and a copy of the state with the visit counted in ``counter`` (one of the
    ``{position: n}`` state keys of the module's docstring)."""
    state = dict(enrollment.state or {})
    visits = dict(state.get(counter) or {})
    visit = int(visits.get(str(step.position), 0))
    visits[str(step.position)] = visit + 1
    state[counter] = visits
    return state, visit


def handle_webhook(batch: Batch, enrollment: EnrollmentRow, step: Step, subscriber: SubscriberRow) -> Move:
    state, visit = _take_visit(enrollment, step)
    batch.queue_webhook(enrollment, step, subscriber, f"{enrollment.id}:{step.id}:{visit}")
    enrollment.state = state
    return Next()


def handle_goto(batch: Batch, enrollment: EnrollmentRow, step: Step, subscriber: SubscriberRow) -> Move:
    return Goto(int(step.config["goto"]))


HANDLERS: dict[str, Callable[[Batch, EnrollmentRow, Step, SubscriberRow], Move]] = {
    "email": handle_email,
    "delay": handle_delay,
    "condition": handle_condition,
    "wait_until": handle_wait_until,
    "action": handle_action,
    "webhook": handle_webhook,
    "goto": handle_goto,
}
