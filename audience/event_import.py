"""History import: events from another platform, as a job (``POST /api/v1/events/import``).

The upload (CSV or JSON lines, up to ``MAX_BYTES`` and ``MAX_ROWS``) is streamed into
``job_parts`` as it arrives; the web request only counts lines and checks a CSV's
header, so it never parses millions of rows nor holds the file. A worker reads the
parts back one at a time, checks each row (``audience.event_rows``), and writes
chunks of ``CHUNK`` rows, committing the chunk and the job's counts together.

Imported events are ``source = 'import'`` and never start, advance or end a
sequence (sequencing ignores that source) and send nothing: no trigger is fired,
no enrollment woken. They feed what reads history: the account-level analyses,
attribution and the goal logic of the rollups (a custom event after one of our
emails), and the models. Addresses the account does not know become subscribers
(``active``, like an event posted to the API, enrolled in nothing).

Idempotent twice over: the job's ``processed`` count moves with each committed
chunk, so a resumed job (worker killed, lease lapsed, the tick re-enqueued it)
skips what is done and its counts stay exact; and each event carries a key of
its account, address, name, instant and message_ref under the unique
``events.dedup_key``, so importing the same file again adds nothing (those rows
count as ``duplicates``).
"""
from __future__ import annotations

import io
import queue
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.orm import Session

from audience.errors import ImportPayloadError, ImportTooLargeError
from audience.event_rows import Checked, EventRow, RowChecker, check_start, checked_blocks, csv_columns, raw_rows
from audience.event_writer import KnownAddresses, write_events
from audience.imports import row_faults
from core.gc_pacing import fewer_collections
from core.isolation import run_isolated
from models import Job, JobPart, utcnow
from models.db import raw_cursor

KIND = "event_import"
MAX_BYTES = 1024 * 1024 * 1024
MAX_ROWS = 5_000_000
PART_BYTES = 8 * 1024 * 1024
HEAD_BYTES = 65536  # as much of the start as the web request checks (a CSV's header)
CHUNK = 50_000  # rows a transaction: 25,000 cost 7% more time a row in per-chunk work (5M interleaved, alternated)
MAX_ERROR_MESSAGES = 100
LEASE = timedelta(minutes=5)
TOO_LARGE = f"The import is larger than {MAX_BYTES // (1024 * 1024)} MB; split it."
_parts = JobPart.__table__


def create_event_import_job(session: Session, account_id: int, blocks: Iterable[bytes], fmt: str,
                            now: datetime) -> Job:
    """A pending job whose upload is stored in parts as ``blocks`` arrive; raises
    ImportPayloadError / ImportTooLargeError (the caller rolls back: no job, no part)."""
    job = Job(account_id=account_id, kind=KIND, status="pending", payload=None, payload_format=fmt, total=0,
              processed=0, created_count=0, updated_count=0, error_count=0, errors=[],
              result={"events": 0, "duplicates": 0, "subscribers_created": 0}, created_at=now,
              claimed_until=now + LEASE)
    session.add(job)
    session.flush()
    pending = bytearray()
    head = bytearray()  # the upload's first bytes, kept until its first line is checked
    part = size = lines = 0
    checked_start = False
    ends_with_newline = True
    header = 1 if fmt == "csv" else 0
    for block in blocks:
        if not block:
            continue
        size += len(block)
        if size > MAX_BYTES:
            raise ImportTooLargeError(TOO_LARGE, field="body")
        lines += block.count(b"\n")
        ends_with_newline = block.endswith(b"\n")
        if lines - header > MAX_ROWS:
            raise ImportTooLargeError(f"The import has more than {MAX_ROWS:,} rows; split it.", field="body")
        pending += block
        if not checked_start:  # a first line longer than a block, or a part, is checked whole
            head += block[:HEAD_BYTES - len(head)]
            if b"\n" in head or len(head) >= HEAD_BYTES:
                check_start(bytes(head), fmt)
                checked_start = True
        if len(pending) >= PART_BYTES:
            _store_part(session, job.id, part, pending)
            part, pending = part + 1, bytearray()
    if size == 0 or (part == 0 and not pending.strip()):
        raise ImportPayloadError("The import is empty.", field="body")
    if not checked_start:
        check_start(bytes(head), fmt)
    if pending:
        _store_part(session, job.id, part, pending)
    rows = lines + (0 if ends_with_newline else 1) - header
    if rows > MAX_ROWS:
        raise ImportTooLargeError(f"The import has more than {MAX_ROWS:,} rows; split it.", field="body")
    if rows <= 0:
        raise ImportPayloadError("The import has no event rows.", field="body")
    job.total = rows  # lines; set to the rows read once the job completes
    return job


# COPY's binary format: its signature, no flags, no header extension; a row of three
# fields (two int4, one bytea); the trailer.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\0" + struct.pack("!ii", 0, 0)
_COPY_PART = "COPY job_parts (job_id, part, data) FROM STDIN WITH (FORMAT binary)"


def _store_part(session: Session, job_id: int, part: int, data: bytearray) -> None:
    """One part of the upload. On PostgreSQL by binary COPY: an INSERT's bytea goes
    as hex text the server parses back, five times the time for the same 8 MB
    (most of an upload's time)."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(_parts), {"job_id": job_id, "part": part, "data": bytes(data)})
        return
    row = struct.pack("!hiiiii", 3, 4, job_id, 4, part, len(data))
    stream = io.BytesIO(b"".join((_COPY_HEADER, row, data, struct.pack("!h", -1))))
    with raw_cursor(session) as cursor:
        cursor.copy_expert(_COPY_PART, stream, size=len(data) + 64)


class _PartStream(io.RawIOBase):
    """The upload as one file, read a part (a few MB) at a time from the database."""

    def __init__(self, read_part: Callable[[int], bytes | None]) -> None:
        self._read_part, self._next = read_part, 0
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._view:
            data = self._read_part(self._next)
            if data is None:
                return 0
            self._next += 1
            self._view = memoryview(bytes(data))
        n = min(len(buffer), len(self._view))
        buffer[:n] = self._view[:n]
        self._view = self._view[n:]
        return n


def _part_query(job_id: int, part: int) -> Select[tuple[bytes]]:
    return select(_parts.c.data).where(_parts.c.job_id == job_id, _parts.c.part == part)


_DONE = object()


def _read_ahead(chunks: Iterator[Checked]) -> Iterator[Checked]:
    """Check the next chunk in a thread while the database writes this one: the
    checks are Python and the writes wait on PostgreSQL, which runs on another core
    (psycopg2 lets go of the GIL while it waits), so the two overlap. At most one
    chunk waits ready; the thread's exception is raised here."""
    ready: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(exc)

    thread = threading.Thread(target=produce, name="event-import-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)


def _record(job: Job, processed: int, events: int, duplicates: int, created: int,
            errors: list[tuple[int, str]]) -> None:
    job.processed += processed
    job.created_count += events
    job.error_count += len(errors)
    result = dict(job.result or {})  # a new dict: JSON columns don't track mutation
    result["events"] = int(result.get("events", 0)) + events
    result["duplicates"] = int(result.get("duplicates", 0)) + duplicates
    result["subscribers_created"] = int(result.get("subscribers_created", 0)) + created
    job.result = result
    room = MAX_ERROR_MESSAGES - len(job.errors or [])
    if errors and room > 0:
        job.errors = [*(job.errors or []), *(f"row {n}: {m}" for n, m in sorted(errors)[:room])]


def _flush(session: Session, job: Job, batch: list[tuple[int, EventRow]], errors: list[tuple[int, str]],
           processed: int, now: datetime, known: KnownAddresses) -> None:
    refused: list[tuple[int, str]] = []

    def refuse(numbered: tuple[int, EventRow], exc: Exception) -> None:
        refused.append((numbered[0], f"The database refused the row ({type(exc).__name__})."))

    def write(rows: Sequence[tuple[int, EventRow]]) -> tuple[int, int]:
        return write_events(session, job.account_id, [r for _, r in rows], now, known)

    written = run_isolated(session, batch, write, refuse, passthrough=(), what="event import",
                           caught=row_faults(session)) if batch else []
    events = sum(e for e, _ in written)
    created = sum(c for _, c in written)
    _record(job, processed, events, len(batch) - len(refused) - events, created, [*errors, *refused])


def run_event_import(session: Session, job_id: int, clock: Callable[[], datetime] = utcnow,
                     lease: timedelta = LEASE) -> Iterator[Job]:
    """Process a claimed job from where it stopped, yielding it after each chunk
    (commit there: that also extends the lease); the last yield has status
    ``completed``, and the upload's parts are deleted then."""
    job = session.get(Job, job_id)
    if job is None or job.status != "running" or job.kind != KIND:
        return
    fmt = job.payload_format
    concurrent = session.get_bind().dialect.name == "postgresql"
    if concurrent:
        # The reading thread has connections of its own, one short read each (no
        # transaction held open: the rollups' horizon is not held back).
        engine = session.get_bind()

        def read_part(part: int) -> bytes | None:
            with engine.connect() as connection:  # type: ignore[union-attr]
                return connection.execute(_part_query(job_id, part)).scalar()
    else:
        def read_part(part: int) -> bytes | None:
            return session.execute(_part_query(job_id, part)).scalar()
    rows = raw_rows(io.BufferedReader(_PartStream(read_part), buffer_size=1 << 20), fmt)
    columns = None
    if fmt == "csv":
        header = next(rows, None)
        if header is None:
            raise ImportPayloadError("The import is empty.")
        columns = csv_columns(header[1])
    # Stable across resumes: "the future" is measured from the upload.
    checker = RowChecker(job.account_id, job.created_at)
    chunks = checked_blocks(islice(rows, job.processed, None), fmt, checker, columns, CHUNK)
    known = KnownAddresses()
    with fewer_collections():
        for batch, errors, processed in (_read_ahead(chunks) if concurrent else chunks):
            _flush(session, job, batch, errors, processed, clock(), known)
            if processed >= CHUNK:
                job.claimed_until = clock() + lease
                yield job
                known.committed()  # the caller commits at each yield
    job.total = job.processed
    job.status = "completed"
    job.finished_at = clock()
    job.claimed_until = None
    session.execute(delete(JobPart).where(JobPart.job_id == job_id))
    yield job


def discard_upload(session: Session, job_id: int) -> None:
    """A failed job's parts are of no more use (the client uploads again)."""
    session.execute(delete(JobPart).where(JobPart.job_id == job_id))
