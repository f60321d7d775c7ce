"""Segment filter validation, without a database: every mistake is reported under
its path, all at once, and good filters come back in normal form."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from audience.errors import InvalidFilterError
from audience.segment_filter import member_ids, validate_filter
from audience.segment_grammar import MAX_DEPTH, MAX_IN, MAX_NODES

NOW = datetime(2026, 12, 6, tzinfo=timezone.utc)


def _errors(filter_) -> dict[str, list[str]]:
    with pytest.raises(InvalidFilterError) as caught:
        validate_filter(filter_)
    return caught.value.errors


def test_every_mistake_is_named_by_its_path_at_once():
    errors = _errors({"all": [
        {"tag": "vip"},
        {"attribute": "", "op": "eq", "value": 1},
        {"attribute": "plan", "op": "like", "value": "x"},
        {"any": [{"event": "buy", "count_gte": -1, "within_days": 99999}, {"opened_within_days": "7"}]},
        {"score": "churn_risk", "op": "gt", "value": float("nan")},
        {"field": "created_at", "op": "lt", "value": "yesterday"},
        {"sequence": True, "status": "in"},
        {"topic": "x" * 101},
        {"not": [{"tag": "a"}]},
    ]})
    assert set(errors) == {
        "filter.all.1.attribute", "filter.all.2.op", "filter.all.3.any.0.count_gte", "filter.all.3.any.0.within_days",
        "filter.all.3.any.1.opened_within_days", "filter.all.4.value", "filter.all.5.value",
        "filter.all.6.sequence", "filter.all.7.topic", "filter.all.8.not"}


@pytest.mark.parametrize(("filter_", "path"), [
    ({"tag": "a", "extra": 1}, "filter.extra"),
    ({"attribute": 'say "hi"', "op": "exists"}, "filter.attribute"),
    ({"attribute": "n", "op": "gt", "value": True}, "filter.value"),
    ({"attribute": "n", "op": "eq"}, "filter.value"),
    ({"attribute": "n", "op": "eq", "value": [1]}, "filter.value"),
    ({"attribute": "n", "op": "eq", "value": {"a": 1}}, "filter.value"),
    ({"attribute": "n", "op": "in", "value": []}, "filter.value"),
    ({"attribute": "n", "op": "in", "value": [1, None]}, "filter.value.1"),
    ({"attribute": "n", "op": "eq", "value": "a\x00b"}, "filter.value"),
    ({"field": "timezone", "op": "gt", "value": "UTC"}, "filter.op"),
    ({"field": "email", "op": "eq", "value": "x"}, "filter.field"),
    ({"field": "created_at", "op": "gt", "value": 5}, "filter.value"),
    ({"score": "best_send_hour", "op": "in", "value": [1]}, "filter.op"),
    ({"event": "buy", "count_gte": True}, "filter.count_gte"),
    ({"sequence": 2**31, "status": "in"}, "filter.sequence"),
    ({"all": {"tag": "a"}}, "filter.all"),
    ({}, "filter"),
    (None, "filter"),
    ([{"tag": "a"}], "filter"),
])
def test_a_bad_leaf_is_refused_at_its_path(filter_, path):
    assert path in _errors(filter_)


def test_depth_nodes_and_lists_are_bounded():
    deep: dict = {"tag": "a"}
    for _ in range(MAX_DEPTH - 1):
        deep = {"not": deep}
    assert validate_filter(deep)
    assert _errors({"not": deep}) == {"filter" + ".not" * MAX_DEPTH: [f"Nested deeper than {MAX_DEPTH} levels."]}
    wide = [{"tag": str(i)} for i in range(MAX_NODES - 1)]
    assert validate_filter({"any": wide})
    assert "filter.any.99" in _errors({"any": [*wide, {"tag": "last"}]})
    assert validate_filter({"attribute": "a", "op": "in", "value": list(range(MAX_IN))})
    assert "filter.value" in _errors({"attribute": "a", "op": "in", "value": list(range(MAX_IN + 1))})


def test_the_normal_form_fills_defaults_and_normalises_values():
    assert validate_filter({"any": [
        {"event": "buy"},
        {"field": "email_domain", "op": "in", "value": [" Example.COM "]},
        {"field": "created_at", "op": "gte", "value": "2026-03-01T12:00:00+02:00"},
    ]}) == {"any": [
        {"event": "buy", "count_gte": 1},
        {"field": "email_domain", "op": "in", "value": ["example.com"]},
        {"field": "created_at", "op": "gte", "value": "2026-03-01T10:00:00+00:00"},
    ]}


def test_the_query_is_one_select_of_ids_spelled_for_each_backend():
    query = member_ids(7, {"all": [{"tag": "vip"}, {"attribute": "plan", "op": "eq", "value": "pro"}]}, NOW)
    assert [c.name for c in query.selected_columns] == ["id"]
    pg = str(query.compile(dialect=postgresql.dialect()))
    lite = str(query.compile(dialect=sqlite.dialect()))
    # containment on PostgreSQL (what a GIN index answers); json_each / json_extract on SQLite
    assert pg.count("@>") == 2 and "json_each" not in pg
    assert "json_each" in lite and "@>" not in lite


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1969-12-31"])
def test_a_time_outside_the_era_is_refused_not_overflowed(value):
    assert "filter.value" in _errors({"field": "created_at", "op": "lt", "value": value})
