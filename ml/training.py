"""What the models share: cuts in time, labels after a cut, rows for scikit-learn.

A time-based split: features as of a cut ``c`` from events at or before ``c``,
labels from ``(c, c + horizon]``. Training cuts step back from ``as_of - 2 *
horizon`` every ``STEP``; the evaluation cut is ``as_of - horizon``, whose labels
end at ``as_of``, so no label the model was fitted on comes after the evaluation
cut's features.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ml.features import HOUR_COLUMNS, features, nanoseconds
from ml.history import History

STEP = timedelta(weeks=4)
MAX_CUTS = 6  # older cuts add rows, not knowledge of today's account
MAX_ROWS = 300_000  # training rows kept (sampled): bounds time and memory at 100k+ subscribers
WARMUP = timedelta(weeks=4)  # a cut needs this much history before it to have features


@contextmanager
def one_thread() -> Iterator[None]:
    """Fit on one thread. The ml worker shares two cores with the other pools, and
    OpenMP's spinning barriers under that contention made a gradient-boosting fit on
    2 threads 7x slower than on 1 (66 s against 9 s for 100,000 rows, measured on
    this machine while other processes ran)."""
    with threadpool_limits(limits=1):
        yield


class NotEnoughHistoryError(ValueError):
    """The history is too short, or its labels all alike, to train and evaluate."""


def model_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in HOUR_COLUMNS]


def subscribed(frame: pd.DataFrame) -> np.ndarray:
    """Rows still reachable at the cut: never unsubscribed, complained or bounced."""
    return ((frame["unsubscribed"] == 0) & (frame["complaints_total"] == 0) & (frame["bounces_total"] == 0)).to_numpy()


def training_cuts(history: History, as_of: datetime, horizon: timedelta) -> list[datetime]:
    """Newest first: as_of - 2*horizon, then every STEP back while history allows.
    A shorter history gets cuts one to three weeks before the evaluation cut instead,
    whose labels overlap the evaluation's (``split`` says which)."""
    if not len(history.events):
        return []
    first = pd.Timestamp(history.events["occurred_at"].min()).floor("s").to_pydatetime()
    cuts, cut = [], as_of - 2 * horizon
    while cut >= first + WARMUP and len(cuts) < MAX_CUTS:
        cuts.append(cut)
        cut -= STEP
    if not cuts:
        cuts = [c for c in (as_of - horizon - timedelta(weeks=k) for k in (1, 2, 3)) if c >= first + WARMUP / 2]
    return cuts


def split(cuts: list[datetime], as_of: datetime, horizon: timedelta) -> str:
    """"strict": every training label ends by the evaluation cut; "overlapping": a
    short history's cuts, whose labels run into the evaluation's."""
    return "strict" if cuts and cuts[0] <= as_of - 2 * horizon else "overlapping"


def counts_between(history: History, names: tuple[str, ...], start: datetime, end: datetime,
                   index: pd.Index) -> np.ndarray:
    """Per subscriber of ``index``: events named ``names`` in ``(start, end]``."""
    events = history.events
    t = nanoseconds(events["occurred_at"])
    m = events["name"].isin(names).to_numpy() & (t > pd.Timestamp(start).value) & (t <= pd.Timestamp(end).value)
    pos = index.get_indexer(events["subscriber_id"].to_numpy()[m])
    return np.bincount(pos[pos >= 0], minlength=len(index))


def weeks_active_between(history: History, start: datetime, weeks: int, index: pd.Index) -> np.ndarray:
    """Per subscriber: how many of the ``weeks`` weeks after ``start`` had an open or click."""
    events = history.events
    t = nanoseconds(events["occurred_at"])
    after = (t - pd.Timestamp(start).value) / (7 * 86_400 * 10**9)
    m = events["name"].isin(("opened", "clicked")).to_numpy() & (after > 0) & (after <= weeks)
    pos = index.get_indexer(events["subscriber_id"].to_numpy()[m])
    week = np.minimum(np.ceil(after[m]).astype("int64") - 1, weeks - 1)
    keys = np.unique(pos[pos >= 0].astype("int64") * weeks + week[pos >= 0])
    return np.bincount(keys // weeks, minlength=len(index))


def churn_labels(history: History, cut: datetime, horizon: timedelta, index: pd.Index) -> np.ndarray:
    """1 when the subscriber neither opened nor clicked in ``(cut, cut + horizon]``, or
    unsubscribed or complained in it."""
    engaged = counts_between(history, ("opened", "clicked"), cut, cut + horizon, index)
    left = counts_between(history, ("unsubscribed", "complained"), cut, cut + horizon, index)
    return ((engaged == 0) | (left > 0)).astype("int8")


def features_at(history: History, cut: datetime) -> pd.DataFrame:
    """``features(history, cut)``, kept on the history: the models of one training
    run share cuts, and scoring reads the frame the send-time model just built."""
    cache = history._cache.setdefault("features", {})
    if cut not in cache:
        cache[cut] = features(history, cut)
    return cache[cut]


def rows_at(history: History, cut: datetime) -> pd.DataFrame:
    """Feature rows of the subscribers reachable at ``cut``."""
    frame = features_at(history, cut)
    return frame.loc[subscribed(frame)]


def sample(frame: pd.DataFrame, labels: np.ndarray, limit: int = MAX_ROWS) -> tuple[pd.DataFrame, np.ndarray]:
    if len(frame) <= limit:
        return frame, labels
    keep = np.sort(np.random.default_rng(0).choice(len(frame), limit, replace=False))
    return frame.iloc[keep], labels[keep]


def iso(moment: datetime) -> str:
    return pd.Timestamp(moment).tz_convert("UTC").isoformat()
