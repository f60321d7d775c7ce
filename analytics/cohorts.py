"""The cohort table: subscribers grouped by the week they signed up, and for each
later week the share of them that engaged (opened or clicked an email,
account_data.ENGAGED) in that week.

Week 0 is the signup week itself. Engagement before the signup week (imported
history) is left out. Only weeks that have begun by ``now`` are shown, so the last
cohort has one column. The latest MAX_COHORTS cohorts are kept, each with up to
MAX_COHORTS weeks.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from analytics import account_data

MAX_COHORTS = 52


def compute_cohorts(session: Session, account_id: int, now: datetime,
                    reads: account_data.Reads | None = None) -> dict[str, Any]:
    this_week = account_data.week_of(now)
    sizes = (reads or account_data.Reads(session, account_id)).sizes()
    engaged = account_data.engaged_by_week(session, account_id, this_week, MAX_COHORTS)
    return cohort_table(sizes, engaged, this_week)


def cohort_table(sizes: Any, engaged: Any, this_week: int) -> dict[str, Any]:
    """The answer from the two frames of account_data (``cohort, subscribers`` and
    ``cohort, offset, engaged``)."""
    sizes = sizes[sizes["cohort"] <= this_week].sort_values("cohort").tail(MAX_COHORTS)
    engaged = engaged[(engaged["offset"] >= 0) & (engaged["offset"] < MAX_COHORTS)]
    grid = engaged.pivot_table(index="cohort", columns="offset", values="engaged", aggfunc="sum", fill_value=0)
    cohorts = []
    for cohort, subscribers in zip(sizes["cohort"].tolist(), sizes["subscribers"].tolist()):
        weeks = min(this_week - cohort + 1, MAX_COHORTS)
        counts = [int(grid.at[cohort, w]) if cohort in grid.index and w in grid.columns else 0 for w in range(weeks)]
        cohorts.append({"cohort": account_data.monday(cohort).isoformat(), "subscribers": int(subscribers),
                        "engaged": counts, "shares": [round(n / subscribers, 4) for n in counts]})
    return {"period": "week", "engaged_events": list(account_data.ENGAGED), "cohorts": cohorts,
            "subscribers": int(sizes["subscribers"].sum())}


def cohort_rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per cohort and week, for the CSV."""
    return [{"cohort": c["cohort"], "subscribers": c["subscribers"], "week": week, "engaged": n,
             "share": c["shares"][week]} for c in answer["cohorts"] for week, n in enumerate(c["engaged"])]
