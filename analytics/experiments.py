"""A/B/n decisions for an email step's variants that stay valid however often they
are looked at: re-evaluated after every rollup, a winner is declared between two
identical variants at most ``1 - confidence`` of the time (see analytics/sequential.py
for the method, mSPRT confidence sequences, and why).

With n variants every pair is compared, each at ``alpha / (n(n-1)/2)`` (Bonferroni),
so all the pairwise intervals hold together with probability ``1 - alpha``. A
variant is the winner when its interval against *every* other variant is above 0:
then a wrong winner needs some interval to miss, which happens at most alpha of
the time. Comparing to the first variant only would let a variant that beats the
control but loses to a third one be promoted. "No difference" is said when every
pairwise interval lies within ``NEGLIGIBLE_LIFT`` of the pair's rate: no variant
can then be better by more than that, at the same confidence.

Nothing is decided before every variant has ``min_per_variant`` sends (the normal
approximation needs a few hundred trials; it also stops a lucky first batch). A
decision is final: once stored, the caller passes it back as ``settled`` (with
``auto_promote`` the loser stops receiving sends, and its counts would otherwise
freeze while the winner's grow).

An experiment's ``holdout_percent`` adds a "no email" arm: that share of the
step's visits is sent nothing (sequencing.holdout). The arm is reported after
the variants, named ``holdout``, and never takes part in the decision (it cannot
win or be promoted, and it does not change the variants' Bonferroni split). Its
``held`` (and ``sent``, for a uniform table) is the visits held; for the
``converted`` metric its ``successes`` are the held visits followed by the goal
event within ``within_days``, and each variant gets its difference from the arm
(``difference_over_holdout``, ``lift_over_holdout``, and an always-valid interval
at ``alpha / variants``). Nothing can be opened or clicked in an email never
sent, so for ``opened`` and ``clicked`` those are null.

Pure: counts in, the API's experiment object out, no I/O.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from analytics.sequential import half_width, p_value

DEFAULTS: dict[str, Any] = {"confidence": 0.95, "min_per_variant": 100, "holdout_percent": 0, "auto_promote": True}
HOLDOUT_ARM = "holdout"  # the name of the "no email" arm; no variant of an experiment with one may take it
NEGLIGIBLE_LIFT = 0.10  # a difference under a tenth of the rate is not worth choosing a variant for
RUNNING, DECIDED, NO_DIFFERENCE = 0, 1, 2
STATUS_NAMES = {RUNNING: "running", DECIDED: "decided", NO_DIFFERENCE: "no_difference"}


def pair_alpha(alpha: float, variants: int) -> float:
    """Each pairwise comparison's share of alpha."""
    return alpha / (variants * (variants - 1) / 2)


def decide(sent: ArrayLike, successes: ArrayLike, *, confidence: float,
           min_per_variant: int) -> tuple[NDArray[np.int_], NDArray[np.int_]]:
    """(status, winner index or -1) for counts shaped ``(..., variants)``.

    Vectorised over the leading axes so a simulation can decide a thousand
    experiments at once with the same code that decides one."""
    n, x = np.asarray(sent, dtype=float), np.asarray(successes, dtype=float)
    k = n.shape[-1]
    if k < 2:
        raise ValueError("An experiment needs at least two variants.")
    alpha = pair_alpha(1 - confidence, k)
    beats = np.ones(n.shape, dtype=bool)  # beats[..., i]: i's interval is above every other's
    settled = np.ones(n.shape[:-1], dtype=bool)  # every pair within the negligible margin
    for i, j in combinations(range(k), 2):
        diff, width = half_width(n[..., i], x[..., i], n[..., j], x[..., j], alpha)
        beats[..., i] &= diff - width > 0
        beats[..., j] &= diff + width < 0
        pooled = (x[..., i] + x[..., j]) / np.maximum(n[..., i] + n[..., j], 1)
        settled &= np.abs(diff) + width <= NEGLIGIBLE_LIFT * pooled
    ready = np.all(n >= min_per_variant, axis=-1)
    won = ready & beats.any(axis=-1)
    status = np.where(won, DECIDED, np.where(ready & settled, NO_DIFFERENCE, RUNNING))
    return status, np.where(won, beats.argmax(axis=-1), -1)


def _sends_needed(rates: NDArray[np.float64], sent: NDArray[np.float64], alpha: float) -> int | None:
    """Sends per variant at which the current leader would be declared if the
    observed rates held and every variant had that many sends; None without a leader."""
    leader = int(np.argmax(rates))
    others = [j for j in range(len(rates)) if j != leader]
    if any(rates[leader] <= rates[j] for j in others):
        return None

    def margin(log_n: float, j: int) -> float:
        n = np.exp(log_n)
        diff, width = half_width(n, rates[leader] * n, n, rates[j] * n, alpha)
        return float(diff - width)

    needed = []
    for j in others:
        low, high = np.log(max(2.0, float(sent.max()))), np.log(1e9)
        if margin(high, j) <= 0:
            return None
        needed.append(np.exp(brentq(margin, low, high, args=(j,))) if margin(low, j) <= 0 else np.exp(low))
    return int(np.ceil(max(needed)))


def experiment_report(step: int, options: dict[str, Any], variants: Sequence[dict[str, Any]],
                      settled: dict[str, Any] | None = None,
                      holdout: dict[str, Any] | None = None) -> dict[str, Any]:
    """The API's experiment object for a step: ``variants`` are ``{"name", "sent",
    "successes"}`` in the step's order (the first is the control). ``settled`` is
    a stored earlier ``{"status", "winner"}``; a decision once made is kept.
    ``holdout``, the "no email" arm's ``{"held", "converted"}`` (converted None
    unless the metric is ``converted``), adds the arm after the variants."""
    opts = {**DEFAULTS, **options}
    names = [v["name"] for v in variants]
    n = np.array([v["sent"] for v in variants], dtype=float)
    x = np.array([v["successes"] for v in variants], dtype=float)
    if len(variants) < 2:
        raise ValueError("An experiment needs at least two variants.")
    if np.any(n < 0) or np.any(x < 0) or np.any(x > n):
        raise ValueError("Counts must satisfy 0 <= successes <= sent.")
    alpha = pair_alpha(1 - opts["confidence"], len(variants))
    status, winner = decide(n, x, confidence=opts["confidence"], min_per_variant=opts["min_per_variant"])
    result = {"status": STATUS_NAMES[int(status)], "winner": names[int(winner)] if winner >= 0 else None}
    if settled and settled.get("status") in ("decided", "no_difference"):
        result = {"status": settled["status"], "winner": settled.get("winner")}
    rates = np.divide(x, n, out=np.zeros_like(n), where=n > 0)
    rows = []
    for i, name in enumerate(names):
        row: dict[str, Any] = {"name": name, "sent": int(n[i]), "successes": int(x[i]), "rate": float(rates[i]),
                               "lift": None, "difference": None, "confidence_interval": None,
                               "p_value_always_valid": None}
        if i > 0:
            diff, width = half_width(n[i], x[i], n[0], x[0], alpha)
            pairs = len(variants) * (len(variants) - 1) / 2
            row.update({
                "lift": float(rates[i] / rates[0] - 1) if rates[0] > 0 else None,
                "difference": float(diff),
                "confidence_interval": [float(diff - width), float(diff + width)],
                "p_value_always_valid": float(min(1.0, pairs * p_value(n[i], x[i], n[0], x[0], alpha))),
            })
        row["held"] = None
        rows.append(row)
    if holdout is not None:
        rows = _with_holdout(rows, n, x, holdout, 1 - opts["confidence"])
    running = result["status"] == "running" and np.all(n > 0)
    return {"step": step, "metric": opts.get("metric"), **result, "method": "msprt",
            "confidence": opts["confidence"], "min_per_variant": opts["min_per_variant"],
            "auto_promote": opts["auto_promote"],
            "sends_needed_estimate": _sends_needed(rates, n, alpha) if running else None,
            "variants": rows}


def _with_holdout(rows: list[dict[str, Any]], n: NDArray[np.float64], x: NDArray[np.float64],
                  holdout: dict[str, Any], alpha: float) -> list[dict[str, Any]]:
    """The variants' rows with their lift over the "no email" arm, and the arm's row."""
    held, converted = int(holdout["held"]), holdout.get("converted")
    if held < 0 or (converted is not None and not 0 <= converted <= held):
        raise ValueError("Holdout counts must satisfy 0 <= converted <= held.")
    rate = converted / held if converted is not None and held > 0 else None
    out = []
    for i, row in enumerate(rows):
        extra: dict[str, Any] = {"difference_over_holdout": None, "lift_over_holdout": None,
                                 "confidence_interval_over_holdout": None}
        if rate is not None and n[i] > 0:
            diff, width = half_width(n[i], x[i], held, converted, alpha / len(rows))
            extra.update(difference_over_holdout=float(diff),
                         lift_over_holdout=float(row["rate"] / rate - 1) if rate > 0 else None,
                         confidence_interval_over_holdout=[float(diff - width), float(diff + width)])
        out.append({**row, **extra})
    out.append({"name": HOLDOUT_ARM, "sent": held, "held": held, "successes": converted, "rate": rate,
                "lift": None, "difference": None, "confidence_interval": None, "p_value_always_valid": None,
                "difference_over_holdout": None, "lift_over_holdout": None, "confidence_interval_over_holdout": None})
    return out


def promoted_variant(report: dict[str, Any]) -> str | None:
    """The variant every later visit of the step gets, or None to keep splitting:
    the winner of a decided experiment with ``auto_promote``."""
    if report["status"] == "decided" and report.get("auto_promote", True):
        return report["winner"]
    return None
