"""Unit tests do no I/O: they run with PostgreSQL and Redis stopped.

A test here that opens a network connection (a Python socket, as redis-py and
every HTTP client do, or libpq, which connects in C) fails on the spot, naming
what it tried to reach, however the code under it handles connection errors. A
test that needs the database, the broker or a server belongs in tests/integration.
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest


def _message(what: str) -> str:
    return f"a unit test tried to connect to {what}: tests that need a server belong in tests/integration"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Unix sockets stay allowed: they are how a process talks to itself (asyncio's
    self-pipe, multiprocessing), not a server. An attempt fails where it is made; one
    made in another thread, whose uncaught error pytest only warns of, fails the test
    again at teardown."""
    test_thread = threading.get_ident()
    from_threads: list[str] = []

    def _refuse(what: str) -> None:
        if threading.get_ident() != test_thread:
            from_threads.append(what)
        pytest.fail(_message(what))

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
    yield
    if from_threads:
        pytest.fail(_message(", ".join(from_threads)))
