"""``/api/v1/ml``: train a model (202, trained on the ml pool), read and list the
account's models, make an earlier one live again, and read every subscriber's scores.

Views parse, call one domain function (``ml.registry``, ``ml.scoring``), commit, and
enqueue after the commit.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import Select, select

from ml import registry
from ml.errors import ModelNotFoundError, ModelStateError
from ml.scoring import as_public
from models import MlModel, Subscriber, SubscriberScore, utcnow
from tasks.ml import enqueue_training
from web.auth import SECURITY, account_required, current_account_id
from web.csv_response import csv_response
from web.db import get_db
from web.ml.schemas import (ModelAcceptedSchema, ModelCreateSchema, ModelQuerySchema, ModelSchema, ScoresQuerySchema,
                            SubscriberScoresSchema)
from web.pagination import SQLPage
from web.resource import On, get_owned_or_404, map_errors, newest_owned

blp = Blueprint("ml", __name__, url_prefix="/api/v1/ml",
                description="Churn risk, engagement and learned send times: models trained on the ml pool, scores")

_errors = map_errors(On(ModelNotFoundError, 404), On(ModelStateError, 409))
CSV_COLUMNS = ("email", "churn_risk", "engagement", "best_send_hour")
CSV_BATCH = 20_000


@blp.route("/models")
class Models(MethodView):
    @account_required
    @blp.arguments(ModelCreateSchema)
    @blp.response(202, ModelAcceptedSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Queue a training run of ``kind`` on history up to ``as_of`` (default now); poll
        ``GET /ml/models/{id}``. When it is ready the account is scored as of ``as_of``."""
        now = utcnow()
        as_of = data["as_of"] or now
        if as_of > now:
            abort(422, message="as_of is in the future.", errors={"json": {"as_of": ["Must not be in the future."]}})
        session = get_db()
        model = registry.queue_model(session, current_account_id(), data["kind"], as_of, now)
        session.commit()
        enqueue_training(model.id)
        return {"id": model.id, "status": model.status}

    @account_required
    @blp.arguments(ModelQuerySchema, location="query")
    @blp.response(200, ModelSchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any]) -> Select[Any]:
        """The account's models, newest first (filter by ``kind``, ``status``)."""
        return newest_owned(MlModel, query)


@blp.route("/models/<int:model_id>")
class ModelById(MethodView):
    @account_required
    @blp.response(200, ModelSchema)
    @blp.doc(security=SECURITY)
    def get(self, model_id: int) -> MlModel:
        """A model's status, metrics, training window and artifact hash; another account's is 404."""
        return get_owned_or_404(MlModel, model_id, f"Model {model_id} not found.")


@blp.route("/models/<int:model_id>/promote")
class PromoteModel(MethodView):
    @account_required
    @blp.response(200, ModelSchema)
    @blp.doc(security=SECURITY)
    def post(self, model_id: int) -> MlModel:
        """Make this ready model the live one of its kind (roll back to an earlier model,
        or forward again); the next scoring uses it. 409 unless it is ready."""
        session = get_db()
        with _errors:
            model = registry.promote(session, current_account_id(), model_id)
        session.commit()
        return model


class ScorePage(SQLPage):
    def fetch(self, statement: Select[Any]) -> list[Any]:
        return [_row(row) for row in get_db().execute(statement)]


# Columns, not ORM objects: a CSV of a million subscribers builds no entities.
_COLUMNS = (SubscriberScore.subscriber_id, Subscriber.email, SubscriberScore.churn_risk, SubscriberScore.engagement,
            SubscriberScore.best_send_hour, SubscriberScore.scored_at, SubscriberScore.churn_model_id,
            SubscriberScore.engagement_model_id, SubscriberScore.send_time_model_id)


def _row(row: Any) -> dict[str, Any]:
    return {"subscriber_id": row.subscriber_id, "email": row.email, **as_public(row)}


def _scores(account_id: int, columns: tuple[Any, ...] = _COLUMNS) -> Select[Any]:
    return (select(*columns)
            .join(Subscriber, Subscriber.id == SubscriberScore.subscriber_id)
            .where(SubscriberScore.account_id == account_id, Subscriber.account_id == account_id)
            .order_by(SubscriberScore.subscriber_id))


_CSV = (SubscriberScore.subscriber_id, Subscriber.email, SubscriberScore.churn_risk, SubscriberScore.engagement,
        SubscriberScore.best_send_hour)


def _all_rows(account_id: int) -> Iterator[Any]:
    """Every scored subscriber's CSV columns, from one query read through a
    server-side cursor ``CSV_BATCH`` rows at a time: one plan, one pass (a query per
    keyset page took 164 s for 1M scores, this 26 s: bench.scores_write)."""
    result = get_db().execute(_scores(account_id, _CSV), execution_options={"yield_per": CSV_BATCH})
    try:
        for row in result:
            yield row._mapping
    finally:
        result.close()


@blp.route("/scores")
class Scores(MethodView):
    @account_required
    @blp.arguments(ScoresQuerySchema, location="query")
    @blp.response(200, SubscriberScoresSchema(many=True))
    @blp.alt_response(200, success=True, content_type="text/csv",
                      description="Every scored subscriber as CSV (`format=csv`): "
                                  "email,churn_risk,engagement,best_send_hour")
    @blp.paginate()
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any], pagination_parameters: Any) -> Any:
        """Each subscriber's latest scores, in pages by subscriber id; with ``format=csv``
        all of them, without pages."""
        account_id = current_account_id()
        if query["format"] == "csv":
            pagination_parameters.item_count = 0
            return csv_response(CSV_COLUMNS, _all_rows(account_id), "scores.csv")
        page = ScorePage(_scores(account_id), page_params=pagination_parameters)
        return page.items
