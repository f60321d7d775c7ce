"""delivery.group_commit: threads share transactions, each returns only once its
own item is written, and one bad item fails alone."""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from delivery.group_commit import GroupCommit


class Store:
    """A 'database' whose write takes a while, so other threads queue meanwhile."""

    def __init__(self, delay: float = 0.005) -> None:
        self.delay = delay
        self.committed: set[int] = set()
        self.writes: list[list[int]] = []
        self.lock = threading.Lock()

    def write(self, items: list[int]) -> list[str]:
        time.sleep(self.delay)
        if any(i < 0 for i in items):
            raise ValueError(f"bad item in {items}")
        with self.lock:
            self.writes.append(items)
            self.committed.update(items)
        return [f"ok:{i}" for i in items]


def test_each_caller_gets_its_own_result_after_its_item_is_committed() -> None:
    store = Store()
    group = GroupCommit(store.write)

    def submit(i: int) -> str:
        result = group.submit(i)
        assert i in store.committed  # never returns before its own commit
        return result

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(submit, range(400)))

    assert results == [f"ok:{i}" for i in range(400)]
    assert sorted(i for w in store.writes for i in w) == list(range(400))  # each exactly once
    # 32 threads waiting on 5 ms writes share them: far fewer transactions than items.
    assert len(store.writes) < 200
    assert max(len(w) for w in store.writes) > 1


def test_a_lone_caller_commits_at_once_without_waiting_for_company() -> None:
    store = Store(delay=0)
    group = GroupCommit(store.write)
    assert group.submit(7) == "ok:7"
    assert store.writes == [[7]]


def test_a_bad_item_fails_alone_and_the_rest_of_its_group_is_written() -> None:
    store = Store()
    group = GroupCommit(store.write)
    barrier = threading.Barrier(8)

    def submit(i: int) -> str:
        barrier.wait()
        try:
            return group.submit(i)
        except ValueError:
            return "error"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(submit, [1, 2, 3, -4, 5, 6, 7, 8]))

    assert results == ["ok:1", "ok:2", "ok:3", "error", "ok:5", "ok:6", "ok:7", "ok:8"]
    assert store.committed == {1, 2, 3, 5, 6, 7, 8}


def test_groups_are_capped_and_every_item_is_written() -> None:
    store = Store()
    group = GroupCommit(store.write, max_group=3)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(group.submit, range(64)))
    assert results == [f"ok:{i}" for i in range(64)]
    assert max(len(w) for w in store.writes) <= 3


def test_the_error_reaches_only_its_own_caller_when_alone() -> None:
    group = GroupCommit(Store(delay=0).write)
    with pytest.raises(ValueError):
        group.submit(-1)
    assert group.submit(2) == "ok:2"


def test_start_returns_before_the_commit_and_the_result_waits_for_it() -> None:
    # What lets a send thread send its next message while its last outcome commits.
    release = threading.Event()
    written: list[list[int]] = []

    def write(items: list[int]) -> list[str]:
        release.wait(5)
        written.append(items)
        return [f"ok:{i}" for i in items]

    group = GroupCommit(write)
    first = group.start(1)  # returns while the write is held up
    second = group.start(2)
    assert written == []
    release.set()
    assert (first.result(), second.result()) == ("ok:1", "ok:2")
    assert sorted(i for w in written for i in w) == [1, 2]


def test_a_shutdown_while_rewriting_one_by_one_reaches_every_waiter() -> None:
    # The group fails, its items are rewritten alone, and the worker is told to
    # stop on one of them: the items after it were never written, and their
    # threads must be told so rather than wait for ever; the writer goes on.
    leading, queued = threading.Event(), threading.Event()

    def write(items: list[str]) -> list[str]:
        if items == ["lead"]:
            leading.set()
            queued.wait(5)  # hold the lead while the others queue up
            return ["ok"]
        if len(items) > 1:
            raise RuntimeError("the group's transaction failed")
        if items == ["b"]:
            raise SystemExit("worker shutting down")
        return ["ok"]

    group = GroupCommit(write)
    outcomes: dict[str, str] = {}

    def submit(item: str) -> None:
        try:
            outcomes[item] = group.submit(item)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertions
            outcomes[item] = type(exc).__name__

    threads = [threading.Thread(target=submit, args=("lead",))]
    threads[0].start()
    assert leading.wait(5)
    for item in "abcd":
        threads.append(threading.Thread(target=submit, args=(item,), daemon=True))
        threads[-1].start()
    wait_until = time.monotonic() + 5
    while len(group._pending) < 4 and time.monotonic() < wait_until:  # all four queued behind the lead
        time.sleep(0.01)
    queued.set()
    for thread in threads:
        thread.join(5)
    assert not any(t.is_alive() for t in threads), "a waiter was never woken"
    # "a" was written alone before the shutdown; "c" and "d" never were and hear of it.
    assert outcomes == {"lead": "ok", "a": "ok", "b": "SystemExit", "c": "SystemExit", "d": "SystemExit"}
    assert group.submit("e") == "ok", "the writer outlived the shutdown of one group"


def test_a_forked_child_gets_a_writer_of_its_own() -> None:
    group = GroupCommit(Store(delay=0).write)
    assert group.submit(1) == "ok:1"  # the parent's writer is running
    child = os.fork()
    if child == 0:  # the child has no writer thread until it needs one
        signal.alarm(10)  # a child left without a writer would wait for ever: let it die instead
        os._exit(0 if group.submit(2) == "ok:2" else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
