"""The embedded SQLite default serves a web process and a worker of eight threads
at once: two transactions that each read and then write must both go through,
one after the other, instead of the later one failing with "database is locked"
(an import that raced a rollup fold failed so)."""
from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.support.database import engine_at


def test_two_transactions_that_read_then_write_both_commit(tmp_path: Path) -> None:
    with engine_at(f"sqlite:///{tmp_path / 'eseq.sqlite'}") as engine:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE counts (n INTEGER NOT NULL)"))
        both_read = threading.Barrier(2)
        failures: list[BaseException] = []

        def read_then_write(n: int) -> None:
            try:
                # A batch in a savepoint (core.isolation.run_isolated), as an
                # import's is: it reads which rows exist, then writes the rest.
                with Session(engine) as session, session.begin(), session.begin_nested():
                    session.execute(text("SELECT count(*) FROM counts")).scalar_one()
                    try:
                        both_read.wait(timeout=2)  # the other has read too, unless it must wait
                    except threading.BrokenBarrierError:
                        pass
                    session.execute(text("INSERT INTO counts (n) VALUES (:n)"), {"n": n})
            except BaseException as exc:  # reported below, with the thread's result
                failures.append(exc)

        threads = [threading.Thread(target=read_then_write, args=(n,)) for n in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert failures == []
        with engine.connect() as conn:
            assert sorted(conn.scalars(text("SELECT n FROM counts"))) == [1, 2]
