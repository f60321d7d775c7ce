"""Benchmark: how long event writers wait behind a month's drop that waits itself
(issue: scale-out, item 4; analytics.event_partitions.drop_partition).

A throwaway database with an old month's partition of a few events. A reader
holds its lock on ``events`` (an open transaction that read it) for ``--hold``
seconds while a month's drop is started, and a writer inserts an event every 20 ms
meanwhile: the drop's DDL waits for the reader, and the writer's inserts queue
behind that wait. Prints the writer's worst and median insert, and when the month
was dropped, for the drop as it is (``DROP_LOCK_TIMEOUT`` a try, ``DROP_TRIES``
tries) and, with ``--one-try 2s``, as one try waiting that long (the drop before
the short tries).

    python -m bench.partition_drop [--hold 3] [--one-try 2s]
"""
from __future__ import annotations

import argparse
import threading
import time
from datetime import timedelta

from bench import environment

RUN, DB, ENV = environment()

from sqlalchemy import text  # noqa: E402

from analytics import event_partitions  # noqa: E402
from models import db  # noqa: E402
from models.base import utcnow  # noqa: E402
from tests.support import factories  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402

INSERT = ("INSERT INTO events (account_id, name, source, properties, occurred_at, created_at)"
          " VALUES (:account, 'custom', 'bench', '{}', now(), now())")


def measure(hold: float, one_try: str | None) -> str:
    account = factories.account("Bench")
    month = event_partitions.partition_for(event_partitions.month_start(utcnow().date(), -20))
    with db.get_engine().begin() as c:
        for day in range(3):
            c.execute(text("INSERT INTO events (account_id, name, source, properties, occurred_at, created_at)"
                           " VALUES (:account, 'custom', 'bench', '{}', :at, :at)"),
                      {"account": account, "at": month.start + timedelta(days=day)})
    with db.session_scope() as s:
        event_partitions.create_partition(s, month)
    tries = event_partitions.DROP_TRIES
    if one_try:
        event_partitions.DROP_LOCK_TIMEOUT, tries = one_try, 1
    reader = db.get_engine().connect()
    reader.begin()
    reader.execute(text("SELECT 1 FROM events LIMIT 1"))
    outcome: dict[str, object] = {}
    waits: list[float] = []
    stop = threading.Event()

    def drop() -> None:
        started = time.perf_counter()
        with db.session_scope() as s:
            outcome["dropped"] = event_partitions.drop_partition(s, month, tries=tries)
        outcome["seconds"] = time.perf_counter() - started

    def write() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            with db.get_engine().begin() as c:
                c.execute(text(INSERT), {"account": account})
            waits.append(time.perf_counter() - started)
            time.sleep(0.02)

    dropper, writer = threading.Thread(target=drop), threading.Thread(target=write)
    dropper.start()
    time.sleep(0.05)
    writer.start()
    time.sleep(hold)
    reader.rollback()
    reader.close()
    dropper.join()
    time.sleep(0.3)
    stop.set()
    writer.join()
    waits.sort()
    how = f"one try of {one_try}" if one_try else (f"{tries} tries of {event_partitions.DROP_LOCK_TIMEOUT},"
                                                   f" {event_partitions.DROP_PAUSE} s apart")
    return (f"{how}: writer's worst insert {waits[-1] * 1000:,.0f} ms, median {waits[len(waits) // 2] * 1000:.1f} ms"
            f" ({len(waits)} inserts); month dropped: {outcome['dropped']} after {outcome['seconds']:.1f} s"
            f" (reader held {hold} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hold", type=float, default=3.0, help="seconds the reader holds its lock")
    parser.add_argument("--one-try", help="one try waiting this long (a PostgreSQL interval, e.g. 2s)")
    args = parser.parse_args()
    with fresh_database(DB) as url:
        db.configure(url)
        print(measure(args.hold, args.one_try), flush=True)
        db.get_engine().dispose()


if __name__ == "__main__":
    main()
