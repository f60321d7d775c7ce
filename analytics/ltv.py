"""Lifetime value: revenue to date (the ``value`` of a subscriber's events) per
subscriber and per signup-week cohort, and the value each is predicted to bring
in the next HORIZON_WEEKS by BG/NBD + Gamma-Gamma (analytics.btyd).

Each event with a value is one purchase. A customer's clock starts at its first
purchase: x is the purchases after it, t_x the last one's time and T the age, in
weeks. Subscribers who never bought are not in the model and are predicted 0 (the
cohort figures still divide by every subscriber). The model is fitted on at most
FIT_SAMPLE customers drawn at random (seeded by the account, so a rerun on the
same data gives the same numbers; at 50,000 the standard errors are a few percent
of the parameters), then applied to all of them. Fewer than MIN_CUSTOMERS
customers, or none with a repeat purchase or a positive spend, leave
``model`` null and the predictions null. A customer whose expectation cannot be
evaluated (none is known today) is predicted 0 and counted in ``unpredicted``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from analytics import account_data, btyd

HORIZON_WEEKS = 52
FIT_SAMPLE = 50_000
MIN_CUSTOMERS = 20
TOP = 100


def compute_ltv(session: Session, account_id: int, now: datetime,
                reads: account_data.Reads | None = None) -> dict[str, Any]:
    reads = reads or account_data.Reads(session, account_id)
    answer = ltv_table(reads.purchases(), reads.sizes(), now.timestamp(), seed=account_id)
    found = account_data.emails(session, account_id, [row["subscriber_id"] for row in answer["top_subscribers"]])
    for row in answer["top_subscribers"]:
        row["email"] = found.get(row["subscriber_id"])
    return answer


def predict(purchases: pd.DataFrame, now_epoch: float, seed: int) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """The fitted model's description and each customer's predicted value, or (None, None)."""
    x = purchases["transactions"].to_numpy(dtype=float) - 1
    t_x = (purchases["last_at"] - purchases["first_at"]).to_numpy() / account_data.WEEK_SECONDS
    big_t = np.maximum((now_epoch - purchases["first_at"].to_numpy()) / account_data.WEEK_SECONDS, t_x)
    mean_value = purchases["revenue"].to_numpy() / purchases["transactions"].to_numpy()
    spenders = mean_value > 0
    if len(purchases) < MIN_CUSTOMERS or not (x > 0).any() or spenders.sum() < MIN_CUSTOMERS:
        return None, None
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(x), FIT_SAMPLE, replace=False) if len(x) > FIT_SAMPLE else slice(None)
    frequency = btyd.fit_bgnbd(x[sample], t_x[sample], big_t[sample])
    spending_sample = np.flatnonzero(spenders)
    if len(spending_sample) > FIT_SAMPLE:
        spending_sample = rng.choice(spending_sample, FIT_SAMPLE, replace=False)
    spend = btyd.fit_gamma_gamma(x[spending_sample] + 1, mean_value[spending_sample])
    purchases_ahead = btyd.expected_purchases(frequency, HORIZON_WEEKS, x, t_x, big_t)
    value_each = btyd.expected_value(spend, x + 1, np.maximum(mean_value, 0))
    predicted = purchases_ahead * value_each
    model = {"name": "bg_nbd+gamma_gamma", "time_unit": "week", "horizon_weeks": HORIZON_WEEKS,
             "fitted_on": int(min(len(x), FIT_SAMPLE)), "unpredicted": int((~np.isfinite(predicted)).sum()),
             "params": {"r": frequency.r, "alpha": frequency.alpha, "a": frequency.a, "b": frequency.b,
                        "p": spend.p, "q": spend.q, "gamma": spend.gamma}}
    return model, np.where(np.isfinite(predicted), predicted, 0.0)


def ltv_table(purchases: pd.DataFrame, sizes: pd.DataFrame, now_epoch: float, seed: int = 0) -> dict[str, Any]:
    model, predicted = predict(purchases, now_epoch, seed)
    frame = purchases.assign(predicted=predicted if predicted is not None else np.nan)
    per_cohort = frame.groupby("cohort").agg(customers=("subscriber_id", "size"), revenue=("revenue", "sum"),
                                             predicted=("predicted", "sum"))
    cohorts = []
    ordered = sizes.sort_values("cohort")
    for cohort, subscribers in zip(ordered["cohort"].tolist(), ordered["subscribers"].tolist()):
        here = per_cohort.loc[cohort] if cohort in per_cohort.index else None
        revenue = float(here["revenue"]) if here is not None else 0.0
        ahead = (float(here["predicted"]) if here is not None else 0.0) if model else None
        cohorts.append({"cohort": account_data.monday(cohort).isoformat(), "subscribers": int(subscribers),
                        "customers": int(here["customers"]) if here is not None else 0,
                        "revenue": round(revenue, 2), "revenue_per_subscriber": round(revenue / subscribers, 4),
                        "predicted_revenue": None if ahead is None else round(ahead, 2),
                        "predicted_per_subscriber": None if ahead is None else round(ahead / subscribers, 4)})
    subscribers = int(sizes["subscribers"].sum())
    revenue = float(frame["revenue"].sum())
    top = frame.sort_values(["revenue", "subscriber_id"], ascending=[False, True]).head(TOP)
    return {
        "model": model, "subscribers": subscribers, "customers": len(frame), "revenue": round(revenue, 2),
        "revenue_per_subscriber": round(revenue / subscribers, 4) if subscribers else 0.0,
        "predicted_revenue": round(float(frame["predicted"].sum()), 2) if model else None,
        "cohorts": cohorts,
        "top_subscribers": [{"subscriber_id": int(r.subscriber_id), "transactions": int(r.transactions),
                             "revenue": round(float(r.revenue), 2),
                             "predicted_revenue": round(float(r.predicted), 2) if model else None}
                            for r in top.itertuples()],
    }
