"""Benchmark: the checks that run on user input before anything is stored, at sizes
an attacker controls, to show they grow linearly (they were quadratic).

Prints seconds per size for: the CSV import's header check (``count_rows``), a
subscriber's tag list (``clean_tags``), and an import chunk repeating one address
(``merge_duplicates``). No database needed.

    python -m bench.input_checks
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audience.errors import ImportPayloadError  # noqa: E402
from audience.fields import clean_tags  # noqa: E402
from audience.payloads import ImportRow, count_rows  # noqa: E402
from audience.upsert import merge_duplicates  # noqa: E402
from core.errors import InvalidFieldError  # noqa: E402


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    try:
        fn()
    except (InvalidFieldError, ImportPayloadError):
        pass  # refusing is the expected outcome past the caps
    return time.perf_counter() - start


def main() -> None:
    for columns in (10_000, 20_000, 40_000):
        header = ("email," + ",".join(f"c{i}" for i in range(columns)) + "\nada@example.com\n").encode()
        print(f"CSV header of {columns:>7,} columns: {timed(lambda: count_rows(header, 'csv')):.4f} s")
    for count in (20_000, 100_000, 1_000_000):
        tags = [f"t{i}" for i in range(count)]
        print(f"tag list of {count:>9,} tags:      {timed(lambda: clean_tags(tags)):.4f} s")
    for repeats in (800, 2000):
        rows = [ImportRow(email="ada@example.com", tags=[f"r{r}t{i}" for i in range(100)],
                          attributes={f"r{r}a{i}": i for i in range(100)}) for r in range(repeats)]
        print(f"chunk of {repeats:>5,} rows of one address: {timed(lambda: merge_duplicates(rows)):.4f} s")


if __name__ == "__main__":
    main()
