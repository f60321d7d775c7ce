"""The lean yardstick for the send path (issue 22, item 6): the least a batched
pipeline must do to turn due enrollments into sent, recorded emails, written
without the platform, so the platform's rate can be read as a share of it.

Each of two processes loops: claim up to 500 due enrollments with ``FOR UPDATE
SKIP LOCKED`` (one short transaction, rows and their subscribers in one round
trip), render each email with the step's template compiled once by Jinja2, write
its MIME bytes into a fixed skeleton (multipart/alternative, quoted-printable
bodies, List-Unsubscribe, a Message-ID from the key), send it over one SMTP
connection reused for the whole run (pipelined: one round trip a message, as
the platform's SMTP transport does), and record the batch in one transaction: the
message rows (``sent``), their ``sent`` events and the enrollments completed.

What it leaves out, on purpose, is what makes the platform a platform: link
tracking and its signatures, the unsubscribe footer check, suppression and
topic checks, failover and rate limits, the broker hop between advance and send,
leases that outlive a dead process. The figure is an upper bound, not a target
to reach by dropping those.

Run from ``bench.send_pipeline`` (``--only lean``), which seeds the same
enrollments as the platform's run and times it the same way.
"""
from __future__ import annotations

import binascii
import hashlib
import json
import multiprocessing
import os
import re
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import format_datetime

import jinja2
import psycopg2

from bench import process_cpu

BATCH = 500
PROCESSES = 2

_CLAIM = """
    WITH claimed AS (
        UPDATE enrollments e SET claimed_until = now() + interval '5 minutes'
        WHERE e.id IN (SELECT id FROM enrollments
                       WHERE status = 'active' AND next_run_at <= now()
                         AND (claimed_until IS NULL OR claimed_until < now())
                       LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
        RETURNING e.id, e.account_id, e.sequence_id, e.subscriber_id)
    SELECT c.id, c.account_id, c.sequence_id, c.subscriber_id, s.email, s.first_name
    FROM claimed c JOIN subscribers s ON s.id = c.subscriber_id"""

_RECORD = """
    WITH v AS (SELECT * FROM json_to_recordset(%(rows)s::json)
               AS v(enrollment_id bigint, account_id bigint, sequence_id bigint, step_id bigint,
                    subscriber_id bigint, to_email text, subject text, key text)),
    m AS (
        INSERT INTO messages (account_id, subscriber_id, sequence_id, enrollment_id, step_id, idempotency_key,
                              status, to_email, subject, provider, attempts, sent_at, meta, created_at, updated_at)
        SELECT account_id, subscriber_id, sequence_id, enrollment_id, step_id, key, 'sent', to_email, subject,
               'smtp', 1, now(), '{}', now(), now() FROM v
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id, account_id, subscriber_id),
    ev AS (
        INSERT INTO events (account_id, subscriber_id, message_id, name, dedup_key, source, properties,
                            occurred_at, created_at)
        SELECT account_id, subscriber_id, id, 'sent', 'sent:' || id, 'platform', '{}', now(), now() FROM m)
    UPDATE enrollments SET status = 'completed', current_step = 1, next_run_at = NULL, claimed_until = NULL,
                           completed_at = now(), updated_at = now()
    FROM v WHERE enrollments.id = v.enrollment_id"""

_TAGS = re.compile(r"<[^>]+>")
_BLANKS = re.compile(r"\n\s*\n+")


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends, as the wire wants it."""
    return binascii.b2a_qp(text.encode(), istext=False).replace(b"\n", b"\r\n") if text else b""


def _qp_text(text: str) -> bytes:
    return b"\r\n".join(binascii.b2a_qp(line.encode()) for line in text.split("\n"))


class Skeleton:
    """The message's fixed bytes, filled per email with its own values."""

    def __init__(self, from_email: str, from_name: str, domain: str) -> None:
        self.head = (f"From: {from_name} <{from_email}>\r\nMIME-Version: 1.0\r\n"
                     f"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n").encode()
        self.domain = domain
        self.boundary = b"==lean==" + hashlib.sha1(from_email.encode()).hexdigest()[:16].encode()

    def build(self, to: str, subject: str, html: str, text: str, key: str, date: str) -> bytes:
        b = self.boundary
        digest = hashlib.sha1(key.encode()).hexdigest()[:24]
        return b"".join((
            self.head,
            f"To: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: <{digest}@{self.domain}>\r\n"
            f"List-Unsubscribe: <https://{self.domain}/u/{digest}>\r\n".encode(),
            b'Content-Type: multipart/alternative; boundary="', b, b'"\r\n\r\n--', b,
            b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
            _qp_text(text), b"\r\n--", b,
            b"\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
            _qp(html), b"\r\n--", b, b"--\r\n"))


class PipelinedSmtp:
    """One SMTP connection for the whole run, pipelined as the platform's is
    (RFC 2920): each write carries the last message's content and the next one's
    envelope, so a message costs one round trip. Any refusal stops the run."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.replies = self.sock.makefile("rb")
        self._expect(1)
        self.sock.sendall(b"EHLO lean.bench.test\r\n")
        self._expect(1)
        self.pending, self.awaiting = b"", 0

    def _expect(self, count: int) -> None:
        for _ in range(count):
            while True:
                line = self.replies.readline()
                if not line[:1] in (b"2", b"3"):
                    raise RuntimeError(f"SMTP refused: {line!r}")
                if line[3:4] != b"-":
                    break

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        self.sock.sendall(self.pending + f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode())
        self._expect(self.awaiting + 3)
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        self.pending, self.awaiting = stuffed + b".\r\n", 1

    def flush(self) -> None:
        """The last content's acceptance, before its batch is recorded."""
        if self.awaiting:
            self.sock.sendall(self.pending)
            self._expect(self.awaiting)
            self.pending, self.awaiting = b"", 0

    def close(self) -> None:
        self.flush()
        self.sock.sendall(b"QUIT\r\n")
        self.sock.close()


def _worker(dsn: str, smtp_port: int, subject_source: str, html_source: str, step_id: int,
            sender: str) -> dict[str, float]:
    """One process's loop until no due enrollment is left; returns how many it sent,
    the CPU seconds it took and the wall seconds of each phase."""
    cpu_started = time.process_time()
    spent = {"claim": 0.0, "render and send": 0.0, "record": 0.0}
    env = jinja2.Environment(autoescape=True)
    subject_template, html_template = env.from_string(subject_source), env.from_string(html_source)
    skeleton = Skeleton(sender, "Bench", sender.split("@")[1])
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    smtp = PipelinedSmtp(smtp_port)
    sent = 0
    try:
        while True:
            phase = time.perf_counter()
            with conn, conn.cursor() as cur:  # the claim, committed before any I/O
                cur.execute(_CLAIM, {"batch": BATCH})
                claimed = cur.fetchall()
            spent["claim"] += time.perf_counter() - phase
            if not claimed:
                return {"sent": sent, "cpu": time.process_time() - cpu_started,
                        "postgres": process_cpu(backend), **spent}
            phase = time.perf_counter()
            date = format_datetime(datetime.now(timezone.utc))
            rows = []
            for enrollment_id, account_id, sequence_id, subscriber_id, email, first_name in claimed:
                context = {"subscriber": {"first_name": first_name, "email": email}}
                subject = subject_template.render(context)
                html = html_template.render(context)
                text = _BLANKS.sub("\n\n", _TAGS.sub("", html)).strip()
                key = f"{enrollment_id}:{step_id}:"
                smtp.send(sender, email, skeleton.build(email, subject, html, text, key, date))
                rows.append({"enrollment_id": enrollment_id, "account_id": account_id, "sequence_id": sequence_id,
                             "step_id": step_id, "subscriber_id": subscriber_id, "to_email": email,
                             "subject": subject, "key": key})
            smtp.flush()
            spent["render and send"] += time.perf_counter() - phase
            phase = time.perf_counter()
            with conn, conn.cursor() as cur:  # one recording transaction per batch
                cur.execute(_RECORD, {"rows": json.dumps(rows)})
            spent["record"] += time.perf_counter() - phase
            sent += len(rows)
    finally:
        smtp.close()
        conn.close()


def run(dsn: str, smtp_port: int, subject: str, html: str, sender: str, make_due: Callable[[], object],
        processes: int = PROCESSES) -> dict[str, float]:
    """The enrollments of ``dsn``'s database (one email step each), made due by
    ``make_due`` once the processes are up, sent into ``smtp_port`` by
    ``processes`` lean workers; returns the emails sent (``sent``), the lean
    processes' CPU seconds (``cpu``), their PostgreSQL backends' (``postgres``)
    and their wall seconds by phase, summed. The caller times it, as it times the platform (from making them
    due to the last ``sent_at``)."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM steps ORDER BY id LIMIT 1")
        step_id = cur.fetchone()[0]
    conn.close()
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        pool.map(time.sleep, [0] * processes)  # every process forked and idle before the clock starts
        make_due()
        results = [pool.apply_async(_worker, (dsn, smtp_port, subject, html, step_id, sender))
                   for _ in range(processes)]
        done = [r.get() for r in results]
    return {key: sum(d[key] for d in done) for key in done[0]}
