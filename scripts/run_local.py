"""``make run``: the whole platform on one machine, from nothing but Python.

Without ``DATABASE_URL``/``REDIS_URL`` it runs on the embedded default (a SQLite
file under ``var/`` and kombu's SQLAlchemy broker on another SQLite file); with them
set, the same steps use PostgreSQL and Redis. It migrates, makes sure an account
exists, then runs web (gunicorn), one worker consuming every queue (threads) and
beat as children (and the unsubscribe mailbox when ESEQ_UNSUBSCRIBE_DOMAIN is set),
and stops them all on Ctrl-C or SIGTERM.

On the bare default (no DATABASE_URL, no SMTP_HOST) it also runs the development
mail catcher (delivery/dev_mailbox.py) in this process, on loopback, and mail of
accounts without providers is delivered there and shown at ``/dev/mail``: a
newcomer sees the product work and nothing leaves the machine.

Everything the children must agree on is decided here once and passed down in the
environment: a SECRET_KEY that is kept in ``var/secret_key`` (tokens signed by web
are checked by workers, and survive restarts), the admin token, and the metrics
directory the web process reads the worker's task counts from.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STOP_TIMEOUT = 20.0


def say(message: str) -> None:
    print(f"[run_local] {message}", flush=True)


def kept_secret(path: Path, nbytes: int = 48) -> str:
    """A random value created once and kept in ``path`` (owner-only), so every child
    and every later run use the same one."""
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_urlsafe(nbytes)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def prepare_env(base: dict[str, str]) -> dict[str, str]:
    """The environment every child gets."""
    env = dict(base)
    var_dir = Path(env.get("ESEQ_VAR_DIR") or ROOT / "var").resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    env["ESEQ_VAR_DIR"] = str(var_dir)
    if not env.get("SECRET_KEY"):
        env["SECRET_KEY"] = kept_secret(var_dir / "secret_key")
    if not env.get("ESEQ_ADMIN_TOKEN"):
        env["ESEQ_ADMIN_TOKEN"] = kept_secret(var_dir / "admin_token", 24)
        say(f"ESEQ_ADMIN_TOKEN={env['ESEQ_ADMIN_TOKEN']}  (kept in {var_dir / 'admin_token'})")
    env.setdefault("PORT", "8000")
    env.setdefault("PUBLIC_BASE_URL", f"http://localhost:{env['PORT']}")
    # The unsubscribe mailbox (started only with ESEQ_UNSUBSCRIBE_DOMAIN) listens where web does.
    env.setdefault("ESEQ_UNSUBSCRIBE_SMTP_HOST", env.get("ESEQ_BIND", "127.0.0.1"))
    # One directory shared by web and worker: without Redis this is how the worker's
    # task counts reach /metrics. Stale files from an earlier run would add old counts.
    metrics_dir = var_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    from settings import catches_mail_locally

    if catches_mail_locally(env) and not env.get("ESEQ_DEV_SMTP_PORT"):
        env["ESEQ_DEV_SMTP_PORT"] = str(free_port())
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    """A loopback port nobody holds now (so two `make run`s on one machine do not collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_dev_catcher(settings: Settings):  # type: ignore[no-untyped-def]
    """The development mail catcher, serving from a thread of this process until it exits."""
    from delivery import dev_mailbox

    def caught(key: str, recipients: list[str], subject: str) -> None:
        say(f"development delivery: caught {subject!r} for {', '.join(recipients)} "
            f"({settings.public_base_url}{dev_mailbox.PAGE_PATH}/{key})")

    server = dev_mailbox.catcher(settings.dev_mail_dir, settings.dev_smtp_port, caught)
    server.start()
    say(dev_mailbox.banner(settings.public_base_url)
        + f" (SMTP on {dev_mailbox.HOST}:{settings.dev_smtp_port}, kept in {settings.dev_mail_dir})")
    return server


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True)


def prune_embedded_broker(broker_url: str) -> None:
    """kombu's SQLAlchemy transport keeps every delivered message (visible = false);
    a tick every few seconds would grow the file without end, so drop them at start."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(broker_url.removeprefix("sqla+"))
    try:
        if inspect(engine).has_table("kombu_message"):
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM kombu_message WHERE visible = 0"))
    finally:
        engine.dispose()


def ensure_first_account(env: dict[str, str]) -> None:
    """Create an account when there is none, and print its API key (shown only now)."""
    from sqlalchemy import func, select

    from accounts.keys import create_account
    from models import Account, db

    settings = _settings(env)
    db.configure(settings.database_url, settings.secrets_keys)
    with db.session_scope() as session:
        if session.scalar(select(func.count()).select_from(Account)):
            return
        account, api_key = create_account(session, "Local", env.get("FROM_EMAIL") or "owner@localhost",
                                          env.get("FROM_NAME") or "Local")
        account_id = account.id
    db.get_engine().dispose()
    say(f"created account {account_id}; its API key (shown once): {api_key}")
    say("use it as the X-API-Key header, or exchange it at POST /api/v1/auth/token")


def _settings(env: dict[str, str]):  # type: ignore[no-untyped-def]
    from settings import load_settings

    return load_settings(env)


def commands(env: dict[str, str]) -> dict[str, list[str]]:
    var_dir = Path(env["ESEQ_VAR_DIR"])
    bind = env.get("ESEQ_BIND", "127.0.0.1")
    queues = ",".join(__import__("celeryconfig").QUEUES)
    mailbox = ({"unsubscribe_mailbox": [sys.executable, "-m", "scripts.unsubscribe_mailbox"]}
               if env.get("ESEQ_UNSUBSCRIBE_DOMAIN") else {})
    return mailbox | {
        "web": [str(BIN / "gunicorn"), "--bind", f"{bind}:{env['PORT']}", "--workers", "2", "--threads", "4",
                "--timeout", "60", "web.wsgi:app"],
        "worker": [str(BIN / "celery"), "-A", "tasks.app", "worker", "-Q", queues, "--pool", "threads",
                   "--concurrency", env.get("ESEQ_LOCAL_CONCURRENCY", "8"), "-n", "local@%h", "--loglevel", "INFO",
                   "--without-gossip", "--without-mingle"],
        "beat": [str(BIN / "celery"), "-A", "tasks.app", "beat", "--loglevel", "INFO",
                 "--schedule", str(var_dir / "celerybeat-schedule")],
    }


class Supervisor:
    """Children in their own process groups; a signal to us stops all of them."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start(self, name: str, argv: list[str]) -> None:
        # Own session: Ctrl-C reaches only us, and we stop the children in order
        # (and a prefork child's own children with its group).
        self.children[name] = subprocess.Popen(argv, cwd=ROOT, env=self.env, start_new_session=True)
        say(f"started {name} (pid {self.children[name].pid})")

    def _signal_all(self, sig: int) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        say("stopping web, worker and beat")
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(p.poll() is None for p in self.children.values()):
            time.sleep(0.1)
        self._signal_all(signal.SIGKILL)
        for proc in self.children.values():
            proc.wait()

    def wait(self) -> int:
        """Until a signal or a child's death; a child that dies takes the others down."""
        def _on_signal(signum: int, _frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        try:
            while True:
                for name, proc in self.children.items():
                    if proc.poll() is not None:
                        say(f"{name} exited with {proc.returncode}; stopping the rest")
                        return 1
                time.sleep(0.2)
        except KeyboardInterrupt:
            return 0
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop()


def main() -> int:
    env = prepare_env(dict(os.environ))
    os.environ.update(env)  # settings and celeryconfig read the environment when imported
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from settings import ConfigError

    try:
        settings = _settings(env)
    except ConfigError as exc:
        say(f"configuration error: {exc}")
        return 2
    mode = "embedded (SQLite + SQLAlchemy broker)" if settings.embedded else "external services"
    say(f"{mode}: database {settings.database_url.split('@')[-1]}, broker {settings.broker_url.split('@')[-1]}")
    migrate(env)
    if settings.broker_url.startswith("sqla+"):
        prune_embedded_broker(settings.broker_url)
    ensure_first_account(env)
    if settings.dev_smtp_port:
        try:
            catcher = start_dev_catcher(settings)
        except OSError as exc:
            say(f"the development mail catcher cannot listen on port {settings.dev_smtp_port}: {exc}")
            return 2
    else:
        catcher = None
        if not settings.smtp_host:
            say("no SMTP_HOST: mail of accounts without providers of their own waits as deferred until one is added")

    supervisor = Supervisor(env)
    try:
        for name, argv in commands(env).items():
            supervisor.start(name, argv)
    except BaseException:
        supervisor.stop()
        raise
    say(f"API docs: http://localhost:{env['PORT']}/docs   health: http://localhost:{env['PORT']}/health")
    try:
        return supervisor.wait()
    finally:
        if catcher is not None:
            catcher.stop()


if __name__ == "__main__":
    sys.exit(main())
