"""Reading an event-history file row by row: CSV with a header, or JSON lines.

Columns (CSV header, matched case-insensitively) and JSON keys: ``email``, ``name``,
``occurred_at`` (required), ``message_ref``, ``value``, ``properties`` (optional; in
CSV a JSON object in its cell). A CSV column or JSON key outside these is an error
(a typo would otherwise drop data silently). Row numbers are what a person finds in
the file: the CSV's line (the header is line 1) or the JSON line's number.

Each row is checked here, in Python, because each bad row must be reported on its
own; the addresses go through the platform's one normalisation
(``audience.fields.normalise_email``), cached per import since a history names
each address many times.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from operator import itemgetter
from typing import Any, NamedTuple

from audience.errors import ImportPayloadError
from audience.fields import normalise_email
from core.errors import InvalidFieldError
from core.json_values import SURROGATE, TooDeepError, bounded_int, problems

FORMATS = ("csv", "ndjson")
COLUMNS = ("email", "name", "occurred_at", "message_ref", "value", "properties")
REQUIRED = ("email", "name", "occurred_at")
# The platform's own vocabulary an import may use; the rest of what only the platform
# records (queued, deferred, rejected) describes our own sending, never a history's.
PLATFORM_VOCABULARY = ("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
RESERVED = ("queued", "deferred", "rejected")
NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
MESSAGE_REF_MAX = 300
PROPERTIES_MAX_BYTES = 64 * 1024
# History, not plans: an event may be at most this far ahead of the upload (clock skew).
FUTURE_SLACK = timedelta(days=1)
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
# datetime.isoformat()'s spelling of a whole second in UTC.
_CANONICAL_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")


class EventRow(NamedTuple):
    """A checked row (a tuple: millions are made, and a tuple is made fastest)."""

    email: str
    name: str
    occurred_at: datetime  # UTC
    occurred_text: str  # occurred_at.isoformat(), made once for the key and the COPY
    message_ref: str | None
    value: float | None
    properties: str  # compact JSON text of an object
    dedup_key: str
    line: str  # the row as a line of PostgreSQL COPY text (audience.event_writer)


class RowError(ValueError):
    """One row's fault, ``"field: message"``."""


def dedup_key(account_id: int, email: str, name: str, occurred_at: datetime, message_ref: str | None,
              occurred_text: str | None = None) -> str:
    """The same event imported twice (a re-upload, a retried job) has the same key:
    one address, name, instant (in UTC) and other-platform message. Value and
    properties are left out, so re-importing a corrected file does not double its events."""
    text = "\x1f".join((email, name, occurred_text or occurred_at.isoformat(), message_ref or ""))
    # The instant leads so that a history written in time order lands on neighbouring
    # pages of the unique index rather than on random ones (measured: the index is
    # most of an insert's cost once it outgrows memory).
    digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"import:{account_id}:{int(occurred_at.timestamp()):010x}:{digest}"


class RowChecker:
    """Turns raw mappings into EventRow, or raises RowError naming the field."""

    def __init__(self, account_id: int, now: datetime) -> None:
        self.account_id = account_id
        self.latest = now + FUTURE_SLACK
        self._emails: dict[str, str | RowError] = {}
        self._names: set[str] = set()

    def _email(self, value: Any) -> str:
        if not isinstance(value, str):
            raise RowError("email: Not a valid string.")
        known = self._emails.get(value)
        if known is None:
            try:
                known = normalise_email(value)
            except InvalidFieldError as exc:
                known = RowError(str(exc))
            if len(self._emails) < 1_000_000:
                self._emails[value] = known
        if isinstance(known, RowError):
            raise known
        return known

    def _occurred(self, value: Any) -> tuple[datetime, str]:
        """The instant in UTC and its ISO text (the key's and the COPY's spelling)."""
        if not isinstance(value, str) or not value.strip():
            raise RowError("occurred_at: Missing data for required field.")
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise RowError("occurred_at: Not an ISO-8601 date and time.") from None
        if moment.tzinfo is None:
            raise RowError("occurred_at: Needs a UTC offset (e.g. 2026-01-31T09:00:00Z or +02:00).")
        if not 1990 <= moment.year <= 9000:
            raise RowError("occurred_at: Must be between the years 1990 and 9000.")
        if moment.tzinfo is not timezone.utc:
            moment = moment.astimezone(timezone.utc)
        if moment > self.latest:
            raise RowError("occurred_at: Is in the future; an import is history.")
        # Most histories are written in this one spelling, which is isoformat()'s
        # own: taking the text as it is saves the costliest call of a row's check.
        if _CANONICAL_UTC.fullmatch(text) is None:
            text = moment.isoformat()
        return moment, text

    @staticmethod
    def _name(value: Any) -> str:
        if value is None or value == "":
            raise RowError("name: Missing data for required field.")
        if not isinstance(value, str):
            raise RowError("name: Not a valid string.")
        if NAME.fullmatch(value) is None:
            raise RowError("name: Use 1-100 letters, digits, '_', '.', ':' or '-'.")
        if value in RESERVED:
            raise RowError(f"name: '{value}' describes the platform's own sending and cannot be imported.")
        return value

    @staticmethod
    def _value(value: Any) -> float | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise RowError("value: Not a valid number.")
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise RowError("value: Not a valid number.") from None
        if not math.isfinite(number):
            raise RowError("value: Not a valid number.")
        return number

    @staticmethod
    def _properties(value: Any, from_text: bool) -> str:
        if value is None or value == "":
            return "{}"
        if from_text:
            try:
                value = json.loads(value, parse_int=bounded_int)
            except (ValueError, RecursionError):
                raise RowError("properties: Not valid JSON.") from None
        if not isinstance(value, dict):
            raise RowError("properties: Must be a JSON object.")
        try:
            found = problems(value, key_message=SURROGATE, max_depth=32)
        except TooDeepError:
            raise RowError("properties: Nested deeper than 32 levels.") from None
        if found:
            path, messages = next(iter(found.items()))
            raise RowError(f"properties.{'.'.join(path)}: {messages[0]}")
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        if "\\u0000" in text:
            raise RowError("properties: Contains a NUL character.")
        if len(text.encode()) > PROPERTIES_MAX_BYTES:
            raise RowError(f"properties: At most {PROPERTIES_MAX_BYTES // 1024} kB of JSON.")
        return text

    @staticmethod
    def _message_ref(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise RowError("message_ref: Not a valid string.")
        ref = value.strip().strip("<>").strip()
        if "\x00" in ref or len(ref) > MESSAGE_REF_MAX:
            raise RowError(f"message_ref: At most {MESSAGE_REF_MAX} characters, no NUL.")
        return ref or None

    def check(self, item: dict[str, Any], from_text: bool) -> EventRow:
        return self.check_values(item.get("email"), item.get("name"), item.get("occurred_at"),
                                 item.get("message_ref"), item.get("value"), item.get("properties"), from_text)

    def check_values(self, email: Any, name: Any, occurred: Any, ref: Any, value: Any, properties: Any,
                     from_text: bool) -> EventRow:
        # Millions of rows: the common cases (a known address or name, an empty
        # optional cell) are answered inline, the rest by the checks above.
        known = self._emails.get(email) if isinstance(email, str) else None
        email = known if isinstance(known, str) else self._email(email)
        if not (isinstance(name, str) and name in self._names):
            self._names.add(self._name(name))
        moment, text = self._occurred(occurred)
        ref = None if ref is None or ref == "" else self._message_ref(ref)
        number = None if value is None or value == "" else self._value(value)
        props = "{}" if properties is None or properties == "" else self._properties(properties, from_text)
        key = dedup_key(self.account_id, email, name, moment, ref, text)
        # The row's line of PostgreSQL COPY text, made here, in the thread that reads
        # ahead, rather than by the writer while the database waits for it. A name
        # (NAME) and a key have nothing to escape.
        line = (f"{_copy_text(email)}\t{name}\t{text}\t{_copy_text(ref)}\t{COPY_NULL if number is None else repr(number)}"
                f"\t{props if props == '{}' else _copy_text(props)}\t{key}\n")
        return EventRow(email, name, moment, text, ref, number, props, key, line)


COPY_NULL = "\\N"  # COPY text's NULL (audience.event_writer too)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str | None) -> str:
    """``value`` as a field of COPY's text format (``\\N`` for NULL)."""
    if value is None:
        return COPY_NULL
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:  # rare: four scans beat a translate
        return value.translate(_COPY_ESCAPES)
    return value


def csv_columns(cells: list[str]) -> list[str]:
    """The header's column names; ImportPayloadError (``field="header"``) when it
    lacks a required one, names an unknown one, or repeats one."""
    names = [c.strip().lower() for c in cells]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ImportPayloadError("The CSV header row has no " + ", ".join(repr(m) for m in missing)
                                 + " column; columns are " + ", ".join(COLUMNS) + ".", field="header")
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise ImportPayloadError(f"The CSV header row has unknown columns {unknown[:5]}; columns are "
                                 + ", ".join(COLUMNS) + ".", field="header")
    if len(set(names)) != len(names):
        raise ImportPayloadError("The CSV header row repeats a column.", field="header")
    return names


def check_start(first_bytes: bytes, fmt: str) -> None:
    """What the web request can check without parsing the rows: a CSV's header."""
    if fmt != "csv":
        return
    line = first_bytes.split(b"\n", 1)[0]
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportPayloadError("The CSV file must be UTF-8.", field="header") from None
    try:
        cells = next(csv.reader([text.rstrip("\r")]), [])
    except csv.Error as exc:
        raise ImportPayloadError(f"The CSV header row cannot be read: {exc}.", field="header") from None
    csv_columns(cells)


def raw_rows(stream: io.BufferedIOBase, fmt: str) -> Iterator[tuple[int, Any]]:
    """``(row number, raw row)`` for every data row: for CSV the cells, for JSON lines
    the line's bytes (parsed by ``checked``, after a resume has skipped what it needs
    to). Raises ImportPayloadError for a file that cannot be read on (bad UTF-8 or
    CSV quoting), which fails the job."""
    if fmt == "ndjson":
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield number, line
        return
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        for cells in reader:
            if cells and any(cells):
                yield reader.line_num, cells
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ImportPayloadError(f"The CSV file cannot be read on at line {reader.line_num}: {exc}.") from None


def checked(rows: Iterable[tuple[int, Any]], fmt: str, checker: RowChecker,
            columns: list[str] | None) -> Iterator[tuple[int, EventRow | str]]:
    """``(row number, EventRow)`` or ``(row number, "field: message")``."""
    check: Callable[[dict[str, Any], bool], EventRow] = checker.check
    check_values = checker.check_values
    width = len(columns or ())
    # Where each field is in a CSV row (-1: no such column).
    places = [columns.index(c) if c in columns else -1 for c in COLUMNS] if columns else []
    # A header with every column (the usual case): the cells are picked in C.
    pick = itemgetter(*places) if places and min(places) >= 0 else None
    for number, raw in rows:
        try:
            if fmt == "ndjson":
                try:
                    item = json.loads(raw, parse_int=bounded_int)
                except (ValueError, RecursionError):
                    raise RowError("Not a valid JSON line.") from None
                if not isinstance(item, dict):
                    raise RowError("Must be a JSON object.")
                unknown = [k for k in item if k not in COLUMNS]
                if unknown:
                    raise RowError(f"{unknown[0]}: Unknown field.")
                yield number, check(item, False)
            else:
                if len(raw) != width:
                    if len(raw) > width:
                        raise RowError(f"Has {len(raw)} cells but the header has {width} columns.")
                    raw = raw + [""] * (width - len(raw))
                if pick is not None:
                    yield number, check_values(*pick(raw), True)
                else:
                    yield number, check_values(*[raw[i] if i >= 0 else None for i in places], True)
        except RowError as exc:
            yield number, str(exc)
