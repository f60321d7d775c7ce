"""The analytics CSV writer: what a spreadsheet would run as a formula is written as text."""
from __future__ import annotations

import csv
import io

from flask import Flask

from web.csv_response import csv_response


def rows_of(response_text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response_text)))


def test_a_variant_named_like_a_formula_is_written_as_text_not_run() -> None:
    with Flask(__name__).app_context():
        response = csv_response(["variant", "sent", "lift"], [
            {"variant": "=HYPERLINK(\"http://evil.test\",\"x\")", "sent": 3, "lift": -0.25},
            {"variant": "@SUM(A1:A2)", "sent": 1, "lift": None},
            {"variant": "B", "sent": 2, "lift": True},
        ], "x.csv")
    rows = rows_of(response.get_data(as_text=True))
    assert [r["variant"] for r in rows] == ["'=HYPERLINK(\"http://evil.test\",\"x\")", "'@SUM(A1:A2)", "B"]
    assert [r["lift"] for r in rows] == ["-0.25", "", "true"]  # numbers stay numbers


def test_the_streamed_body_is_byte_for_byte_the_csv_written_at_once() -> None:
    """Blocks of BLOCK_ROWS rows, joined, are what one csv.writer over every row writes;
    the rows are read as the body is sent, not before."""
    from web import csv_response as module

    columns = ["email", "score", "note"]
    rows = [{"email": f"u{i}@x.test", "score": i / 7 if i % 5 else None, "note": "a,\"b\"\n" if i % 3 else "=1"}
            for i in range(2 * module.BLOCK_ROWS + 17)]
    whole = io.StringIO()
    writer = csv.writer(whole)
    writer.writerow(columns)
    writer.writerows([module._cell(r.get(c)) for c in columns] for r in rows)
    read = []

    def reading():
        for row in rows:
            read.append(row)
            yield row

    with Flask(__name__).app_context():
        response = csv_response(columns, reading(), "x.csv")
        assert response.is_streamed and read == [], "nothing is read before the body is sent"
        blocks = list(response.response)
    assert len(blocks) == 3
    assert "".join(b if isinstance(b, str) else b.decode() for b in blocks) == whole.getvalue()
