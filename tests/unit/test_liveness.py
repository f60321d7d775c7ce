"""The heartbeat thread (core.liveness.Heartbeat) with a writer of our own in place
of the database: what matters here is when it writes and that it survives a
failed write; the row it writes is tested in tests/integration/test_liveness.py."""
from __future__ import annotations

import os
import socket
import threading

from core.liveness import Heartbeat, new_worker_id
from tests.support.waiting import wait_for


def test_a_worker_id_names_its_host_and_process_and_is_never_the_same_twice() -> None:
    first, second = new_worker_id(), new_worker_id()
    assert first.startswith(f"{socket.gethostname()[:150]}:{os.getpid()}:")
    assert first != second


def test_the_first_beat_is_written_before_start_returns_then_the_thread_keeps_beating() -> None:
    beats: list[str] = []
    heartbeat = Heartbeat("w1", 0.01, beats.append)
    heartbeat.start()
    try:
        assert beats[:1] == ["w1"], "a claim made right after start already has a row"
        wait_for(lambda: len(beats) >= 3, 5, "the thread to beat again")
    finally:
        heartbeat.stop()
    assert not any(t.name == "eseq-heartbeat" and t.is_alive() for t in threading.enumerate())


def test_a_failed_beat_is_tried_again_at_the_next_interval() -> None:
    calls: list[str] = []

    def flaky(worker_id: str) -> None:
        calls.append(worker_id)
        if len(calls) == 2:  # the first beat from the thread: the database is restarting
            raise ConnectionError("database restarting")

    heartbeat = Heartbeat("w2", 0.01, flaky).start()
    try:
        wait_for(lambda: len(calls) >= 4, 5, "beats after the failed one")
    finally:
        heartbeat.stop()
