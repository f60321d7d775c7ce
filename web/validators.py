"""Field checks the request schemas share, so every resource refuses the same
input the same way."""
from __future__ import annotations

from datetime import date

from marshmallow import ValidationError, validate

from sequencing.errors import MAX_INT

# Ids are PostgreSQL ``integer`` columns: a larger number can name no row, and
# refusing it here keeps it out of SQL (where it would be an error, not a miss).
MAX_ID = MAX_INT
ID_RANGE = validate.Range(min=1, max=MAX_ID)


def no_nul(value: str) -> None:
    """PostgreSQL can neither store nor compare text containing NUL; refuse it here
    rather than fail in SQL."""
    if "\x00" in value:
        raise ValidationError("Contains a forbidden control character.")


def one_line(value: str) -> None:
    """A value that goes into a mail header (a sender's name): a line break or other
    control character would be refused by every email built from it."""
    if any(ch < " " or ch == "\x7f" for ch in value):
        raise ValidationError("Must be one line, without control characters.")


def text(max_len: int, min_len: int = 1) -> list[object]:
    """Validators of a free-text field: bounded length and no NUL."""
    return [validate.Length(min=min_len, max=max_len), no_nul]


# Dates a client may give: 9999-12-31T23:59:59-14:00 is year 10,000 in UTC, which
# Python cannot represent (OverflowError converting it); nothing the platform does
# is dated before the Unix epoch or millennia ahead.
EARLIEST_YEAR = 1970
LATEST_YEAR = 9000


def in_era(value: date) -> None:
    """A date or datetime within EARLIEST_YEAR..LATEST_YEAR, checked on its own
    (local) fields, so any offset converts to UTC without overflowing."""
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValidationError(f"Must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}.")
