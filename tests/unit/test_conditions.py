"""Judging condition steps against the facts known about one enrollment. Pure functions over a ``now``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from sequencing.conditions import Facts, evaluate, message_step_for

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=timezone.utc)


def facts(tags: list[str] | None = None, attributes: dict[str, Any] | None = None,
          messages_by_step: dict[int, int] | None = None, message_events: dict[int, set[str]] | None = None,
          events: dict[str, list[datetime]] | None = None) -> Facts:
    return Facts(tags=tags or [], attributes=attributes or {}, messages_by_step=messages_by_step or {},
                 message_events=message_events or {}, events=events or {})


def attribute(op: str, value: Any, attributes: dict[str, Any], name: str = "plan") -> bool:
    condition = {"type": "attribute", "name": name, "op": op}
    if op != "exists":
        condition["value"] = value
    return evaluate(condition, 5, facts(attributes=attributes), NOW)


# opened / clicked

def test_it_sees_the_previous_email_was_opened():
    f = facts(messages_by_step={0: 100}, message_events={100: {"opened"}})
    assert evaluate({"type": "opened"}, 2, f, NOW) is True


def test_it_sees_the_previous_email_was_not_opened():
    f = facts(messages_by_step={0: 100}, message_events={100: {"delivered"}})
    assert evaluate({"type": "opened"}, 2, f, NOW) is False
    assert evaluate({"type": "opened"}, 2, facts(messages_by_step={0: 100}), NOW) is False


def test_it_counts_a_click_as_an_open():
    f = facts(messages_by_step={0: 100}, message_events={100: {"clicked"}})
    assert evaluate({"type": "opened"}, 1, f, NOW) is True


def test_it_does_not_count_an_open_as_a_click():
    f = facts(messages_by_step={0: 100}, message_events={100: {"opened"}})
    assert evaluate({"type": "clicked"}, 1, f, NOW) is False


def test_it_sees_a_click():
    f = facts(messages_by_step={0: 100}, message_events={100: {"opened", "clicked"}})
    assert evaluate({"type": "clicked"}, 1, f, NOW) is True


def test_it_looks_at_the_latest_earlier_email_by_default():
    f = facts(messages_by_step={0: 100, 2: 200}, message_events={100: {"opened", "clicked"}})
    # at position 3 the latest earlier email is step 2, which was not opened
    assert evaluate({"type": "opened"}, 3, f, NOW) is False
    # at position 1 it is step 0, which was
    assert evaluate({"type": "opened"}, 1, f, NOW) is True
    assert message_step_for({"type": "opened"}, 3, f) == 2


def test_it_ignores_emails_at_or_after_the_condition():
    f = facts(messages_by_step={4: 400, 6: 600}, message_events={400: {"opened"}, 600: {"opened"}})
    assert evaluate({"type": "opened"}, 4, f, NOW) is False


def test_it_looks_at_the_email_the_step_names():
    f = facts(messages_by_step={0: 100, 2: 200}, message_events={100: {"clicked"}})
    assert evaluate({"type": "clicked", "step": 0}, 3, f, NOW) is True
    assert evaluate({"type": "clicked", "step": 2}, 3, f, NOW) is False


def test_it_is_false_when_the_named_step_sent_no_email():
    f = facts(messages_by_step={0: 100}, message_events={100: {"opened"}})
    assert evaluate({"type": "opened", "step": 1}, 3, f, NOW) is False


def test_it_is_false_when_there_is_no_earlier_email():
    assert evaluate({"type": "opened"}, 0, facts(), NOW) is False
    assert message_step_for({"type": "opened"}, 0, facts()) is None
    # a later email, even opened, is not an earlier one
    f = facts(messages_by_step={5: 500}, message_events={500: {"opened"}})
    assert evaluate({"type": "opened"}, 2, f, NOW) is False


# has_tag

def test_it_sees_a_tag_the_subscriber_has():
    assert evaluate({"type": "has_tag", "tag": "vip"}, 1, facts(tags=["new", "vip"]), NOW) is True


def test_it_sees_a_tag_the_subscriber_lacks():
    assert evaluate({"type": "has_tag", "tag": "vip"}, 1, facts(tags=["new"]), NOW) is False
    assert evaluate({"type": "has_tag", "tag": "vip"}, 1, facts(), NOW) is False


# attribute comparisons

@pytest.mark.parametrize("op, value, actual, expected", [
    ("eq", "pro", "pro", True),
    ("eq", "pro", "free", False),
    ("ne", "pro", "free", True),
    ("ne", "pro", "pro", False),
    ("gt", 10, 11, True),
    ("gt", 10, 10, False),
    ("gte", 10, 10, True),
    ("gte", 10, 9, False),
    ("lt", 10, 9, True),
    ("lt", 10, 10, False),
    ("lte", 10, 10, True),
    ("lte", 10, 11, False),
    ("gt", 1.5, 2, True),
    ("contains", "pro", ["free", "pro"], True),
    ("contains", "team", ["free", "pro"], False),
    ("contains", "ro", "pro", True),
    ("contains", "x", "pro", False),
])
def test_it_compares_an_attribute_with_each_operator(op, value, actual, expected):
    assert attribute(op, value, {"plan": actual}) is expected


def test_it_compares_with_eq_when_no_operator_is_given():
    condition = {"type": "attribute", "name": "plan", "value": "pro"}
    assert evaluate(condition, 1, facts(attributes={"plan": "pro"}), NOW) is True
    assert evaluate(condition, 1, facts(attributes={"plan": "free"}), NOW) is False


def test_it_does_not_equate_a_number_with_its_string():
    assert attribute("eq", 5, {"plan": "5"}) is False


def test_it_compares_numeric_strings_as_numbers():
    assert attribute("gt", 9, {"plan": "10"}) is True
    assert attribute("lt", "9", {"plan": 10}) is False


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
def test_it_is_false_not_an_error_to_order_a_string_against_a_number(op):
    assert attribute(op, 5, {"plan": "abc"}) is False
    assert attribute(op, "abc", {"plan": 5}) is False


@pytest.mark.parametrize("actual", [["a"], {"a": 1}, "", "nan-ish"])
def test_it_is_false_not_an_error_to_order_a_non_number(actual):
    assert attribute("gt", 0, {"plan": actual}) is False


def test_it_is_false_not_an_error_for_contains_on_a_mismatched_type():
    assert attribute("contains", 1, {"plan": 123}) is False  # a number contains nothing
    assert attribute("contains", 1, {"plan": "a1b"}) is False  # a number is not in a string
    assert attribute("contains", "a", {"plan": {"a": 1}}) is False  # mappings are not searched
    assert attribute("contains", ["x"], {"plan": [["x"]]}) is True  # lists may hold lists


def test_it_sees_a_present_attribute_exists_even_when_falsy():
    for value in (0, False, "", []):
        assert attribute("exists", None, {"plan": value}) is True


@pytest.mark.parametrize("attributes", [{}, {"plan": None}])
def test_it_treats_a_missing_or_null_attribute_as_absent(attributes):
    assert attribute("exists", None, attributes) is False
    assert attribute("ne", "pro", attributes) is True
    assert attribute("eq", "pro", attributes) is False
    assert attribute("gt", 0, attributes) is False
    assert attribute("lt", 0, attributes) is False
    assert attribute("contains", "p", attributes) is False


def test_it_is_false_for_an_unknown_operator():
    assert attribute("startswith", "p", {"plan": "pro"}) is False


# events

def test_it_sees_an_event_that_happened_at_any_time():
    f = facts(events={"purchase": [NOW - timedelta(days=400)]})
    assert evaluate({"type": "event", "name": "purchase"}, 1, f, NOW) is True


def test_it_is_false_for_an_event_that_never_happened():
    f = facts(events={"signup": [NOW]})
    assert evaluate({"type": "event", "name": "purchase"}, 1, f, NOW) is False
    assert evaluate({"type": "event", "name": "purchase"}, 1, facts(events={"purchase": []}), NOW) is False


def test_it_only_counts_events_within_the_given_seconds():
    condition = {"type": "event", "name": "purchase", "within_seconds": 3600}
    recent = facts(events={"purchase": [NOW - timedelta(hours=3), NOW - timedelta(minutes=30)]})
    stale = facts(events={"purchase": [NOW - timedelta(hours=3), NOW - timedelta(seconds=3601)]})
    assert evaluate(condition, 1, recent, NOW) is True
    assert evaluate(condition, 1, stale, NOW) is False


def test_it_counts_an_event_exactly_at_the_edge_of_the_window():
    condition = {"type": "event", "name": "purchase", "within_seconds": 3600}
    f = facts(events={"purchase": [NOW - timedelta(seconds=3600)]})
    assert evaluate(condition, 1, f, NOW) is True


def test_it_only_counts_events_since_the_wait_began():
    f = facts(events={"purchase": [NOW - timedelta(hours=2)]})
    condition = {"type": "event", "name": "purchase"}
    assert evaluate(condition, 1, f, NOW, since=NOW - timedelta(hours=3)) is True
    assert evaluate(condition, 1, f, NOW, since=NOW - timedelta(hours=1)) is False
    # an event at the very moment the wait began counts
    assert evaluate(condition, 1, f, NOW, since=NOW - timedelta(hours=2)) is True


def test_it_applies_since_and_within_seconds_together():
    condition = {"type": "event", "name": "purchase", "within_seconds": 3600}
    # one event is recent but before `since`, the other after `since` but too old: neither passes both
    since = NOW - timedelta(hours=2)
    f = facts(events={"purchase": [NOW - timedelta(hours=3), NOW - timedelta(minutes=90)]})
    assert evaluate(condition, 1, f, NOW, since=since) is False
    f = facts(events={"purchase": [NOW - timedelta(minutes=90), NOW - timedelta(minutes=10)]})
    assert evaluate(condition, 1, f, NOW, since=since) is True


def test_it_is_false_for_an_unknown_condition_type():
    f = facts(tags=["vip"], messages_by_step={0: 1}, message_events={1: {"opened"}})
    assert evaluate({"type": "replied"}, 1, f, NOW) is False
    assert evaluate({}, 1, f, NOW) is False
