"""RFM: each customer (a subscriber with at least one event carrying a ``value``)
scored 1-5 on recency (days since the last such event; more recent scores
higher), frequency (how many) and monetary value (their sum), and named by the
usual segment map on the recency and frequency scores.

Scores are quintiles of the account's customers: a customer scores
``1 + floor(5 * below / n)``, ``below`` being the customers with a strictly worse
value, so equal values always score alike (with many one-time buyers, frequency
1 is one score however many share it, and some scores may be empty).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from analytics import account_data

# (recency scores, frequency scores) -> segment: the common RFM segment map.
SEGMENT_MAP = (
    ("champions", (5,), (4, 5)),
    ("loyal", (3, 4), (4, 5)),
    ("potential_loyalists", (4, 5), (2, 3)),
    ("new_customers", (5,), (1,)),
    ("promising", (4,), (1,)),
    ("need_attention", (3,), (3,)),
    ("about_to_sleep", (3,), (1, 2)),
    ("cannot_lose", (1, 2), (5,)),
    ("at_risk", (1, 2), (3, 4)),
    ("hibernating", (1, 2), (1, 2)),
)
SEGMENTS = tuple(name for name, _, _ in SEGMENT_MAP)


def segment_of(r: int, f: int) -> str:
    return next(name for name, rs, fs in SEGMENT_MAP if r in rs and f in fs)


def quintile_scores(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """1-5 by ``1 + floor(5 * below / n)``, ties scoring alike."""
    ordered = values if higher_is_better else -values
    below = ordered.rank(method="min").to_numpy() - 1
    return pd.Series(1 + np.floor(5 * below / max(len(values), 1)).astype("int64"), index=values.index)


def compute_rfm(session: Session, account_id: int, now: datetime,
                reads: account_data.Reads | None = None) -> dict[str, Any]:
    reads = reads or account_data.Reads(session, account_id)
    return rfm_table(reads.purchases(), int(reads.sizes()["subscribers"].sum()), now.timestamp())


def score(purchases: pd.DataFrame, now_epoch: float) -> pd.DataFrame:
    """``purchases`` with ``recency_days``, ``r``, ``f``, ``m`` and ``segment``."""
    frame = purchases.copy()
    frame["recency_days"] = np.floor((now_epoch - frame["last_at"]) / 86400).clip(lower=0).astype("int64")
    frame["r"] = quintile_scores(frame["recency_days"], higher_is_better=False)
    frame["f"] = quintile_scores(frame["transactions"])
    frame["m"] = quintile_scores(frame["revenue"])
    lookup = {(r, f): segment_of(r, f) for r in range(1, 6) for f in range(1, 6)}
    frame["segment"] = [lookup[key] for key in zip(frame["r"].tolist(), frame["f"].tolist())]
    return frame


def rfm_table(purchases: pd.DataFrame, subscribers: int, now_epoch: float) -> dict[str, Any]:
    frame = score(purchases, now_epoch)
    customers = len(frame)
    by_segment = frame.groupby("segment").agg(customers=("subscriber_id", "size"),
                                              recency_days=("recency_days", "mean"),
                                              frequency=("transactions", "mean"),
                                              monetary=("revenue", "mean"), revenue=("revenue", "sum"))
    segments = []
    for name in SEGMENTS:
        row = by_segment.loc[name] if name in by_segment.index else None
        segments.append({
            "segment": name, "customers": int(row["customers"]) if row is not None else 0,
            "share": round(float(row["customers"]) / customers, 4) if row is not None else 0.0,
            "recency_days_mean": _round(row, "recency_days"), "frequency_mean": _round(row, "frequency"),
            "monetary_mean": _round(row, "monetary"),
            "revenue": round(float(row["revenue"]), 2) if row is not None else 0.0})
    grid = frame.groupby(["r", "f", "m"]).size()
    return {
        "customers": customers, "subscribers": subscribers, "subscribers_without_value": subscribers - customers,
        "segments": segments,
        "scores": [{"r": int(r), "f": int(f), "m": int(m), "customers": int(n)} for (r, f, m), n in grid.items()],
        "score_floors": {name: _floors(frame, column, score_column) for name, column, score_column in
                         (("recency_days", "recency_days", "r"), ("frequency", "transactions", "f"),
                          ("monetary", "revenue", "m"))},
    }


def _round(row: Any, column: str) -> float | None:
    return None if row is None else round(float(row[column]), 2)


def _floors(frame: pd.DataFrame, column: str, score_column: str) -> dict[str, float]:
    """Per score, the lowest value (recency: the highest day count) that earns it."""
    grouped = frame.groupby(score_column)[column]
    edge = grouped.max() if column == "recency_days" else grouped.min()
    return {str(int(s)): round(float(v), 2) for s, v in edge.items()}
