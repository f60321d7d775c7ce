"""Checking an event-history row (audience.event_rows): pure functions, no I/O."""
from __future__ import annotations

import io
import random
from datetime import datetime, timezone

import pytest

from audience.errors import ImportPayloadError
from audience.event_rows import (BLOCK, COLUMNS, RowChecker, RowError, check_start, checked_blocks, csv_columns,
                                 dedup_key, raw_rows)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def check(**item):
    return RowChecker(7, NOW).check(item, from_text=True)


def checked(rows, columns, size=10_000):
    """Every row, numbered, in order: the row or its fault."""
    got = []
    for good, faults, _ in checked_blocks(rows, "csv", RowChecker(1, NOW), columns, size):
        got.extend(good)
        got.extend(faults)
    return sorted(got, key=lambda numbered: numbered[0])


def test_a_row_is_normalised_to_utc_and_the_platforms_address_form():
    row = check(email=" Ada@Example.COM ", name="opened", occurred_at="2025-01-01T10:00:00+02:00",
                message_ref="<m1@old>", value="1.5", properties='{"a": [1, 2]}')
    assert (row.email, row.name, row.occurred_at, row.message_ref, row.value, row.properties) == (
        "ada@example.com", "opened", datetime(2025, 1, 1, 8, tzinfo=timezone.utc), "m1@old", 1.5, '{"a":[1,2]}')
    assert row.occurred_text == "2025-01-01T08:00:00+00:00"


def test_the_same_event_written_differently_has_one_key_and_another_event_another():
    a = check(email="ada@example.com", name="opened", occurred_at="2025-01-01T10:00:00+02:00", message_ref="m1")
    b = check(email="ADA@example.com", name="opened", occurred_at="2025-01-01T08:00:00Z", message_ref="<m1>",
              value="3")
    assert a.dedup_key == b.dedup_key
    other = {check(email="ada@example.com", name="clicked", occurred_at="2025-01-01T08:00:00Z", message_ref="m1"),
             check(email="ada@example.com", name="opened", occurred_at="2025-01-01T08:00:01Z", message_ref="m1"),
             check(email="ada@example.com", name="opened", occurred_at="2025-01-01T08:00:00Z", message_ref="m2"),
             check(email="bob@example.com", name="opened", occurred_at="2025-01-01T08:00:00Z", message_ref="m1")}
    assert len({r.dedup_key for r in other} | {a.dedup_key}) == 5
    moment = datetime(2025, 1, 1, 8, tzinfo=timezone.utc)
    assert dedup_key(7, "a@x.test", "o", moment, None) != dedup_key(8, "a@x.test", "o", moment, None), "per account"


@pytest.mark.parametrize(("item", "message"), [
    ({"email": "nope", "occurred_at": "2025-01-01T00:00:00Z"}, "email: Not a valid email address"),
    ({"email": "a@example.com", "occurred_at": "2025-01-01T00:00:00"}, "occurred_at: Needs a UTC offset"),
    ({"email": "a@example.com", "occurred_at": "yesterday"}, "occurred_at: Not an ISO-8601"),
    ({"email": "a@example.com", "occurred_at": "1970-01-01T00:00:00Z"}, "occurred_at: Must be between"),
    ({"email": "a@example.com", "occurred_at": "2026-03-04T00:00:00Z"}, "occurred_at: Is in the future"),
    ({"email": "a@example.com", "occurred_at": "2025-01-01T00:00:00Z", "value": "nan"}, "value: Not a valid"),
    ({"email": "a@example.com", "occurred_at": "2025-01-01T00:00:00Z", "properties": "{"}, "properties: Not valid"),
    ({"email": "a@example.com", "occurred_at": "2025-01-01T00:00:00Z", "properties": '{"k": "\\u0000"}'},
     "properties: Contains a NUL"),
    ({"email": "a@example.com", "occurred_at": "2025-01-01T00:00:00Z", "message_ref": "x" * 301}, "message_ref:"),
])
def test_a_bad_field_is_named_in_the_rows_error(item, message):
    with pytest.raises(RowError) as raised:
        check(name="opened", **item)
    assert str(raised.value).startswith(message)


def test_the_platforms_sending_states_are_refused_but_its_vocabulary_and_custom_names_taken():
    for name in ("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed", "plan:upgraded"):
        assert check(email="a@example.com", name=name, occurred_at="2025-01-01T00:00:00Z").name == name
    for name in ("queued", "deferred", "rejected"):
        with pytest.raises(RowError, match="^name: "):
            check(email="a@example.com", name=name, occurred_at="2025-01-01T00:00:00Z")


def test_a_csv_header_must_name_the_required_columns_and_no_others():
    assert csv_columns(["Email", " NAME", "occurred_at", "value"]) == ["email", "name", "occurred_at", "value"]
    for header in (["email", "name"], ["email", "name", "occurred_at", "colour"],
                   ["email", "name", "occurred_at", "name"]):
        with pytest.raises(ImportPayloadError) as raised:
            csv_columns(header)
        assert raised.value.field == "header"
    check_start(b"\xef\xbb\xbfemail,name,occurred_at\r\nrest", "csv")  # a BOM and CRLF are fine
    for broken in (b"email,na\rme,occurred_at\n", b"\xff\xfe", b'"email,name'):
        with pytest.raises(ImportPayloadError) as raised:
            check_start(broken, "csv")
        assert raised.value.field == "header"
    check_start(b"anything", "ndjson")


def test_csv_rows_are_numbered_by_line_and_a_short_row_is_padded_a_long_one_refused():
    data = b"email,name,occurred_at,value\na@example.com,opened,2025-01-01T00:00:00Z\n\n" \
           b"a@example.com,opened,2025-01-01T00:00:00Z,1,extra\n"
    rows = raw_rows(io.BufferedReader(io.BytesIO(data)), "csv")
    columns = csv_columns(next(rows)[1])
    got = checked(rows, columns)
    assert [n for n, _ in got] == [2, 4]
    assert got[0][1].value is None
    assert got[1][1] == "Has 5 cells but the header has 4 columns."


def _copy_fields(line: str) -> list[str | None]:
    """COPY's text format read back: tab-separated, backslash escapes, \\N is NULL."""
    assert line.endswith("\n") and line.count("\n") == 1
    unescape = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}
    fields: list[str | None] = []
    for raw in line[:-1].split("\t"):
        if raw == "\\N":
            fields.append(None)
            continue
        out, i = [], 0
        while i < len(raw):
            if raw[i] == "\\":
                out.append(unescape[raw[i + 1]])
                i += 2
            else:
                out.append(raw[i])
                i += 1
        fields.append("".join(out))
    return fields


def test_a_rows_copy_line_carries_every_field_escaped_and_nulls_as_null():
    row = check(email="ada@example.com", name="opened", occurred_at="2025-01-01T10:00:00+02:00",
                message_ref="ref\twith\\odd\rchars\n", value="2.5", properties='{"k": "a\\\\b\\tc"}')
    assert _copy_fields(row.line) == [row.email, row.name, row.occurred_text, row.message_ref, "2.5", row.properties,
                                      row.dedup_key]
    bare = check(email="bo@example.com", name="purchase", occurred_at="2025-01-01T08:00:00Z")
    assert _copy_fields(bare.line) == ["bo@example.com", "purchase", "2025-01-01T08:00:00+00:00", None, None, "{}",
                                       bare.dedup_key]


@pytest.mark.parametrize("spelling", ["2025-01-01T08:00:00+00:00", "2025-01-01 08:00:00+00:00", "2025-01-01T08:00:00Z",
                                      "2025-01-01T09:00:00+01:00", "2025-01-01T08:00:00.000+00:00",
                                      "2025-W01-3T08:00:00+00:00", " 2025-01-01T08:00:00+00:00 "])
def test_every_spelling_of_one_instant_has_isoformats_text_and_one_key(spelling):
    """The text is taken as written only when it is isoformat()'s own spelling."""
    row = check(email="a@example.com", name="opened", occurred_at=spelling)
    moment = datetime(2025, 1, 1, 8, tzinfo=timezone.utc)
    assert (row.occurred_at, row.occurred_text) == (moment, moment.isoformat())
    assert row.dedup_key == dedup_key(7, "a@example.com", "opened", moment, None)
    assert row.occurred_at.tzinfo is timezone.utc


def test_a_header_missing_optional_columns_reads_the_same_rows_as_a_full_one():
    full = "email,name,occurred_at,message_ref,value,properties\na@example.com,opened,2025-01-01T08:00:00Z,,,\n"
    short = "name,email,occurred_at\nopened,a@example.com,2025-01-01T08:00:00Z\n"
    got = []
    for text in (full, short):
        rows = raw_rows(io.BytesIO(text.encode()), "csv")
        columns = csv_columns(next(rows)[1])
        got.append(checked(rows, columns))
    assert got[0] == got[1] and got[0][0][1].name == "opened"


# Cells a history may hold, plain and not: the columnar check must take the plain
# ones as the row-by-row check does and leave every other to it.
CELLS = {
    "email": ["a@example.com", "B@Example.com", " c@example.com", "not-an-address", "", "d@exa\\mple.com",
              '"q\\x"@example.com'],
    "name": ["opened", "clicked", "plan:upgraded", "queued", "bad name", ""],
    "occurred_at": ["2025-01-01T08:00:00+00:00", "2025-01-01T08:00:00Z", "2025-01-01T09:00:00+01:00",
                    "2025-02-30T08:00:00Z", "1989-12-31T23:59:59Z", "2026-03-04T09:00:00Z", "2025-01-01T08:00:00",
                    " 2025-01-01T08:00:00Z", "2025-01-01T08:00:00.5Z", ""],
    "message_ref": ["", "m1@old.example", "<m2@old.example>", " <m3> ", "<>", "tab\tin", "x" * 301, "nul\x00"],
    "value": ["", "2.5", "1_000", " 3 ", "nan", "inf", "1e400", "abc"],
    "properties": ["", '{"k": 1}', '{"a\\tb": "c\\nd"}', "[]", "{bad", '{"n": 1e999}'],
}


def _row(rng: random.Random, plain: bool) -> list[str]:
    return [rng.choice(CELLS[c][:2 if plain else None]) for c in COLUMNS]


def _row_by_row(rows: list[list[str]]) -> list:
    checker, got = RowChecker(1, NOW), []
    for number, cells in enumerate(rows, start=2):
        try:
            got.append((number, checker.check_values(*cells, True)))
        except RowError as exc:
            got.append((number, str(exc)))
    return got


@pytest.mark.parametrize("seed", range(6))
def test_blocks_checked_column_by_column_give_what_each_row_checked_alone_gives(seed):
    rng = random.Random(seed)
    # Mostly plain blocks, a few with one odd row, and a block of all kinds.
    rows = [_row(rng, plain=True) for _ in range(BLOCK * 4)]
    for at in rng.sample(range(BLOCK, BLOCK * 3), 5):
        rows[at] = _row(rng, plain=False)
    rows += [_row(rng, plain=False) for _ in range(BLOCK)]
    text = ",".join(COLUMNS) + "\n" + "".join(",".join(f'"{c}"' for c in r) + "\n" for r in
                                              [[c.replace('"', '""') for c in row] for row in rows])
    read = raw_rows(io.BytesIO(text.encode()), "csv")
    columns = csv_columns(next(read)[1])
    assert checked(read, columns, size=1_700) == _row_by_row(rows)


def test_a_plain_block_is_checked_by_columns_and_a_faulty_row_sends_it_row_by_row():
    rng = random.Random(7)
    plain = [_row(rng, plain=True) for _ in range(200)]
    checker = RowChecker(1, NOW)
    assert checker.check_columns(*zip(*plain)) == [r for _, r in _row_by_row(plain)]
    for column, cells in CELLS.items():
        for odd in cells[2:]:
            block = [list(r) for r in plain]
            block[99][COLUMNS.index(column)] = odd
            alone = _row_by_row(block)
            together = checker.check_columns(*zip(*block))
            if any(isinstance(r, str) for _, r in alone):
                assert together is None, (column, odd)
            else:  # a valid spelling: either way, the same rows
                assert together in (None, [r for _, r in alone]), (column, odd)
