"""Unit tests do no I/O: they run with PostgreSQL and Redis stopped.

A test here that opens a network connection (a Python socket, as redis-py and
every HTTP client do, or libpq, which connects in C) fails on the spot, naming
what it tried to reach, however the code under it handles connection errors. A
test that needs the database, the broker or a server belongs in tests/integration.
"""
from __future__ import annotations

import socket
from typing import Any

import psycopg2
import pytest


def _refuse(what: str) -> None:
    pytest.fail(f"a unit test tried to connect to {what}: tests that need a server belong in tests/integration")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unix sockets stay allowed: they are how a process talks to itself (asyncio's
    self-pipe, multiprocessing), not a server."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        if sock.family != socket.AF_UNIX:
            _refuse(repr(address))
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        if sock.family != socket.AF_UNIX:
            _refuse(repr(address))
        return connect_ex(sock, address)

    def guarded_pg_connect(*args: Any, **kwargs: Any) -> None:
        _refuse(f"PostgreSQL ({args[0] if args else kwargs.get('dsn') or kwargs.get('host')})")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(psycopg2, "connect", guarded_pg_connect)
