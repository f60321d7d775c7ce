"""Learned send time: each subscriber's best local hour from the hours they opened at.

A subscriber's open-hour counts are smoothed around the clock (an open at 8:55
says something about 9:00) and added to ``alpha`` pseudo-opens spread like the
account's population profile; the best hour is the peak. With few opens the
population decides, with many their own hours do (a Dirichlet prior: empirical
Bayes). ``alpha`` and the smoothing width are chosen on the account's own data:
the pair whose predicted hours, from opens before ``as_of - HOLDOUT``, lie within
one hour of the most later opens. The same later opens score the fixed 9-12h rule
(hour 10, so 9-11 count) for comparison.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from ml.features import hour_profile
from ml.history import History
from ml.model import TrainedModel
from ml.training import features_at, iso

HOLDOUT = timedelta(weeks=8)
ALPHAS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
WIDTHS = (0.5, 1.0, 1.5, 2.0)  # hours, the smoothing kernel's standard deviation
RULE_HOUR = 10


def smooth(counts: np.ndarray, width: float) -> np.ndarray:
    """Circular Gaussian smoothing of (n, 24) hour counts."""
    offsets = np.arange(-12, 12)
    kernel = np.exp(-0.5 * (offsets / width) ** 2)
    kernel /= kernel.sum()
    out = np.zeros_like(counts, dtype="float64")
    for shift, weight in zip(offsets, kernel):
        out += weight * np.roll(counts, shift, axis=1)
    return out


def population_profile(counts: np.ndarray, width: float) -> np.ndarray:
    """The account's hour profile: each subscriber with opens weighs the same."""
    totals = counts.sum(axis=1)
    some = totals > 0
    if not some.any():
        return np.full(24, 1 / 24)
    shares = smooth(counts[some] / totals[some, None], width).mean(axis=0)
    return shares / shares.sum()


def best_hours(counts: np.ndarray, prior: np.ndarray, alpha: float, width: float) -> np.ndarray:
    posterior = smooth(counts, width) + alpha * prior[None, :]
    return posterior.argmax(axis=1)


def within_one_hour(predicted: np.ndarray, later: np.ndarray) -> float:
    """Share of later opens (n, 24 counts) within one hour (circular) of the predicted hour."""
    hit = np.zeros_like(later)
    rows = np.arange(len(predicted))
    for d in (-1, 0, 1):
        cols = (predicted + d) % 24
        hit[rows, cols] = later[rows, cols]
    total = later.sum()
    return float(hit.sum() / total) if total else float("nan")


def train_send_time(history: History, as_of: datetime) -> TrainedModel:
    """See ml.api.train_send_time."""
    as_of = as_of.astimezone(timezone.utc)
    now_frame, before_frame = features_at(history, as_of), features_at(history, as_of - HOLDOUT)
    now = hour_profile(now_frame)
    before = hour_profile(before_frame)
    later = now[now_frame.index.get_indexer(before_frame.index)] - before
    grid: dict[str, float] = {}
    best: tuple[float, float, float] = (-1.0, ALPHAS[0], WIDTHS[0])
    if later.sum() > 0:
        for width in WIDTHS:
            prior = population_profile(before, width)
            for alpha in ALPHAS:
                hit = within_one_hour(best_hours(before, prior, alpha, width), later)
                grid[f"alpha={alpha},width={width}"] = hit
                best = max(best, (hit, alpha, width))
    hit, alpha, width = best
    rule = within_one_hour(np.full(len(before), RULE_HOUR), later) if later.sum() > 0 else float("nan")
    few = before.sum(axis=1) < 5
    metrics: dict[str, Any] = {
        "later_opens_within_1h": None if hit < 0 else hit, "rule_9_12_within_1h": rule,
        "later_opens_within_1h_few_opens": within_one_hour(
            best_hours(before[few], population_profile(before, width), alpha, width), later[few])
        if few.any() else None,
        "grid": grid, "later_opens": int(later.sum()), "holdout_days": HOLDOUT.days,
        "as_of": iso(as_of), "evaluation_cut": iso(as_of - HOLDOUT),
        "definition": ("best local hour: peak of the subscriber's smoothed open hours plus alpha"
                       " population pseudo-opens"),
    }
    promoted = hit >= 0 and not (rule == rule and hit <= rule)
    metrics["promoted"] = promoted
    metrics["scored_by"] = "model" if promoted else "rule:fixed_9_12"
    state = {"prior": population_profile(now, width), "alpha": alpha, "width": width,
             "fixed_hour": None if promoted else RULE_HOUR}
    return TrainedModel("send_time", None, {"alpha": alpha, "width_hours": width}, metrics, promoted, state)
