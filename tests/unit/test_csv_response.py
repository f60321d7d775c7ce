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
