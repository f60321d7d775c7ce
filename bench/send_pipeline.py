"""Benchmark of the send path (issue: delivery speed), through the real processes.

For each scenario, on a database of its own: N subscribers enrolled in a one-email
sequence (HTML with links, so the tracking rewrite runs, and the text part derived
from it), made due at once while beat (tick every second), the default worker
(prefork, advance) and the send worker (threads) are running. Measured: wall time
from the UPDATE that makes them due to the last message row recorded ``sent``
(its ``sent_at``), as emails/s end to end.

1. Into Postfix's ``smtp-sink`` on loopback, next to the raw rate of plain smtplib
   clients (pre-built bytes, one connection each) into the same sink; with one
   send worker, then with the same pool split over two (one GIL each).
2. Into a loopback SMTP server that waits 20 ms before answering each DATA (the
   distance to a real provider), with the send pool at 8/16/32/64 threads; the
   server's own raw rate with 64 smtplib clients comes first, to show it is not
   the limit; then 64 connections from two send workers of 32.
3. In process, without the broker or SMTP: CPU per email for each stage of
   building a message, so the figures above can be read.

Where PostgreSQL loads pg_stat_statements (``shared_preload_libraries``; the
machine's configuration, not the platform's), the platform's run also reports its
most expensive statements, each one's execution time per email.

Run: ``.venv/bin/python -m bench.send_pipeline [--emails 20000] [--sweep-emails 10000]``
(PostgreSQL and Redis on 127.0.0.1; ``apt-get install postfix`` for smtp-sink).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import smtplib
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUN = secrets.token_hex(3)
SMTP_SINK = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None)

ENV = {"REDIS_URL": "redis://127.0.0.1:6379/0", "SECRET_KEY": "bench-secret-key-0123456789abcdef",
       "ESEQ_ADMIN_TOKEN": "bench-admin-token-0123456789abcdef", "ESEQ_LOG_LEVEL": "WARNING", "PUBLIC_BASE_URL": "https://mail.bench.test",
       "ESEQ_TICK_SECONDS": "1", "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"}
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from models import db  # noqa: E402
from tests.support import factories  # noqa: E402
from tests.support.database import fresh_database, url_for  # noqa: E402
from tests.support.processes import Proc, beat_argv, platform_env, worker_argv  # noqa: E402
from tests.support.smtp import free_port  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

# A newsletter of a usual size (about 3 kB of HTML): three links to rewrite, the
# subscriber's name, a non-ASCII character so the body needs a transfer encoding.
PARAGRAPH = ("<p>Our spring collection is here, {{ subscriber.first_name }}: linen shirts, light jackets and the "
             "sandals you asked for last year. Free returns for thirty days, as always — and members get "
             "early access to the sale.</p>\n")
HTML = ("<html><body>\n<h1>Hello {{ subscriber.first_name }}</h1>\n" + PARAGRAPH * 4
        + '<p><a href="https://shop.example.test/spring?utm=mail">See the collection</a> · '
          '<a href="https://shop.example.test/sale">Sale</a> · '
          '<a href="https://shop.example.test/account">Your account</a></p>\n'
        + PARAGRAPH * 4 + "</body></html>\n")
STEP = {"type": "email", "subject": "Spring is here, {{ subscriber.first_name }}", "html": HTML}
SWEEP = (8, 16, 32, 64)
SEND_PREFETCH = 4  # the Procfile's worker_send default (SEND_PREFETCH)
# Whether each run's database starts with a history of sent emails (seed); --no-history
# starts it empty, to show what an empty database does to the figures.
HISTORY = True


# --- SMTP servers -----------------------------------------------------------------

def wait_listening(port: int, timeout: float = 15) -> None:
    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, timeout, f"something to listen on 127.0.0.1:{port}")


def serve_slow_smtp(port: int, delay: float) -> None:
    """A minimal SMTP server (asyncio, its own process) that waits ``delay`` seconds
    before accepting each message; everything else is answered at once. It reads
    what arrived in one go and answers every complete command in one write (a
    pipelining client sends MAIL, RCPT and DATA together), so that its own CPU
    takes as little as it can from the machine the platform is measured on."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 slow-sink ESMTP\r\n")
        buffer = b""
        in_data = False
        while chunk := await reader.read(262144):
            buffer += chunk
            replies: list[bytes] = []
            while True:
                if in_data:
                    end = buffer.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    buffer, in_data = buffer[end + 5:], False
                    if replies:
                        writer.write(b"".join(replies))
                        replies = []
                    await asyncio.sleep(delay)
                    replies.append(b"250 2.0.0 Ok: queued\r\n")
                    continue
                end = buffer.find(b"\r\n")
                if end < 0:
                    break
                verb, buffer = buffer[:4].upper(), buffer[end + 2:]
                if verb == b"EHLO":
                    replies.append(b"250-slow-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10240000\r\n")
                elif verb == b"DATA":
                    replies.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    in_data = True
                    buffer = b"\r\n" + buffer  # the body's end marker may be its first line
                elif verb == b"QUIT":
                    writer.write(b"".join(replies) + b"221 2.0.0 Bye\r\n")
                    await writer.drain()
                    writer.close()
                    return
                else:  # HELO, MAIL, RCPT, RSET, NOOP
                    replies.append(b"250 2.0.0 Ok\r\n")
            if replies:
                writer.write(b"".join(replies))
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(session, "127.0.0.1", port, limit=16 * 1024 * 1024, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@contextmanager
def smtp_server(kind: str, tmp: Path, delay_ms: int = 0) -> Iterator[int]:
    port = free_port()
    if kind == "sink":
        argv = [str(SMTP_SINK), "-u", "nobody", f"127.0.0.1:{port}", "256"]
    else:
        argv = [sys.executable, "-m", "bench.send_pipeline", "slow-smtp", str(port), str(delay_ms)]
    proc = Proc(f"{kind}-{port}", argv, platform_env(), tmp)
    try:
        wait_listening(port)
        yield port
    finally:
        proc.stop()


def _client(port: int, raw: bytes, count: int) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        for i in range(count):
            client.sendmail("news@bench.test", [f"raw{i}@example.test"], raw)
    return count


def _client_threads(port: int, raw: bytes, threads: int, each: int) -> int:
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(lambda _: _client(port, raw, each), range(threads)))


def raw_rate(port: int, raw: bytes, connections: int, total: int, processes: int) -> float:
    """Plain smtplib clients, one connection each, spread over ``processes``."""
    threads = max(connections // processes, 1)
    each = max(total // (threads * processes), 1)
    started = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        sent = sum(pool.map(_client_threads, [port] * processes, [raw] * processes, [threads] * processes,
                            [each] * processes))
    return sent / (time.perf_counter() - started)


# --- the platform ---------------------------------------------------------------

def seed(emails: int) -> None:
    """An account, the sequence, and ``emails`` enrollments that are not due yet,
    after a history of as many emails sent (messages and their ``sent`` events),
    analysed: a platform in use, whose outbox and events are not empty.
    ``--no-history`` starts empty instead; in the one run of it so far the figures
    moved no more than the runs' spread (docs/benchmarks.md)."""
    account = factories.account("Bench")
    sequence = factories.sequence(account, [STEP])
    with db.get_engine().begin() as conn:
        conn.execute(text("""
            INSERT INTO subscribers (account_id, email, first_name, status, attributes, tags, created_at, updated_at)
            SELECT :a, 'reader' || g || '@example.test', 'Reader' || g, 'active', '{}', '[]', now(), now()
            FROM generate_series(1, :n) g"""), {"a": account, "n": emails})
        conn.execute(text("""
            INSERT INTO enrollments (account_id, sequence_id, subscriber_id, instance_key, run, status, current_step,
                                     next_run_at, state, enrolled_at, updated_at)
            SELECT :a, :s, id, '', 1, 'active', 0, now() + interval '1 day', '{}', now(), now()
            FROM subscribers WHERE account_id = :a"""), {"a": account, "s": sequence})
        if HISTORY:
            conn.execute(text("""
            WITH m AS (
                INSERT INTO messages (account_id, subscriber_id, sequence_id, idempotency_key, status, to_email, subject,
                                      provider, attempts, sent_at, meta, created_at, updated_at)
                SELECT :a, id, :s, 'history:' || id, 'sent', email, 'Last spring', 'smtp', 1,
                       now() - interval '1 hour', '{}', now() - interval '1 hour', now() - interval '1 hour'
                FROM subscribers WHERE account_id = :a
                RETURNING id, account_id, subscriber_id, sent_at)
            INSERT INTO events (account_id, subscriber_id, message_id, name, source, properties, occurred_at, created_at)
            SELECT account_id, subscriber_id, id, 'sent', 'platform', '{}', sent_at, sent_at FROM m"""),
                         {"a": account, "s": sequence})
    with db.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


# Where the machine's CPU went during a run, by process kind (/proc, Linux only).
KINDS = (("send worker", "-Q send"), ("default worker (advance)", "-Q default"), ("beat", " beat "),
         ("PostgreSQL", "postgres"), ("Redis", "redis-server"), ("SMTP server", "smtp-sink"),
         ("SMTP server", "slow-smtp"))


# Kinds of process a run starts itself: with ``roots`` given, only those started
# by the run (and their prefork children) count, not another run's workers or tests.
OWN_KINDS = ("send worker", "default worker (advance)", "beat")


def cpu_by_kind(roots: set[int] | None = None) -> dict[str, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    seconds: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        kind = next((name for name, marker in KINDS if marker in command), None)
        if kind in OWN_KINDS and roots is not None and not {int(entry.name), int(stat[1])} & roots:
            continue
        if kind is not None:
            seconds[kind] = seconds.get(kind, 0.0) + (int(stat[11]) + int(stat[12])) / ticks
            if kind == "send worker":  # its threads' switching shows as kernel time
                seconds["send worker, of it in the kernel"] = (seconds.get("send worker, of it in the kernel", 0.0)
                                                              + int(stat[12]) / ticks)
    return seconds


def send_worker_switches(roots: set[int] | None = None) -> int:
    """Context switches so far of every thread of the send workers (those of
    ``roots`` when given): each is a thread put to sleep or woken, mostly handing
    the GIL on."""
    switches = 0
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or b"-Q\0send" not in (entry / "cmdline").read_bytes():
                continue
            if roots is not None and int(entry.name) not in roots:
                continue
            for task in (entry / "task").iterdir():
                for line in (task / "status").read_text().splitlines():
                    if "ctxt_switches:" in line:  # voluntary and nonvoluntary
                        switches += int(line.split()[-1])
        except OSError:
            continue
    return switches


class BackendCpu:
    """PostgreSQL's CPU by the kind of process it served: every process of a run
    connects under an application name of its own (PGAPPNAME), and a thread reads
    this database's backends every 0.2 s, keeping each one's last CPU figure. A
    backend that came and went between two looks is missed (the sessions count
    shows whether any did)."""

    def __init__(self, database: str) -> None:
        import threading

        self.database, self.cpu, self.kind = database, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> BackendCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        import psycopg2

        ticks = os.sysconf("SC_CLK_TCK")
        conn = psycopg2.connect(url_for(self.database))
        conn.autocommit = True
        try:
            while not self._stop.wait(0.2):
                with conn.cursor() as cur:
                    cur.execute("SELECT pid, application_name FROM pg_stat_activity WHERE datname = %s "
                                "AND pid <> pg_backend_pid()", (self.database,))
                    for pid, application in cur.fetchall():
                        try:
                            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                        except OSError:
                            continue
                        self.kind[pid] = application or "other"
                        self.cpu[pid] = (int(stat[11]) + int(stat[12])) / ticks
        finally:
            conn.close()

    def by_kind(self, before: dict[int, float]) -> dict[str, float]:
        """CPU seconds since ``before`` (a snapshot of ``cpu``) by application name."""
        seconds: dict[str, float] = {}
        for pid, spent in self.cpu.items():
            seconds[self.kind[pid]] = seconds.get(self.kind[pid], 0.0) + spent - before.get(pid, 0.0)
        return seconds


def database_counts(conn: Any) -> dict[str, int]:
    """This database's sessions opened and transactions committed so far (the
    statistics PostgreSQL keeps per database, flushed to it about once a second)."""
    conn.execute(text("SELECT pg_stat_force_next_flush()"))
    conn.commit()
    sessions, transactions = conn.execute(text(
        "SELECT sessions, xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")).one()
    writes = {table: (ins, upd, hot) for table, ins, upd, hot in conn.execute(text(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd > 0"))}
    return {"sessions": int(sessions), "transactions": int(transactions), "writes": writes}


def statements_reset(conn: Any) -> bool:
    """Start counting this database's statements, when PostgreSQL has
    pg_stat_statements loaded (``shared_preload_libraries``); False when not."""
    try:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        conn.execute(text("SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database "
                          "WHERE datname = current_database()), 0)"))
        conn.commit()
        return True
    except Exception:  # noqa: BLE001 - not loaded: the report goes without this part
        conn.rollback()
        return False


def statement_times(conn: Any, emails: int, top: int = 8) -> list[tuple[float, int, str]]:
    """This database's most expensive statements since ``statements_reset``: each
    one's execution time per email (wall time in PostgreSQL, so it includes waiting
    for a core), its calls, and the start of its text."""
    rows = conn.execute(text("""
        SELECT total_exec_time, calls, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND query NOT LIKE '%pg_stat%' AND query NOT LIKE 'SELECT count(*) FROM messages%' AND query NOT LIKE '%history:%'
        ORDER BY total_exec_time DESC LIMIT :top"""), {"top": top}).all()
    return [(float(ms) * 1000 / emails, int(calls), str(query)[:110]) for ms, calls, query in rows]


def run_platform(label: str, smtp_port: int, emails: int, send_concurrency: int, tmp: Path,
                 send_workers: int = 1, timeout: float = 600) -> dict[str, float]:
    """Due enrollments -> accepted by the SMTP server -> recorded, through beat and workers."""
    name = f"eseq_bench_send_{RUN}_{label}"
    with fresh_database(name):
        db.configure(url_for(name))
        seed(emails)
        env = platform_env(DATABASE_URL=url_for(name), ESEQ_BROKER_PREFIX=f"eseq-bench-{RUN}-{label}:",
                           SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), FROM_EMAIL="news@bench.test")
        # As the Procfile runs them: worker_default (prefork, 2) and worker_send (threads).
        procs = [Proc(f"{label}-default", worker_argv("default", queues="default", pool="prefork", concurrency=2,
                                                     loglevel="INFO"), {**env, "PGAPPNAME": "default worker"}, tmp)]
        procs += [Proc(f"{label}-send{i}", worker_argv(f"send{i}", queues="send", pool="threads",
                                                      concurrency=send_concurrency, loglevel="INFO",
                                                      prefetch=SEND_PREFETCH), {**env, "PGAPPNAME": "send worker"}, tmp)
                  for i in range(send_workers)]
        procs.append(Proc(f"{label}-beat", beat_argv(tmp / f"{label}-schedule"), {**env, "PGAPPNAME": "beat"}, tmp))
        backends = BackendCpu(name).__enter__()
        try:
            for proc in procs[:-1]:
                proc.wait_ready()
            time.sleep(0.5)  # the sampler's look at the backends the workers opened while starting
            roots = {proc.popen.pid for proc in procs}
            cpu_before, switches_before = cpu_by_kind(roots), send_worker_switches(roots)
            backends_before = dict(backends.cpu)
            with db.get_engine().connect() as conn:
                counting = statements_reset(conn)
            with db.get_engine().begin() as conn:
                started = conn.execute(text("UPDATE enrollments SET next_run_at = now() RETURNING now()")).scalar()
            def all_sent() -> bool:
                with db.get_engine().connect() as conn:
                    return conn.execute(text("SELECT count(*) FROM messages WHERE status = 'sent' AND step_id IS NOT NULL")).scalar() == emails

            # Once a second: the count reads every row, and polled four times a second it
            # took about 50 µs of PostgreSQL's CPU an email from the run it measured (the
            # end time comes from sent_at, not from this poll).
            wait_for(all_sent, timeout, f"{label}: all {emails} emails sent", interval=1.0)
            cpu = {kind: spent - cpu_before.get(kind, 0.0) for kind, spent in cpu_by_kind(roots).items()}
            switches = send_worker_switches(roots) - switches_before
            time.sleep(0.3)
            postgres = backends.by_kind(backends_before)
            with db.get_engine().connect() as conn:
                last_queued, last_sent = conn.execute(text("SELECT max(created_at), max(sent_at) FROM messages")).one()
                statements = statement_times(conn, emails) if counting else []
        finally:
            backends.__exit__()
            for proc in procs:
                proc.stop()
        try:  # once every worker's connections closed, so their counts reached the statistics
            with db.get_engine().connect() as conn:
                database = database_counts(conn)
        finally:
            db.get_engine().dispose()
    elapsed = (last_sent - started).total_seconds()
    return {"elapsed": elapsed, "rate": emails / elapsed, "queued": (last_queued - started).total_seconds(),
            "switches": switches / emails, "sessions": database["sessions"], "statements": statements,
            "transactions": database["transactions"] / emails, "writes": database["writes"],
            **{f"cpu:{kind}": spent / emails * 1e6 for kind, spent in sorted(cpu.items(), key=lambda kv: -kv[1])},
            **{f"pg:{kind}": spent / emails * 1e6 for kind, spent in sorted(postgres.items(), key=lambda kv: -kv[1])}}


def run_lean(label: str, smtp_port: int, emails: int) -> dict[str, float]:
    """The same seeded enrollments sent by the lean yardstick (bench.lean_pipeline),
    timed as ``run_platform`` times the platform."""
    from bench import lean_pipeline

    name = f"eseq_bench_send_{RUN}_{label}"
    with fresh_database(name):
        db.configure(url_for(name))
        seed(emails)
        started: list[object] = []

        def make_due() -> None:
            with db.get_engine().begin() as conn:
                started.append(conn.execute(text("UPDATE enrollments SET next_run_at = now() RETURNING now()")).scalar())

        try:
            lean = lean_pipeline.run(url_for(name), smtp_port, STEP["subject"], HTML, "news@bench.test", make_due)
            sent, cpu, postgres = int(lean.pop("sent")), lean.pop("cpu"), lean.pop("postgres")
            with db.get_engine().connect() as conn:
                recorded, last_sent = conn.execute(text(
                    "SELECT count(*), max(sent_at) FROM messages WHERE status = 'sent' AND step_id IS NOT NULL")).one()
        finally:
            db.get_engine().dispose()
    if sent != emails or recorded != emails:
        raise RuntimeError(f"lean pipeline: {sent} sent and {recorded} recorded of {emails}")
    elapsed = (last_sent - started[0]).total_seconds()
    return {"elapsed": elapsed, "rate": emails / elapsed, "cpu": cpu / emails * 1e6,
            "postgres": postgres / emails * 1e6, "phases": lean}


# --- in process -------------------------------------------------------------------

def stage_costs(samples: int = 2000) -> list[tuple[str, float]]:
    """Microseconds of CPU per email for each step ``delivery.sender.prepare`` takes."""
    from datetime import datetime, timezone

    from content.compliance import add_unsubscribe_footer
    from content.render import render_email
    from delivery.mime import Envelope, build_message
    from delivery.tracking import Tracker

    tracker = Tracker(ENV["SECRET_KEY"], ENV["PUBLIC_BASE_URL"])
    now = datetime.now(timezone.utc)
    context = {"subscriber": {"id": 1, "first_name": "Reader1", "last_name": "", "email": "reader1@example.test",
                              "timezone": None, "attributes": {}, "tags": []}, "unsubscribe_url": "x"}
    rendered = render_email(STEP["subject"], HTML, None, context)
    footed = add_unsubscribe_footer(rendered, tracker.unsubscribe_url(1, 1), None)
    html = tracker.rewrite_html(footed.html or "", 1, 1)
    envelope = Envelope(from_email="news@bench.test", from_name="Bench", to_email="reader1@example.test",
                        subject=rendered.subject, html=html, text=footed.text, unsubscribe_url="https://u/1",
                        unsubscribe_mailto="mailto:news@bench.test", message_key="1:1:a")
    message = build_message(envelope, now)
    stages = [
        ("render subject + HTML + derived text", lambda: render_email(STEP["subject"], HTML, None, context)),
        ("unsubscribe footer check", lambda: add_unsubscribe_footer(rendered, tracker.unsubscribe_url(1, 1), None)),
        ("tracking: signed links + open pixel", lambda: tracker.rewrite_html(footed.html or "", 1, 1)),
        ("MIME build", lambda: build_message(envelope, now)),
        ("MIME serialize (bytes on the wire)", lambda: _wire_bytes(message)),
    ]
    costs = []
    for label, stage in stages:
        started = time.process_time()
        for _ in range(samples):
            stage()
        costs.append((label, (time.process_time() - started) / samples * 1e6))
    return costs


def _wire_bytes(message: object) -> bytes:
    raw = getattr(message, "raw", None)
    if isinstance(raw, bytes):
        return raw
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))  # type: ignore[attr-defined]


def sample_bytes() -> bytes:
    from datetime import datetime, timezone

    from delivery.mime import Envelope, build_message

    html = HTML.replace("{{ subscriber.first_name }}", "Reader1")
    message = build_message(Envelope(from_email="news@bench.test", from_name="Bench", to_email="raw@example.test",
                                     subject="Spring is here", html=html, text="Spring is here\n" * 40,
                                     unsubscribe_url="https://u/1", unsubscribe_mailto=None, message_key="1:1:a"),
                            datetime.now(timezone.utc))
    return _wire_bytes(message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=20_000, help="emails in the smtp-sink run")
    parser.add_argument("--sweep-emails", type=int, default=10_000, help="emails per send-pool setting at 20 ms")
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--send-concurrency", type=int, default=int(os.environ.get("SEND_CONCURRENCY", "50")))
    parser.add_argument("--only", choices=("stages", "sink", "sweep"), action="append")
    parser.add_argument("--pools", type=int, nargs="+", default=list(SWEEP), help="send pool sizes for the 20 ms sweep")
    parser.add_argument("--no-split", action="store_true", help="skip the runs with the pool split over two workers")
    parser.add_argument("--no-history", action="store_true", help="start each run's database without sent emails")
    args = parser.parse_args()
    global HISTORY
    HISTORY = not args.no_history
    parts = set(args.only or ("stages", "sink", "sweep"))
    tmp = Path(f"/tmp/eseq-bench-send-{RUN}")
    tmp.mkdir(parents=True, exist_ok=True)
    raw = sample_bytes()
    rows: list[tuple[str, str]] = []

    def report(what: str, figure: str) -> None:
        rows.append((what, figure))
        print(f"{what}: {figure}", flush=True)

    def report_lean(when: str, lean: dict[str, Any]) -> None:
        report(f"lean pipeline into smtp-sink, {args.emails:,} emails, {lean_processes()} processes, {when} the platform",
               f"{lean['rate']:,.0f} emails/s ({lean['elapsed']:.1f} s; CPU per email {lean['cpu']:,.0f} µs "
               f"in its processes, {lean['postgres']:,.0f} µs in their PostgreSQL backends; wall seconds of its processes "
               + ", ".join(f"{phase} {seconds:.1f}" for phase, seconds in lean["phases"].items()) + ")")

    if "stages" in parts:
        for label, micros in stage_costs():
            report(f"CPU per email, {label}", f"{micros:,.0f} µs")
    if "sink" in parts:
        if SMTP_SINK is None:
            print("smtp-sink not found: skipping the smtp-sink runs (apt-get install postfix provides it)")
        else:
            with smtp_server("sink", tmp) as port:
                report("raw smtplib into smtp-sink, 4 processes x 1 connection, "
                       f"{len(raw):,}-byte message", f"{raw_rate(port, raw, 4, 20_000, 4):,.0f} emails/s")
                # The lean pipeline runs before and after the platform and the ratio takes
                # the mean of the two: its rate moves with the machine's load more than the
                # platform's (it waits on the sink and PostgreSQL in only two processes), and
                # one lean run after the platform put the same code's ratio anywhere from 0.36
                # to 0.49 in one afternoon (docs/benchmarks.md).
                before = run_lean("lean_before", port, args.emails)
                report_lean("before", before)
                result = run_platform("sink", port, args.emails, args.send_concurrency, tmp)
                report(f"end to end into smtp-sink, {args.emails:,} emails, send pool {args.send_concurrency} threads",
                       f"{result['rate']:,.0f} emails/s ({result['elapsed']:.1f} s; all advanced after "
                       f"{result['queued']:.1f} s)")
                for key, micros in result.items():
                    if key.startswith("cpu:"):
                        report(f"  CPU per email in that run, {key[4:]}", f"{micros:,.0f} µs")
                for key, micros in result.items():
                    if key.startswith("pg:"):
                        report(f"  of which PostgreSQL's backends serving the {key[3:]}", f"{micros:,.0f} µs")
                for micros, calls, query in result["statements"]:  # with pg_stat_statements loaded only
                    report(f"  PostgreSQL's time per email in that run (wall, {calls:,} calls), {query}", f"{micros:,.1f} µs")
                report("  send worker thread switches per email in that run", f"{result['switches']:,.1f}")
                report("  database sessions opened / transactions per email in that run",
                       f"{result['sessions']:,} / {result['transactions']:.2f}")
                report("  rows written per email in that run (seeding included): inserted / updated (of them HOT)",
                       "; ".join(f"{table} {ins / args.emails:.2f} / {upd / args.emails:.2f} ({hot / args.emails:.2f})"
                                 for table, (ins, upd, hot) in sorted(result["writes"].items())))
                after = run_lean("lean_after", port, args.emails)
                report_lean("after", after)
                lean_rate = (before["rate"] + after["rate"]) / 2
                report("ratio platform / lean (the mean of the lean runs before and after it), same run",
                       f"{result['rate'] / lean_rate:.2f} (against the run before {result['rate'] / before['rate']:.2f}, "
                       f"after {result['rate'] / after['rate']:.2f})")
                if not args.no_split:  # the same pool size from two worker_send instances: two GILs
                    half = max(args.send_concurrency // 2, 1)
                    result = run_platform("sink2", port, args.emails, half, tmp, send_workers=2)
                    report(f"end to end into smtp-sink, {args.emails:,} emails, 2 send workers x {half} threads",
                           f"{result['rate']:,.0f} emails/s ({result['elapsed']:.1f} s; send workers "
                           f"{result.get('cpu:send worker', 0):,.0f} µs, PostgreSQL "
                           f"{result.get('cpu:PostgreSQL', 0):,.0f} µs CPU per email)")
    if "sweep" in parts:
        with smtp_server("slow", tmp, args.delay_ms) as port:
            report(f"raw smtplib into the {args.delay_ms} ms server, 64 connections (4 processes x 16)",
                   f"{raw_rate(port, raw, 64, 20_000, 4):,.0f} emails/s")
            for threads in args.pools:
                result = run_platform(f"slow{threads}", port, args.sweep_emails, threads, tmp)
                report(f"end to end at {args.delay_ms} ms, send pool {threads} threads ({args.sweep_emails:,} emails)",
                       f"{result['rate']:,.0f} emails/s ({result['elapsed']:.1f} s; send worker "
                       f"{result.get('cpu:send worker', 0):,.0f} µs CPU and {result['switches']:,.1f} thread "
                       "switches per email)")
            if not args.no_split:  # the same 64 connections from two worker_send instances: two GILs
                result = run_platform("slow2x32", port, args.sweep_emails, 32, tmp, send_workers=2)
                report(f"end to end at {args.delay_ms} ms, 2 send workers x 32 threads ({args.sweep_emails:,} emails)",
                       f"{result['rate']:,.0f} emails/s ({result['elapsed']:.1f} s; SMTP server "
                       f"{result.get('cpu:SMTP server', 0):,.0f} µs CPU per email)")
    finish(rows)


def lean_processes() -> int:
    from bench import lean_pipeline

    return lean_pipeline.PROCESSES


def finish(rows: list[tuple[str, str]]) -> None:
    """The figures again, as a table for docs/benchmarks.md."""
    print("\n| what | figure |\n|---|---|")
    for what, figure in rows:
        print(f"| {what} | {figure} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["slow-smtp"]:
        serve_slow_smtp(int(sys.argv[2]), int(sys.argv[3]) / 1000)
    else:
        main()
