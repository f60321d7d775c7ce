"""Issue-level proof that the platform runs through PgBouncer in transaction mode:
the real web, worker and beat processes reach PostgreSQL only through a PgBouncer
with fewer server connections than they have clients, so consecutive transactions
of one process land on different server sessions, and a claim relying on session
state (an advisory lock, a plain SET, a prepared statement) would break. Every
subscriber still gets each email exactly once."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import func, select, text

from models import Message, db
from tests.conftest import ADMIN_TOKEN, TEST_DB
from tests.support.database import empty_database, engine_at, migrate
from tests.support.pgbouncer import SERVER_POOL, pgbouncer, why_unavailable
from tests.support.processes import Proc, beat_argv, call, platform_env, running, wait_healthy, web_argv, worker_argv
from tests.support.smtp import SmtpServer, free_port
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(why_unavailable() is not None, reason=str(why_unavailable()))]

STEPS = [{"type": "email", "subject": "first", "text": "a"}, {"type": "delay", "seconds": 1},
         {"type": "email", "subject": "second", "text": "b"}]
READERS = 40


def admin(port: int, command: str) -> list[dict[str, object]]:
    """Rows of a PgBouncer admin console command (SHOW ...)."""
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="pgbouncer")
    conn.autocommit = True  # the console takes no transactions
    try:
        with conn.cursor() as cur:
            cur.execute(command)
            names = [c.name for c in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        conn.close()


def test_web_workers_and_beat_through_pgbouncer_in_transaction_mode_deliver_every_email_once(
        database: str, tmp_path: Path):
    web_port = free_port()
    with SmtpServer() as smtp, pgbouncer(TEST_DB, tmp_path) as bouncer:
        env = platform_env(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{bouncer}/{TEST_DB}",
                           PORT=str(web_port), PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
                           ESEQ_TICK_SECONDS="0.5", SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port))
        procs = [Proc("web", web_argv(web_port), env, tmp_path),
                 Proc("worker_default", worker_argv("default", "default,webhooks,ai,analytics,ml", pool="prefork",
                                                    concurrency=2), env, tmp_path),
                 Proc("worker_send", worker_argv("send", "send", concurrency=8), env, tmp_path),
                 Proc("beat", beat_argv(tmp_path / "beat-schedule"), env, tmp_path)]
        with running(procs):
            assert wait_healthy(web_port)["status"] == "ok"
            _, account = call(web_port, "POST", "/api/v1/accounts", {"name": "Acme", "from_email": "news@acme.test"},
                              {"Authorization": f"Bearer {ADMIN_TOKEN}"})
            auth = {"X-API-Key": account["api_key"]}
            status, sequence = call(web_port, "POST", "/api/v1/email-sequences", {"name": "Bounced", "steps": STEPS},
                                    auth)
            assert status == 201, sequence
            assert call(web_port, "POST", f"/api/v1/email-sequences/{sequence['id']}/activate", {}, auth)[0] == 200
            emails = [f"reader{i}@example.test" for i in range(READERS)]
            status, enrolled = call(web_port, "POST", f"/api/v1/email-sequences/{sequence['id']}/subscribers",
                                    {"emails": emails}, auth)
            assert (status, enrolled["enrolled"]) == (202, READERS)

            def all_sent() -> bool:
                with db.session_scope() as s:  # this test's own, direct connection
                    return s.scalar(select(func.count()).where(Message.status == "sent")) == 2 * READERS

            wait_for(all_sent, 120, "every message to be sent through pgbouncer",
                     detail=lambda: "\n".join(p.tail(15) for p in procs))
            # More clients than server connections: the pool was shared transaction by transaction.
            clients = [c for c in admin(bouncer, "SHOW CLIENTS") if c["database"] == TEST_DB]
            servers = [s for s in admin(bouncer, "SHOW SERVERS") if s["database"] == TEST_DB]
            assert len(clients) > SERVER_POOL >= len(servers), (len(clients), len(servers))
            stats = next(row for row in admin(bouncer, "SHOW STATS") if row["database"] == TEST_DB)
            assert int(stats["total_xact_count"]) > 2 * READERS

    received: dict[str, list[str]] = defaultdict(list)
    for got in smtp.handler.received:
        for address in got.recipients:
            received[address].append(got.message["Subject"])
    assert {address: received[address] for address in emails} == {address: ["first", "second"] for address in emails}
    with db.session_scope() as s:
        assert dict(s.execute(select(Message.status, func.count()).group_by(Message.status)).all()) == {
            "sent": 2 * READERS}


def test_the_migrations_run_through_pgbouncer_in_transaction_mode(database: str, tmp_path: Path):
    def version(url: str) -> str:
        with engine_at(url) as engine, engine.connect() as conn:
            return str(conn.scalar(text("SELECT version_num FROM alembic_version")))

    name = f"{TEST_DB}_bounced"
    with empty_database(name) as url, pgbouncer(name, tmp_path) as port:
        migrate(f"postgresql://postgres@127.0.0.1:{port}/{name}")
        assert version(url) == version(database)  # head, as the run's own database was migrated directly
