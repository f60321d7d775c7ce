"""Step and settings validation: what the engine may trust about Step.config. No I/O."""
from __future__ import annotations

from typing import Any

import pytest

from sequencing.errors import InvalidInputError
from sequencing.settings_schema import default_settings, validate_settings
from sequencing.steps import References, split_step, validate_steps

EMAIL = {"type": "email", "subject": "Hi {{ subscriber.first_name }}", "html": "<p>Hello</p>"}
REFS = References(template_exists=lambda i: i == 7, sequence_exists=lambda i: i == 9)


def errors_of(steps: Any, refs: References = REFS) -> dict[str, list[str]]:
    with pytest.raises(InvalidInputError) as caught:
        validate_steps(steps, refs)
    return caught.value.errors


def test_it_normalises_a_sequence_of_every_step_type():
    steps = validate_steps([
        EMAIL,
        {"type": "delay", "days": 1, "hours": 2},
        {"type": "condition", "condition": {"type": "opened"}, "else_goto": 5, "wait_seconds": 3600},
        {"type": "action", "action": "add_tag", "tag": "engaged"},
        {"type": "webhook", "url": "https://hooks.example.com/x", "payload": {"a": [1, 2]}},
        {"type": "wait_until", "until": {"event": "purchase"}, "timeout_seconds": 86400},
        {"type": "goto", "goto": 1},
    ], REFS)
    assert [s["type"] for s in steps] == ["email", "delay", "condition", "action", "webhook", "wait_until", "goto"]
    assert steps[4]["method"] == "POST"
    assert steps[5]["on_timeout_goto"] == "next"
    assert split_step(steps[1]) == ("delay", {"days": 1, "hours": 2})


def test_it_drops_the_read_only_id_and_position_so_a_get_body_can_be_put_back():
    assert validate_steps([{**EMAIL, "id": 3, "position": 0}], REFS) == [EMAIL]


def test_it_requires_at_least_one_step_in_a_list():
    assert "steps" in errors_of([])
    assert "steps" in errors_of({"type": "email"})
    assert "steps" in errors_of(None)


def test_it_refuses_a_step_that_is_not_an_object_or_has_an_unknown_type():
    errors = errors_of([EMAIL, "delay", {"type": "teleport"}, {"type": None}])
    assert set(errors) == {"steps.1", "steps.2.type", "steps.3.type"}


def test_it_requires_a_subject_unless_a_template_is_given():
    assert "steps.0.subject" in errors_of([{"type": "email", "html": "x"}])
    assert validate_steps([{"type": "email", "template_id": 7}], REFS) == [{"type": "email", "template_id": 7}]


def test_it_refuses_a_template_of_another_account():
    assert errors_of([{"type": "email", "template_id": 8}]) == {"steps.0.template_id": ["Template not found."]}


def test_it_refuses_broken_jinja_in_subject_body_and_variants():
    errors = errors_of([{"type": "email", "subject": "{{ oops", "html": "{% if %}",
                         "variants": [{"name": "a", "text": "{{ }}"}]}])
    assert set(errors) == {"steps.0.subject", "steps.0.html", "steps.0.variants.0.text"}


def test_it_refuses_a_subject_with_a_line_break():
    assert "steps.0.subject" in errors_of([{"type": "email", "subject": "Hi\r\nBcc: x@evil.test"}])


def test_it_defaults_variant_weights_and_refuses_duplicate_names_or_bad_weights():
    steps = validate_steps([{**EMAIL, "variants": [{"name": "a", "subject": "A"}, {"name": "b", "weight": 3}]}], REFS)
    assert [v["weight"] for v in steps[0]["variants"]] == [1, 3]
    errors = errors_of([{**EMAIL, "variants": [{"name": "a"}, {"name": "a", "weight": 0}, {"weight": True}]}])
    assert set(errors) == {"steps.0.variants.1.name", "steps.0.variants.1.weight",
                           "steps.0.variants.2.name", "steps.0.variants.2.weight"}


@pytest.mark.parametrize("delay", [
    {"seconds": 0}, {"seconds": -5}, {"seconds": "60"}, {"seconds": True}, {"seconds": 10**20},
    {"seconds": float("nan")}, {"seconds": float("inf")}, {"seconds": None}, {},
    {"seconds": 5, "days": 1},
])
def test_it_names_the_seconds_field_of_a_bad_delay(delay):
    assert "steps.1.seconds" in errors_of([EMAIL, {"type": "delay", **delay}])


def test_it_accepts_the_three_delay_forms_with_an_optional_timezone():
    steps = validate_steps([{"type": "delay", "seconds": 30}, {"type": "delay", "minutes": 90},
                            {"type": "delay", "until": {"weekday": "Monday", "time": "09:30"},
                             "timezone": "Europe/Paris"}], REFS)
    assert steps[2] == {"type": "delay", "until": {"weekday": "monday", "time": "09:30"}, "timezone": "Europe/Paris"}


def test_it_refuses_a_delay_that_adds_up_to_nothing_or_a_bad_weekday_time_or_zone():
    errors = errors_of([{"type": "delay", "days": 0, "hours": 0},
                        {"type": "delay", "until": {"weekday": "someday", "time": "25:00"}},
                        {"type": "delay", "seconds": 5, "timezone": "Mars/Olympus"}])
    assert set(errors) == {"steps.0.days", "steps.1.until.weekday", "steps.1.until.time", "steps.2.timezone"}


def test_it_checks_each_condition_type_and_its_fields():
    errors = errors_of([
        EMAIL,
        {"type": "condition", "condition": {"type": "attribute", "name": "plan", "op": "like", "value": 1}, "else_goto": "exit"},
        {"type": "condition", "condition": {"type": "has_tag"}, "else_goto": "exit"},
        {"type": "condition", "condition": {"type": "event", "name": "buy", "within_seconds": -1}, "else_goto": "exit"},
        {"type": "condition", "condition": {"type": "psychic"}, "else_goto": "exit"},
        {"type": "condition", "condition": {"type": "attribute", "name": "plan"}, "else_goto": "exit"},
        {"type": "condition", "condition": "opened", "else_goto": "exit"},
    ])
    assert set(errors) == {"steps.1.condition.op", "steps.2.condition.tag", "steps.3.condition.within_seconds",
                           "steps.4.condition.type", "steps.5.condition.value", "steps.6.condition"}


def test_it_requires_else_goto_to_be_an_existing_position_or_exit():
    base = {"type": "condition", "condition": {"type": "has_tag", "tag": "vip"}}
    assert "steps.0.else_goto" in errors_of([base])
    assert "steps.0.else_goto" in errors_of([{**base, "else_goto": "later"}])
    assert errors_of([{**base, "else_goto": 4}]) == {"steps.0.else_goto": ["No step at position 4."]}


def test_it_refuses_opened_without_an_email_to_look_at():
    cond = {"type": "condition", "condition": {"type": "opened"}, "else_goto": "exit"}
    assert "steps.0.condition" in errors_of([cond])
    pointed = {**cond, "condition": {"type": "clicked", "step": 1}}
    assert "steps.2.condition.step" in errors_of([EMAIL, {"type": "delay", "seconds": 5}, pointed])


def test_it_refuses_a_loop_that_never_waits_but_allows_one_with_a_delay():
    assert "steps.1.goto" in errors_of([EMAIL, {"type": "goto", "goto": 0}])
    assert "steps.0.goto" in errors_of([{"type": "goto", "goto": 0}])
    validate_steps([EMAIL, {"type": "delay", "days": 7}, {"type": "goto", "goto": 0}], REFS)


def test_it_checks_every_action_and_its_arguments():
    errors = errors_of([
        {"type": "action", "action": "add_tag"},
        {"type": "action", "action": "set_attribute", "name": "plan"},
        {"type": "action", "action": "move_to_sequence", "sequence_id": 10},
        {"type": "action", "action": "explode"},
        {"type": "action", "action": "exit", "tag": "x"},
    ])
    assert set(errors) == {"steps.0.tag", "steps.1.value", "steps.2.sequence_id", "steps.3.action", "steps.4.tag"}
    ok = validate_steps([{"type": "action", "action": "move_to_sequence", "sequence_id": 9},
                         {"type": "action", "action": "set_attribute", "name": "plan", "value": None}], REFS)
    assert ok[0]["sequence_id"] == 9 and ok[1]["value"] is None


def test_it_refuses_webhooks_that_are_not_http_or_carry_unstorable_payloads():
    errors = errors_of([{"type": "webhook", "url": "file:///etc/passwd"},
                        {"type": "webhook", "url": "https://x.test", "payload": [1]},
                        {"type": "webhook", "url": "https://x.test", "payload": {"a": "\x00"}},
                        {"type": "webhook", "url": "https://x.test", "method": "DELETE"},
                        {"type": "webhook", "url": "http://[::1"}])
    assert set(errors) == {"steps.0.url", "steps.1.payload", "steps.2.payload.a", "steps.3.method", "steps.4.url"}


def test_it_checks_wait_until_shapes_and_its_timeout_target():
    errors = errors_of([EMAIL,
                        {"type": "wait_until", "until": {"opened": True, "tag": "x"}, "timeout_seconds": 5},
                        {"type": "wait_until", "until": {"clicked": "yes"}, "timeout_seconds": 5},
                        {"type": "wait_until", "until": {"tag": "vip"}},
                        {"type": "wait_until", "until": {"event": "buy"}, "timeout_seconds": 5, "on_timeout_goto": 99}])
    assert set(errors) == {"steps.1.until", "steps.2.until.clicked", "steps.3.timeout_seconds",
                           "steps.4.on_timeout_goto"}


def test_it_refuses_unknown_fields_on_a_step():
    assert errors_of([{**EMAIL, "subjekt": "typo"}]) == {"steps.0.subjekt": ["Unknown field."]}


def test_it_fills_settings_defaults_and_normalises_days():
    assert validate_settings(None) == default_settings()
    settings = validate_settings({"timezone": "America/New_York", "send_window": {"start": "09:00", "end": "17:00",
                                  "days": ["Fri", "mon"]}, "frequency_cap": {"max": 3, "per_days": 7},
                                  "trigger": {"type": "event", "event": "signup"}, "reentry": "always"})
    assert settings["send_window"]["days"] == ["mon", "fri"]
    assert settings["frequency_cap"] == {"max": 3, "per_days": 7} and settings["reentry"] == "always"


def test_it_names_each_bad_setting():
    with pytest.raises(InvalidInputError) as caught:
        validate_settings({"timezone": "Nowhere/Land", "send_window": {"start": "9am", "days": ["funday"]},
                           "quiet_days": ["2024-02-30"], "transactional": "yes", "priority": 10**12,
                           "frequency_cap": {"max": 0}, "exit_events": "purchase",
                           "trigger": {"type": "tag_added"}, "reentry": "sometimes", "colour": "blue"})
    assert set(caught.value.errors) == {
        "settings.timezone", "settings.send_window.start", "settings.send_window.days", "settings.quiet_days",
        "settings.transactional", "settings.priority", "settings.frequency_cap.max",
        "settings.frequency_cap.per_days", "settings.exit_events", "settings.trigger.tag", "settings.reentry",
        "settings.colour"}
    with pytest.raises(InvalidInputError):
        validate_settings([1, 2])


def test_it_refuses_wait_until_opened_with_no_email_before_it():
    errors = errors_of([{"type": "wait_until", "until": {"opened": True}, "timeout_seconds": 60}, EMAIL])
    assert set(errors) == {"steps.0.until"}


AB = {**EMAIL, "variants": [{"name": "A", "subject": "A"}, {"name": "B", "subject": "B"}]}


def test_an_email_step_accepts_the_experiment_the_api_promises_and_stores_what_was_given():
    steps = validate_steps([{**AB, "experiment": {"metric": "clicked", "confidence": 0.99, "min_per_variant": 200,
                                                  "holdout_percent": 5, "auto_promote": False}}], REFS)
    assert steps[0]["experiment"] == {"metric": "clicked", "confidence": 0.99, "min_per_variant": 200,
                                      "holdout_percent": 5, "auto_promote": False}
    assert validate_steps([{**AB, "experiment": {"metric": "opened"}}], REFS)[0]["experiment"] == {"metric": "opened"}


def test_each_bad_experiment_option_is_named_by_its_field():
    errors = errors_of([{**AB, "experiment": {"metric": "revenue", "confidence": 1.5, "min_per_variant": 0,
                                              "holdout_percent": 100, "auto_promote": "yes", "rounds": 3}}])
    assert set(errors) == {f"steps.0.experiment.{k}" for k in
                           ("metric", "confidence", "min_per_variant", "holdout_percent", "auto_promote", "rounds")}
    assert set(errors_of([{**AB, "experiment": {"confidence": True}}])) == {
        "steps.0.experiment.metric", "steps.0.experiment.confidence"}
    assert set(errors_of([{**AB, "experiment": "opened"}])) == {"steps.0.experiment"}


def test_an_experiment_needs_at_least_two_variants_to_compare():
    assert errors_of([{**EMAIL, "experiment": {"metric": "opened"}}]) == {
        "steps.0.experiment": ["An experiment needs at least two variants."]}
    one = {**EMAIL, "variants": [{"name": "A"}], "experiment": {"metric": "opened"}}
    assert set(errors_of([one])) == {"steps.0.experiment"}
