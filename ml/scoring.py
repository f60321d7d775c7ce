"""Scoring an account's subscribers with its live models, and reading the scores back.

Each run replaces every scored subscriber's row (one per subscriber) with scores
as of one moment: the live model of each kind scores, and a kind with no live model
is scored by its simple rule (``ml.api.score_all``), its model id then null.
Takes a session and times; never commits.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ml import api
from ml.model import KINDS, SCORE_COLUMNS
from ml.registry import live_models
from models import SubscriberScore
from models.bulk import dialect_insert

# Rows per upsert statement: bounded parameters per statement on both backends.
UPSERT_CHUNK = 2000
MODEL_ID_COLUMNS = {"churn": "churn_model_id", "engagement": "engagement_model_id", "send_time": "send_time_model_id"}
_SCORES = SubscriberScore.__table__


def score_account(session: Session, account_id: int, as_of: datetime, history: api.History | None = None) -> int:
    """Score every subscriber of the account from its history up to ``as_of`` (read
    here unless given); returns how many rows were written."""
    live = live_models(session, account_id)
    if history is None:
        history = api.load_history(session, account_id, until=as_of)
    frame = api.score_all({kind: model for kind, (_id, model) in live.items()}, history, as_of)
    model_ids = {kind: (live[kind][0] if kind in live else None) for kind in KINDS}
    write_scores(session, account_id, as_of, model_ids, frame)
    return len(frame)


# PostgreSQL: a chunk travels as four array parameters unnested in SQL, with what
# every row shares (account, time, models) as plain parameters: one statement per
# chunk. An executemany of the upsert ran row by row (about 2,000 rows/s), and rows
# as JSON spent most of their time in Python serialising a datetime per row.
_UPSERT_ARRAYS = text(
    "INSERT INTO subscriber_scores (account_id, subscriber_id, churn_risk, engagement, best_send_hour, scored_at,"
    " churn_model_id, engagement_model_id, send_time_model_id)"
    " SELECT CAST(:account AS int), v.sid, v.churn, v.engagement, v.hour, CAST(:scored_at AS timestamptz),"
    " CAST(:churn_model AS int), CAST(:engagement_model AS int), CAST(:send_time_model AS int) FROM unnest(CAST(:ids AS int[]), CAST(:churn AS float8[]), CAST(:engagement AS float8[]),"
    " CAST(:hours AS smallint[])) AS v(sid, churn, engagement, hour)"
    " ON CONFLICT (subscriber_id) DO UPDATE SET churn_risk = EXCLUDED.churn_risk, engagement = EXCLUDED.engagement,"
    " best_send_hour = EXCLUDED.best_send_hour, scored_at = EXCLUDED.scored_at,"
    " churn_model_id = EXCLUDED.churn_model_id, engagement_model_id = EXCLUDED.engagement_model_id,"
    " send_time_model_id = EXCLUDED.send_time_model_id"
    " WHERE subscriber_scores.account_id = EXCLUDED.account_id")
ARRAY_CHUNK = 50_000


def write_scores(session: Session, account_id: int, scored_at: datetime, model_ids: Mapping[str, int | None],
                 frame: pd.DataFrame) -> None:
    """Insert or replace the row of each subscriber in ``frame`` (score_all's columns:
    subscriber_id, churn_risk, engagement, best_send_hour; NaN is no score), as of
    ``scored_at``, with the model id of each kind (None: its rule). The update never
    crosses accounts: a row is replaced only by one of its own account."""
    ids = {f"{kind}_model": model_ids.get(kind) for kind in KINDS}
    churn = frame[SCORE_COLUMNS["churn"]].to_numpy(dtype="float64", na_value=np.nan)
    engagement = frame[SCORE_COLUMNS["engagement"]].to_numpy(dtype="float64", na_value=np.nan)
    hours = frame[SCORE_COLUMNS["send_time"]].to_numpy(dtype="float64", na_value=np.nan)
    hours = np.where(np.isnan(hours), np.nan, np.mod(np.floor(np.nan_to_num(hours)), 24))
    subscriber_ids = frame["subscriber_id"].to_numpy(dtype="int64")
    if session.get_bind().dialect.name == "postgresql":
        for start in range(0, len(frame), ARRAY_CHUNK):
            part = slice(start, start + ARRAY_CHUNK)
            session.execute(_UPSERT_ARRAYS, {
                "account": account_id, "scored_at": scored_at, **ids,
                "ids": _array(subscriber_ids[part].astype(str)), "churn": _floats(churn[part]),
                "engagement": _floats(engagement[part]), "hours": _floats(hours[part], integer=True)})
        return
    rows = [{"account_id": account_id, "subscriber_id": int(sid), "churn_risk": _number(c), "engagement": _number(e),
             "best_send_hour": None if math.isnan(h) else int(h), "scored_at": scored_at,
             **{MODEL_ID_COLUMNS[kind]: model_ids.get(kind) for kind in KINDS}}
            for sid, c, e, h in zip(subscriber_ids, churn, engagement, hours, strict=True)]
    insert = dialect_insert(session, SubscriberScore)
    columns = ("churn_risk", "engagement", "best_send_hour", "scored_at", *MODEL_ID_COLUMNS.values())
    statement = insert.on_conflict_do_update(
        index_elements=["subscriber_id"], set_={c: insert.excluded[c] for c in columns},
        where=_SCORES.c.account_id == insert.excluded.account_id)
    for start in range(0, len(rows), UPSERT_CHUNK):
        session.execute(statement, rows[start:start + UPSERT_CHUNK])


def _array(texts: np.ndarray) -> str:
    """A PostgreSQL array literal of already-formatted elements."""
    return "{" + ",".join(texts.tolist()) + "}"


def _floats(values: np.ndarray, integer: bool = False) -> str:
    formatted = (np.nan_to_num(values).astype("int64") if integer else values).astype(str)
    return _array(np.where(np.isnan(values), "NULL", formatted))


def scores_of(session: Session, account_id: int, subscriber_ids: Iterable[int]) -> dict[int, SubscriberScore]:
    """Subscriber id -> its scores row, for those of the account that have one."""
    ids = list(subscriber_ids)
    if not ids:
        return {}
    return {row.subscriber_id: row for row in session.scalars(select(SubscriberScore).where(
        SubscriberScore.account_id == account_id, SubscriberScore.subscriber_id.in_(ids)))}


def as_public(row: SubscriberScore | None) -> dict[str, Any] | None:
    """The API's ``scores`` object: ``model_id`` is the churn model's (the one a
    ``churn_risk`` condition reads), ``model_ids`` names every kind's."""
    if row is None:
        return None
    ids = {kind: getattr(row, column) for kind, column in MODEL_ID_COLUMNS.items()}
    return {"churn_risk": row.churn_risk, "engagement": row.engagement, "best_send_hour": row.best_send_hour,
            "scored_at": row.scored_at, "model_id": ids["churn"], "model_ids": ids}


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number

