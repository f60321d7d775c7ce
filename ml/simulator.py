"""A simulated account with known truth, for evaluating the models (bench/ml_quality.py).

Each subscriber has a hidden engagement (a logit) that drifts week to week with a
drift of their own and shocks, a preferred local hour at which they open, and a
time zone. Every week the account sends one or more emails; a subscriber opens
each with probability sigmoid(engagement), mostly at their preferred hour (the same
day or a later one), sometimes at any time; clicks, purchases, unsubscribes,
complaints and bounces follow from the same hidden state.

The truth at ``end`` (skipped with ``futures=0``, for speed runs): each live
subscriber's true churn probability (no open or click in the next
``horizon_weeks``, or an unsubscribe), from their hidden state: the exact chance
of churning along each of many simulated paths of their engagement, averaged; one
future played out, the realised one, gives the labels that every ranking (the
oracle's, the model's, the rules') is scored on; and their true hour. Pure
numpy/pandas, seeded, so a run is reproducible.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from ml.history import History, make_history

ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "Europe/Berlin",
         "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney", "America/Sao_Paulo", None)
ZONE_WEIGHTS = np.array([20, 8, 12, 12, 14, 6, 6, 4, 6, 12], float)
DEFAULT_END = datetime(2026, 6, 1, tzinfo=timezone.utc)
HOUR_NS = 3_600 * 10**9
WEEK = timedelta(weeks=1)


@dataclass
class Simulation:
    """The history (as load_history would give it) and the truth at ``end``:
    ``truth`` is indexed by subscriber_id with ``live`` (subscribed at end),
    ``churn_probability``, ``churned`` (the realised label), ``true_hour``,
    ``engagement`` (the hidden logit at end), the ``mean`` it is pulled toward and
    that mean's weekly ``drift``, and ``opens`` (before end)."""

    history: History
    truth: pd.DataFrame
    end: datetime
    horizon: timedelta


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# The hidden engagement's model, stated once (bench/churn_ceiling.py filters with it).
def open_chance(z: np.ndarray) -> np.ndarray:
    """A sent email's chance of being opened."""
    return _sigmoid(z)


def click_chance(z: np.ndarray) -> np.ndarray:
    """An open's chance of a click, from the engagement of the week it is opened."""
    return 0.3 * _sigmoid(z + 0.5)


def purchase_chance(z: np.ndarray) -> np.ndarray:
    """A week's chance of a purchase."""
    return 0.04 * _sigmoid(z)


def unsubscribe_chance(z: np.ndarray) -> np.ndarray:
    """A week's chance of leaving."""
    return 0.006 * _sigmoid(-z - 1)


def first_state(rng: np.random.Generator, shape: int | tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A subscriber's own mean engagement, their engagement at the start, and the
    drift of their mean a week."""
    mean = rng.normal(-0.3, 1.3, shape)
    return mean, rng.normal(mean, 0.8), rng.normal(-0.01, 0.02, shape)


def next_engagement(rng: np.random.Generator, z: np.ndarray, mean: np.ndarray, drift: np.ndarray) -> np.ndarray:
    """Next week's hidden engagement: pulled back toward the subscriber's own mean,
    which drifts, plus noise and now and then a shock."""
    shock = np.where(rng.random(z.shape) < 0.02, rng.normal(-1.5, 1.0, z.shape), 0.0)
    return z + 0.1 * (mean - z) + drift + rng.normal(0, 0.3, z.shape) + shock


def engagement_path(rng: np.random.Generator, z: np.ndarray, mean: np.ndarray, drift: np.ndarray,
                    weeks: int) -> Iterator[np.ndarray]:
    """Each of the next ``weeks`` weeks' engagement, starting with ``z``: the next
    week's is drawn when the caller asks for it, after its draws for this one."""
    for _ in range(weeks):
        yield z
        z = next_engagement(rng, z, mean, drift)
        mean = mean + drift


def churned_futures(rng: np.random.Generator, z: np.ndarray, mean: np.ndarray, drift: np.ndarray, sends: int,
                    weeks: int) -> np.ndarray:
    """Plays each future of ``z`` (one a column) ``weeks`` weeks on: whether it
    churned, no open of any of ``sends`` emails a week, or an unsubscribe."""
    quiet = np.ones(z.shape, bool)
    left = np.zeros(z.shape, bool)
    for week in engagement_path(rng, z, mean, drift, weeks):
        p = open_chance(week)
        for _ in range(sends):
            quiet &= ~((rng.random(z.shape) < p) & ~left)
        left |= rng.random(z.shape) < unsubscribe_chance(week)
    return quiet | left


def horizon_sends(sends_per_week: float) -> int:
    """Emails a week in the futures that decide the truth: the account's rate,
    rounded, at least one."""
    return max(int(round(sends_per_week)), 1)


def churn_chance(rng: np.random.Generator, z: np.ndarray, mean: np.ndarray, drift: np.ndarray, sends: int,
                 weeks: int) -> np.ndarray:
    """The exact chance that each engagement path (one a column, drawn here) churns
    in ``weeks`` weeks, as ``churned_futures`` would play it: not churned is never
    leaving and opening at least one email. Averaging it over paths estimates a
    churn probability with far less noise than counting played futures: the opens
    and the unsubscribe are not drawn, only the engagement's path."""
    stays = np.ones(z.shape)
    silent = np.ones(z.shape)
    for week in engagement_path(rng, z, mean, drift, weeks):
        silent *= (1 - open_chance(week)) ** sends
        stays *= 1 - unsubscribe_chance(week)
    return 1 - stays * (1 - silent)


class _State:
    def __init__(self, rng: np.random.Generator, n: int, weeks: int) -> None:
        self.join = np.where(rng.random(n) < 0.4, 0, rng.integers(0, max(weeks - 4, 1), n))
        self.mean, self.z, self.drift = first_state(rng, n)
        self.live = np.ones(n, bool)


def simulate(n_subscribers: int = 20_000, weeks: int = 52, end: datetime = DEFAULT_END, seed: int = 0,
             sends_per_week: float = 1.0, horizon_weeks: int = 8, futures: int = 200,
             account_id: int = 1, weekly: list[dict[str, Any]] | None = None) -> Simulation:
    """Simulate ``weeks`` weeks up to ``end``; see the module docstring. ``weekly``,
    if given, receives each week's outcomes as the hidden state drew them (who was
    sent what, who opened, clicked and bought: bench/churn_ceiling.py filters them)."""
    rng = np.random.default_rng(seed)
    n = n_subscribers
    ids = np.arange(1, n + 1, dtype="int64")
    zone_idx = rng.choice(len(ZONES), n, p=ZONE_WEIGHTS / ZONE_WEIGHTS.sum())
    peak = rng.choice(3, n, p=[0.35, 0.25, 0.40])
    true_hour = np.round(np.choose(peak, [rng.normal(8, 1.5, n), rng.normal(13, 1.5, n),
                                          rng.normal(20, 2.0, n)])).astype(int) % 24
    state = _State(rng, n, weeks)
    start_ns = pd.Timestamp(end - weeks * WEEK).value
    week_ns = 7 * 24 * HOUR_NS
    chunks: list[tuple[np.ndarray, np.ndarray, str, np.ndarray]] = []  # (subscriber index, UTC ns, name, value)
    # (index, send ns, delay days, jitter hours, clicked: drawn from that week's engagement)
    opens: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(idx: np.ndarray, ns: np.ndarray, name: str, value: np.ndarray | None = None) -> None:
        chunks.append((idx, ns, name, np.full(len(idx), np.nan) if value is None else value))

    def open_events(who: np.ndarray, delay: np.ndarray, send_ns: int) -> None:
        """Opens of one send, ``delay`` days after it, each with its click drawn now."""
        jitter = rng.normal(0, 0.6, len(who))
        clicks = rng.random(len(who)) < click_chance(state.z[who])
        opens.append((who, np.full(len(who), send_ns), delay, jitter, clicks))
        seen["open_events"].append(who)
        seen["clicks"].append(clicks)

    for week in range(weeks):
        w0 = start_ns + week * week_ns
        member = state.live & (state.join <= week)
        p_open = open_chance(state.z)
        sends = int(sends_per_week) + int(rng.random() < sends_per_week % 1)
        seen: dict[str, Any] = {"sent": [], "opened": [], "open_events": [], "clicks": []}
        for _ in range(sends):
            send_ns = w0 + int(rng.integers(0, 7)) * 24 * HOUR_NS + 14 * HOUR_NS + int(rng.integers(0, 60)) * 60 * 10**9
            idx = np.flatnonzero(member)
            add(idx, np.full(len(idx), send_ns), "sent")
            bounced = idx[rng.random(len(idx)) < 0.0005]
            add(bounced, np.full(len(bounced), send_ns + 60 * 10**9), "bounced")
            state.live[bounced] = False
            opened = idx[rng.random(len(idx)) < p_open[idx]]
            opened = opened[state.live[opened]]
            seen["sent"].append(idx)
            seen["opened"].append(opened)
            open_events(opened, rng.geometric(0.7, len(opened)) - 1, send_ns)  # most open when their hour first comes
            again = opened[rng.random(len(opened)) < 0.3]
            open_events(again, np.zeros(len(again), int), send_ns)
            not_opened = np.setdiff1d(idx, opened)
            complained = not_opened[rng.random(len(not_opened)) < 0.0003]
            add(complained, np.full(len(complained), send_ns + 2 * HOUR_NS), "complained")
            state.live[complained] = False
        seen["may_buy"] = np.flatnonzero(member & state.live)
        buyers = np.flatnonzero(member & state.live & (rng.random(n) < purchase_chance(state.z)))
        add(buyers, w0 + rng.integers(0, week_ns, len(buyers)), "purchase",
            np.round(rng.lognormal(3.5, 0.7, len(buyers)), 2))
        seen["bought"] = buyers
        leaving = np.flatnonzero(member & state.live & (rng.random(n) < unsubscribe_chance(state.z)))
        if weekly is not None:
            weekly.append(seen)
        add(leaving, w0 + rng.integers(0, week_ns, len(leaving)), "unsubscribed")
        state.live[leaving] = False
        state.z = next_engagement(rng, state.z, state.mean, state.drift)
        state.mean = state.mean + state.drift

    open_idx, open_ns = _open_times(rng, opens, zone_idx, true_hour)
    clicked = np.concatenate([o[4] for o in opens])
    add(open_idx, open_ns, "opened")
    add(open_idx[clicked], open_ns[clicked] + rng.integers(10, 600, clicked.sum()) * 10**9, "clicked")

    idx = np.concatenate([c[0] for c in chunks])
    events = pd.DataFrame({"subscriber_id": ids[idx],
                           "name": pd.Categorical(np.concatenate([np.full(len(c[0]), c[2], object) for c in chunks])),
                           "occurred_at": pd.to_datetime(np.concatenate([c[1] for c in chunks]), utc=True),
                           "value": np.concatenate([c[3] for c in chunks]).astype("float32")})
    # An open can land after ``end`` (an email sent late on the last day): the history stops at end.
    joined_ns = start_ns + state.join * week_ns - rng.integers(0, week_ns, n)
    subscribers = pd.DataFrame({"subscriber_id": ids, "timezone": [ZONES[i] for i in zone_idx],
                                "status": np.where(state.live, "active", "unsubscribed"),
                                "created_at": pd.to_datetime(joined_ns, utc=True)})
    history = make_history(account_id, end, events, subscribers)
    if futures == 0:
        truth = pd.DataFrame({"live": state.live, "true_hour": true_hour}, index=pd.Index(ids, name="subscriber_id"))
    else:
        truth = _truth(rng, state, ids, true_hour, sends_per_week, horizon_weeks, futures)
    truth["opens"] = history.events.loc[history.events["name"] == "opened"].groupby("subscriber_id").size() \
        .reindex(truth.index, fill_value=0)
    return Simulation(history, truth, end, timedelta(weeks=horizon_weeks))


def _open_times(rng: np.random.Generator, opens: list, zone_idx: np.ndarray,
                true_hour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTC times of opens: at the subscriber's hour in their zone, on the send's local
    day or a later one; one in five at any time in the next 36 hours instead."""
    idx = np.concatenate([o[0] for o in opens])
    send = np.concatenate([o[1] for o in opens])
    delay = np.concatenate([o[2] for o in opens])
    jitter = np.concatenate([o[3] for o in opens])
    out = np.empty(len(idx), "int64")
    for z, name in enumerate(ZONES):
        m = zone_idx[idx] == z
        zone = name or "UTC"
        local = pd.DatetimeIndex(pd.to_datetime(send[m], utc=True)).tz_convert(zone).tz_localize(None).as_unit("ns")
        day = local.normalize().asi8
        at = day + ((true_hour[idx[m]] + rng.random(m.sum()) + jitter[m]) * HOUR_NS).astype("int64")
        at = np.where(at < local.asi8, at + 24 * HOUR_NS, at) + delay[m] * 24 * HOUR_NS
        back = pd.DatetimeIndex(at.astype("datetime64[ns]")).tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
        at_utc = np.where(back.isna(), at, back.as_unit("ns").asi8)  # an hour that happens twice: either will do
        out[m] = at_utc
    anytime = rng.random(len(idx)) < 0.2
    out[anytime] = send[anytime] + rng.integers(0, 36 * HOUR_NS, anytime.sum())
    return idx, out


def _truth(rng: np.random.Generator, state: _State, ids: np.ndarray, true_hour: np.ndarray, sends_per_week: float,
           horizon_weeks: int, futures: int) -> pd.DataFrame:
    """The true churn probability from the hidden state at end (the exact chance
    along each of ``futures`` engagement paths, averaged) and one realised future."""
    sends = horizon_sends(sends_per_week)
    churned = churned_futures(rng, state.z[:, None], state.mean[:, None], state.drift[:, None], sends,
                              horizon_weeks)[:, 0]
    paths = (len(state.z), futures)
    chance = churn_chance(rng, np.broadcast_to(state.z[:, None], paths), np.broadcast_to(state.mean[:, None], paths),
                          np.broadcast_to(state.drift[:, None], paths), sends, horizon_weeks)
    return pd.DataFrame({"live": state.live, "churn_probability": chance.mean(axis=1), "churned": churned,
                         "true_hour": true_hour, "engagement": state.z, "mean": state.mean, "drift": state.drift},
                        index=pd.Index(ids, name="subscriber_id"))
