"""A PgBouncer of a test's own, in transaction mode, in front of this run's
PostgreSQL database (Debian's ``pgbouncer``; installed by scripts/ensure_services.sh)."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import Proc
from tests.support.smtp import free_port
from tests.support.waiting import wait_for

# Fewer server connections than the processes' clients: transaction pooling must
# share them, which is what would break a claim relying on session state.
SERVER_POOL = 4


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None)


def why_unavailable() -> str | None:
    """The reason a PgBouncer cannot be started here, or None."""
    if pgbouncer_binary() is None:
        return "pgbouncer is not installed (scripts/ensure_services.sh installs it as root: apt-get install pgbouncer)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "pgbouncer refuses to run as root and there is no postgres user to run it as"
    return None


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@contextmanager
def pgbouncer(database: str, log_dir: Path, pg_port: int = 5432) -> Iterator[int]:
    """Start PgBouncer on a free port, serving ``database`` (as user postgres, trust
    auth) in transaction mode; yield its port, stop it after."""
    port = free_port()
    # A directory the postgres user can read: pgbouncer will not run as root.
    folder = Path(tempfile.mkdtemp(prefix="eseq-pgbouncer-"))
    folder.chmod(0o755)
    (folder / "userlist.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{database} = host=127.0.0.1 port={pg_port} dbname={database} user=postgres\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'userlist.txt'}\n"
        "admin_users = postgres\n"
        f"pool_mode = transaction\ndefault_pool_size = {SERVER_POOL}\nmax_client_conn = 500\n"
    )
    for path in folder.iterdir():
        path.chmod(0o644)
    argv = [str(pgbouncer_binary()), str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        argv += ["-u", "postgres"]
    proc = Proc("pgbouncer", argv, dict(os.environ), log_dir)
    try:
        wait_for(lambda: _accepts(port) or proc.popen.poll() is not None, 20, "pgbouncer to listen",
                 interval=0.1, detail=proc.tail)
        if proc.popen.poll() is not None:
            raise RuntimeError(f"pgbouncer did not start:\n{proc.tail()}")
        yield port
    finally:
        proc.stop()
        shutil.rmtree(folder, ignore_errors=True)
