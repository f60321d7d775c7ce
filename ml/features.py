"""Features of each subscriber as of a point in time, from events at or before it.

Nothing after ``as_of`` is read (a test adds events after it and compares), so the
same function builds training rows at past cuts and scoring rows now. Counting is
numpy over positional subscriber indexes (``np.bincount``), so 10M events take a
few seconds, not a groupby per feature.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from ml.history import PLATFORM_EVENTS, History

DAY_NS = 86_400 * 10**9
WINDOWS = (7, 28, 91, 182, 365)
HALF_LIVES = (14, 28, 56)
HOUR_COLUMNS = [f"open_h{h:02d}" for h in range(24)]


def features(history: History, as_of: datetime) -> pd.DataFrame:
    """See ml.api.features."""
    cut = pd.Timestamp(as_of).tz_convert("UTC")
    events = history.events
    times = nanoseconds(events["occurred_at"])
    keep = times <= cut.value
    ids = events["subscriber_id"].to_numpy()[keep]
    age = (cut.value - times[keep]) / DAY_NS  # days before the cut, >= 0
    names = events["name"].cat.codes.to_numpy()[keep]
    categories = list(events["name"].cat.categories)
    hours = history.local_hours()[keep] if len(events) else np.zeros(0, "int8")

    subs = history.subscribers
    first_event = pd.Series(age, index=ids).groupby(level=0).max() if len(ids) else pd.Series(dtype=float)
    created_age = (cut.value - nanoseconds(subs["created_at"])) / DAY_NS
    created_age = pd.Series(created_age, index=subs.index)
    exists = (created_age >= 0) | subs.index.isin(first_event.index)
    index = subs.index[exists]
    tenure = np.fmax(created_age.reindex(index).to_numpy(), first_event.reindex(index).to_numpy())
    n = len(index)
    pos = index.get_indexer(ids)
    known = pos >= 0
    pos, age, names, hours = pos[known], age[known], names[known], hours[known]

    def mask_of(*wanted: str) -> np.ndarray:
        codes = [categories.index(w) for w in wanted if w in categories]
        return np.isin(names, codes) if codes else np.zeros(len(names), bool)

    def count(mask: np.ndarray, within: float = np.inf, weights: np.ndarray | None = None) -> np.ndarray:
        m = mask & (age <= within) if np.isfinite(within) else mask
        return np.bincount(pos[m], weights=None if weights is None else weights[m], minlength=n).astype("float64")

    def since(mask: np.ndarray) -> np.ndarray:
        out = np.full(n, np.inf)
        np.minimum.at(out, pos[mask], age[mask])
        return np.where(np.isfinite(out), out, np.nan)

    opened, clicked, sent = mask_of("opened"), mask_of("clicked"), mask_of("sent")
    engaged = opened | clicked
    conversion = ~np.isin(names, [categories.index(c) for c in PLATFORM_EVENTS if c in categories])
    cols: dict[str, np.ndarray] = {"tenure_days": tenure,
                                   "days_since_open": since(opened), "days_since_click": since(clicked),
                                   "days_since_engaged": since(engaged), "days_since_sent": since(sent)}
    for w in WINDOWS:
        cols[f"opens_{w}d"] = count(opened, w)
        cols[f"clicks_{w}d"] = count(clicked, w)
        cols[f"sent_{w}d"] = count(sent, w)
    cols["opens_total"] = count(opened)
    cols["clicks_total"] = count(clicked)
    cols["opens_56d"] = count(opened, 56)
    cols["opens_prev_28d"] = cols["opens_56d"] - cols["opens_28d"]
    cols["opens_trend"] = np.log1p(cols["opens_28d"]) - np.log1p(cols["opens_prev_28d"])
    cols["opens_trend_91"] = np.log1p(cols["opens_91d"]) - np.log1p(cols["opens_182d"] - cols["opens_91d"])
    with np.errstate(divide="ignore", invalid="ignore"):
        for w in (28, 91, 365):
            cols[f"open_rate_{w}d"] = np.where(cols[f"sent_{w}d"] > 0, cols[f"opens_{w}d"] / cols[f"sent_{w}d"], np.nan)
        cols["click_rate_91d"] = np.where(cols["sent_91d"] > 0, cols["clicks_91d"] / cols["sent_91d"], np.nan)
    # Exponentially decayed counts: recent weeks weigh most, without a window's cliff.
    for half_life in HALF_LIVES:
        decay = np.exp2(-age / half_life)
        cols[f"opens_decayed_{half_life}d"] = count(opened, weights=decay)
        cols[f"sent_decayed_{half_life}d"] = count(sent, weights=decay)
        with np.errstate(divide="ignore", invalid="ignore"):
            cols[f"open_rate_decayed_{half_life}d"] = np.where(
                cols[f"sent_decayed_{half_life}d"] > 0,
                cols[f"opens_decayed_{half_life}d"] / cols[f"sent_decayed_{half_life}d"], np.nan)
    active = _active_weeks(pos[engaged], age[engaged], 26, n)
    for weeks in (4, 12, 26):
        cols[f"active_weeks_{weeks}"] = active[:, :weeks].sum(axis=1).astype("float64")
    cols["bounces_total"] = count(mask_of("bounced"))
    cols["complaints_total"] = count(mask_of("complained"))
    cols["unsubscribed"] = (count(mask_of("unsubscribed")) > 0).astype("float64")
    cols["conversions_91d"] = count(conversion, 91)
    cols["conversions_365d"] = count(conversion, 365)
    values = np.nan_to_num(events["value"].to_numpy()[keep][known].astype("float64"))
    cols["revenue_365d"] = count(conversion, 365, weights=values)
    frame = pd.DataFrame(cols, index=pd.Index(index, name="subscriber_id"))
    profile = np.zeros((n, 24))
    np.add.at(profile, (pos[opened], hours[opened].astype("int64")), 1.0)
    return pd.concat([frame, pd.DataFrame(profile, index=frame.index, columns=HOUR_COLUMNS)], axis=1)


def nanoseconds(times: pd.Series) -> np.ndarray:
    """UTC times as int64 nanoseconds since the epoch."""
    return pd.DatetimeIndex(times).as_unit("ns").asi8


def _active_weeks(pos: np.ndarray, age: np.ndarray, weeks: int, n: int) -> np.ndarray:
    """(n, weeks) flags: week w before the cut had at least one event. A flag matrix,
    not np.unique over keys: sorting 10M keys took over half of the features' time."""
    week = (age // 7).astype("int64")
    m = week < weeks
    flags = np.zeros((n, weeks), bool)
    flags[pos[m], week[m]] = True
    return flags


def hour_profile(frame: pd.DataFrame) -> np.ndarray:
    """The open-hour counts of a features frame, (n, 24)."""
    return frame[HOUR_COLUMNS].to_numpy(dtype="float64")


