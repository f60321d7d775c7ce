"""Reading an event-history file row by row: CSV with a header, or JSON lines.

Columns (CSV header, matched case-insensitively) and JSON keys: ``email``, ``name``,
``occurred_at`` (required), ``message_ref``, ``value``, ``properties`` (optional; in
CSV a JSON object in its cell). A CSV column or JSON key outside these is an error
(a typo would otherwise drop data silently). Row numbers are what a person finds in
the file: the CSV's line (the header is line 1) or the JSON line's number.

Each row is checked here, in Python, because each bad row must be reported on its
own; the addresses go through the platform's one normalisation
(``audience.fields.normalise_email``), cached per import since a history names
each address many times. CSV rows are checked a block at a time, column by column
(``RowChecker.check_columns``); a block with any row that is not plain is checked
row by row, which is the rules' one statement and names each fault.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from itertools import islice, repeat
from operator import methodcaller
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
LAST_YEAR = 9000
# datetime.isoformat()'s spelling of a whole second in UTC.
_CANONICAL_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")
# What a block's instants must all look like to be checked together (RowChecker.check_columns):
# that spelling, or with Z for the offset. ASCII digits only, as fromisoformat reads them.
_PLAIN_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\+00:00|Z)")
_AFTER_LAST_YEAR = datetime(LAST_YEAR + 1, 1, 1, tzinfo=timezone.utc)
# A character COPY's text format escapes (_copy_text).
_TO_ESCAPE = re.compile(r"[\\\t\n\r]")


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


# An imported event's key (dedup_key; RowChecker.check_columns makes it for a whole
# column): the account, the instant's second in hex, and the digest of the address,
# name, instant and message_ref joined by the separator. Stored: never change it.
_KEY = "import:{}:{:010x}:{}"
_KEY_SEPARATOR = "\x1f"


class RowError(ValueError):
    """One row's fault, ``"field: message"``."""


def dedup_key(account_id: int, email: str, name: str, occurred_at: datetime, message_ref: str | None,
              occurred_text: str | None = None) -> str:
    """The same event imported twice (a re-upload, a retried job) has the same key:
    one address, name, instant (in UTC) and other-platform message. Value and
    properties are left out, so re-importing a corrected file does not double its events."""
    text = _KEY_SEPARATOR.join((email, name, occurred_text or occurred_at.isoformat(), message_ref or ""))
    # The instant leads so that a history written in time order lands on neighbouring
    # pages of the unique index rather than on random ones (measured: the index is
    # most of an insert's cost once it outgrows memory).
    digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return _KEY.format(account_id, int(occurred_at.timestamp()), digest)


class RowChecker:
    """Turns raw mappings into EventRow, or raises RowError naming the field."""

    EMAILS_KEPT = 1_000_000  # addresses as written, with what they normalise to (or their fault)

    def __init__(self, account_id: int, now: datetime) -> None:
        self.account_id = account_id
        self.latest = now + FUTURE_SLACK
        self._emails: dict[str, str] = {}
        self._bad_emails: dict[str, RowError] = {}
        self._names: set[str] = set()
        self._key_format = partial(_KEY.format, account_id)

    def _email(self, value: Any) -> str:
        if not isinstance(value, str):
            raise RowError("email: Not a valid string.")
        known = self._emails.get(value)
        if known is not None:
            return known
        fault = self._bad_emails.get(value)
        if fault is None:
            try:
                known = normalise_email(value)
            except InvalidFieldError as exc:
                fault = RowError(str(exc))
            if len(self._emails) + len(self._bad_emails) < self.EMAILS_KEPT:
                if fault is None:
                    self._emails[value] = known
                else:
                    self._bad_emails[value] = fault
        if fault is not None:
            raise fault
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
        if not EARLIEST.year <= moment.year <= LAST_YEAR:
            raise RowError(f"occurred_at: Must be between the years {EARLIEST.year} and {LAST_YEAR}.")
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
            value = _json_object(value, "properties: Not valid JSON.", "properties: ")
        elif not isinstance(value, dict):
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
        # The common cases (a known address or name, an empty optional cell) are
        # answered inline, the rest by the checks above.
        known = self._emails.get(email) if isinstance(email, str) else None
        email = known if known is not None else self._email(email)
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
        line = (f"{_copy_text(email)}\t{name}\t{text}\t{_copy_text(ref)}"
                f"\t{COPY_NULL if number is None else repr(number)}"
                f"\t{props if props == '{}' else _copy_text(props)}\t{key}\n")
        return EventRow(email, name, moment, text, ref, number, props, key, line)

    def check_columns(self, emails: Sequence[str], names: Sequence[str], instants: Sequence[str],
                      refs: Sequence[str], values: Sequence[str], properties: Sequence[str]) -> list[EventRow] | None:
        """A block of CSV rows, column by column: the rows ``check_values`` would make
        of them, or None where any row is not plain (each row then goes through
        ``check_values``, which names its fault). Plain: valid addresses and names,
        instants in whole seconds in UTC (isoformat's spelling or Z), optional cells
        that check. Each column is a few passes of C (map, join, min, max) where a
        row at a time cost a dozen Python calls: about a fifth less CPU a row."""
        addresses = self._known_emails(emails)
        if addresses is None or not self._known_names(names):
            return None
        instant = self._plain_instants(instants)
        refs_text = _plain_refs(refs)
        numbers = _plain_numbers(values)
        props = self._plain_properties(properties)
        if instant is None or refs_text is None or numbers is None or props is None:
            return None
        texts, moments = instant
        # dedup_key's text, digest and key, for the whole column.
        digests = map(methodcaller("hexdigest"), map(partial(hashlib.blake2b, digest_size=16),
                                                       map(str.encode, map(_KEY_SEPARATOR.join,
                                                                           zip(addresses, names, texts, refs_text)))))
        keys = list(map(self._key_format, map(int, map(datetime.timestamp, moments)), digests))
        lines = map(_LINE.format, _copy_column(addresses), names, texts,
                    [_copy_text(r or None) for r in refs_text] if _escapes(refs_text) else
                    [r or COPY_NULL for r in refs_text],
                    [COPY_NULL if n is None else repr(n) for n in numbers] if any(values) else repeat(COPY_NULL),
                    [p if p == "{}" else _copy_text(p) for p in props] if any(properties) else props, keys)
        # tuple.__new__ through partial makes each EventRow in C (a NamedTuple's own
        # constructor is a Python function).
        return list(map(_NEW_ROW, zip(addresses, names, moments, texts, [r or None for r in refs_text], numbers,
                                      props, keys, lines)))

    def _plain_instants(self, instants: Sequence[str]) -> tuple[list[str], list[datetime]] | None:
        """Their texts in isoformat's spelling and the instants, if all are plain and in range."""
        if not all(map(_PLAIN_INSTANT.fullmatch, instants)):
            return None
        texts = list(map(methodcaller("replace", "Z", "+00:00"), instants))
        try:
            moments = list(map(datetime.fromisoformat, texts))
        except ValueError:  # a day or an hour that does not exist
            return None
        if min(moments) < EARLIEST or max(moments) >= _AFTER_LAST_YEAR or max(moments) > self.latest:
            return None
        return texts, moments

    def _plain_properties(self, cells: Sequence[str]) -> list[str] | repeat[str] | None:
        if not any(cells):
            return repeat("{}")
        try:
            return [self._properties(p, True) if p else "{}" for p in cells]
        except RowError:
            return None

    def _known_emails(self, emails: Sequence[str]) -> list[str] | None:
        """The block's addresses normalised, or None if any is not a valid address
        (or the cache is full and one is not in it)."""
        get = self._emails.get
        found = list(map(get, emails))
        if None in found:
            for value in set(emails).difference(self._emails):
                try:
                    self._email(value)
                except RowError:
                    return None
            found = list(map(get, emails))
            if None in found:
                return None
        return found  # type: ignore[return-value]

    def _known_names(self, names: Sequence[str]) -> bool:
        if self._names.issuperset(names):
            return True
        try:
            self._names.update([self._name(n) for n in set(names).difference(self._names)])
        except RowError:
            return False
        return True


COPY_NULL = "\\N"  # COPY text's NULL (audience.event_writer too)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_LINE = "{}\t{}\t{}\t{}\t{}\t{}\t{}\n"
_NEW_ROW = partial(tuple.__new__, EventRow)


def _copy_text(value: str | None) -> str:
    """``value`` as a field of COPY's text format (``\\N`` for NULL)."""
    if value is None:
        return COPY_NULL
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:  # rare: four scans beat a translate
        return value.translate(_COPY_ESCAPES)
    return value


def _escapes(column: Sequence[str]) -> bool:
    return _TO_ESCAPE.search("".join(column)) is not None


def _copy_column(column: list[str]) -> list[str]:
    return list(map(_copy_text, column)) if _escapes(column) else column


def _plain_refs(cells: Sequence[str]) -> list[str] | None:
    """message_ref cells as ``_message_ref`` cleans them ("" for none), if all are valid."""
    refs = list(map(str.strip, map(methodcaller("strip", "<>"), map(str.strip, cells))))
    if max(map(len, refs)) > MESSAGE_REF_MAX or "\x00" in "".join(refs):
        return None
    return refs


def _plain_numbers(cells: Sequence[str]) -> list[float | None] | repeat[None] | None:
    """value cells as numbers (None for an empty one), if all are finite numbers."""
    if not any(cells):
        return repeat(None)
    try:
        numbers = [None if v == "" else float(v) for v in cells]
    except (ValueError, OverflowError):
        return None
    return numbers if all(map(math.isfinite, [n for n in numbers if n is not None])) else None


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


Checked = tuple[list[tuple[int, EventRow]], list[tuple[int, str]], int]
BLOCK = 1_000  # CSV rows checked column by column together; one row that is not plain sends its block row by row


def checked_blocks(rows: Iterator[tuple[int, Any]], fmt: str, checker: RowChecker, columns: list[str] | None,
                   size: int) -> Iterator[Checked]:
    """The rows ``size`` at a time: ``(valid rows, faults "field: message", rows
    read)``, each numbered. Ends with a block of fewer than ``size`` rows, maybe none."""
    width = len(columns or ())
    # Where each field is in a CSV row (-1: no such column).
    places = [columns.index(c) if c in columns else -1 for c in COLUMNS] if columns else []
    while True:
        block = list(islice(rows, size))
        good: list[tuple[int, EventRow]] = []
        faults: list[tuple[int, str]] = []
        for part in [block[i:i + BLOCK] for i in range(0, len(block), BLOCK)]:
            checked = _checked_columns(part, checker, places, width) if fmt == "csv" else None
            if checked is not None:
                good.extend(checked)
                continue
            for number, raw in part:
                try:
                    good.append((number, _checked_row(raw, fmt, checker, places, width)))
                except RowError as exc:
                    faults.append((number, str(exc)))
        yield good, faults, len(block)
        if len(block) < size:
            return


def _checked_columns(part: list[tuple[int, list[str]]], checker: RowChecker, places: list[int],
                     width: int) -> list[tuple[int, EventRow]] | None:
    """A block of CSV rows checked together (RowChecker.check_columns), or None."""
    if any(len(cells) != width for _, cells in part):
        return None
    columns = list(zip(*[cells for _, cells in part]))
    empty = ("",) * len(part)
    rows = checker.check_columns(*[columns[i] if i >= 0 else empty for i in places])
    return None if rows is None else list(zip([number for number, _ in part], rows))


def _checked_row(raw: Any, fmt: str, checker: RowChecker, places: list[int], width: int) -> EventRow:
    """One row: a CSV row's cells or a JSON line's bytes; RowError names its fault."""
    if fmt == "ndjson":
        item = _json_object(raw, "Not a valid JSON line.")
        unknown = [k for k in item if k not in COLUMNS]
        if unknown:
            raise RowError(f"{unknown[0]}: Unknown field.")
        return checker.check(item, False)
    if len(raw) != width:
        if len(raw) > width:
            raise RowError(f"Has {len(raw)} cells but the header has {width} columns.")
        raw = raw + [""] * (width - len(raw))
    return checker.check_values(*[raw[i] if i >= 0 else None for i in places], True)


def _json_object(text: str | bytes, invalid: str, field: str = "") -> dict[str, Any]:
    """``text`` parsed as a JSON object (integers bounded); RowError ``invalid`` or
    ``field`` + "Must be a JSON object."."""
    try:
        value = json.loads(text, parse_int=bounded_int)
    except (ValueError, RecursionError):
        raise RowError(invalid) from None
    if not isinstance(value, dict):
        raise RowError(f"{field}Must be a JSON object.")
    return value
