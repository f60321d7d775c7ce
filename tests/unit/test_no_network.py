"""The guard in tests/unit/conftest.py: a unit test cannot reach a server, by any route."""
from __future__ import annotations

import socket

import pytest
import redis
from sqlalchemy import text

from models.db import make_engine
from tests.conftest import REDIS_URL, TEST_DB_URL


def test_a_tcp_connection_fails_the_test_naming_the_address():
    with pytest.raises(pytest.fail.Exception, match="127.0.0.1"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_redis_cannot_be_reached_even_by_code_that_handles_connection_errors():
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    with pytest.raises(pytest.fail.Exception, match="connect to"):
        client.ping()


def test_postgresql_cannot_be_reached_although_libpq_connects_in_c():
    engine = make_engine(TEST_DB_URL)
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL"):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))


def test_a_process_may_still_talk_to_itself_over_a_unix_socket():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ping")
        assert right.recv(4) == b"ping"
