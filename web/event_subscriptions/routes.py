"""Event subscriptions: create (the secret shown once), list, read, change, delete,
each one's batches, and sending a failed batch again."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Select

from core.errors import InvalidFieldError
from models import EventDelivery, EventSubscription, utcnow
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.enqueue import enqueue_stored
from web.event_subscriptions.schemas import (
    EventDeliverySchema,
    EventSubscriptionCreatedSchema,
    EventSubscriptionCreateSchema,
    EventSubscriptionSchema,
    EventSubscriptionUpdateSchema,
)
from web.pagination import SQLPage
from web.resource import On, field_errors, map_errors
from webhooks import event_subscriptions as subs

blp = Blueprint("event_subscriptions", __name__, url_prefix="/api/v1/event-subscriptions",
                description="Event subscriptions: signed webhooks for what happens")

_errors = map_errors(
    On(InvalidFieldError, 422, errors=field_errors("json")),
    On(subs.SubscriptionNotFoundError, 404),
    On(subs.DeliveryNotFoundError, 404),
    On(subs.TooManySubscriptionsError, 409),
    On(subs.NotFailedError, 409),
)


def _allow_private() -> bool:
    return bool(current_app.config["ESEQ_SETTINGS"].webhook_allow_private)


def _shown(rows: list[EventSubscription], secret: str | None = None) -> list[dict[str, Any]]:
    counts = subs.delivery_counts(get_db(), [r.id for r in rows])
    shown = [{name: getattr(r, name) for name in ("id", "url", "events", "paused", "created_at", "updated_at")}
             | {"deliveries": counts[r.id]} for r in rows]
    if secret is not None:
        shown[0]["secret"] = secret
    return shown


class _ShownPage(SQLPage):
    def fetch(self, statement: Select[Any]) -> list[Any]:
        return _shown(super().fetch(statement))


@blp.route("")
class EventSubscriptions(MethodView):
    @account_required
    @blp.arguments(EventSubscriptionCreateSchema)
    @blp.response(201, EventSubscriptionCreatedSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Subscribe a URL to event types; the answer carries the signing secret, shown only this once."""
        session = get_db()
        with _errors:
            row, secret = subs.create_subscription(session, current_account_id(), data, _allow_private(), utcnow())
        session.commit()
        return _shown([row], secret)[0]

    @account_required
    @blp.response(200, EventSubscriptionSchema(many=True))
    @blp.paginate(_ShownPage)
    @blp.doc(security=SECURITY)
    def get(self) -> Select[Any]:
        """The account's subscriptions, newest first, with their batches counted by status."""
        return subs.list_subscriptions(current_account_id())


@blp.route("/<int:subscription_id>")
class EventSubscriptionById(MethodView):
    @account_required
    @blp.response(200, EventSubscriptionSchema)
    @blp.doc(security=SECURITY)
    def get(self, subscription_id: int) -> dict[str, Any]:
        with _errors:
            return _shown([subs.get_subscription(get_db(), current_account_id(), subscription_id)])[0]

    @account_required
    @blp.arguments(EventSubscriptionUpdateSchema)
    @blp.response(200, EventSubscriptionSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], subscription_id: int) -> dict[str, Any]:
        """Change the URL, event types or secret, or pause (``paused``) and resume."""
        session = get_db()
        with _errors:
            row = subs.update_subscription(session, current_account_id(), subscription_id, data, _allow_private(),
                                           utcnow())
        session.commit()
        return _shown([row])[0]

    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, subscription_id: int) -> None:
        """Stop delivering; batches not yet delivered are dropped with it."""
        session = get_db()
        with _errors:
            subs.delete_subscription(session, current_account_id(), subscription_id)
        session.commit()


@blp.route("/<int:subscription_id>/deliveries")
class EventDeliveries(MethodView):
    @account_required
    @blp.response(200, EventDeliverySchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self, subscription_id: int) -> Select[Any]:
        """The subscription's batches, newest first: status, attempts, last error, event ids."""
        with _errors:
            subs.get_subscription(get_db(), current_account_id(), subscription_id)
        return subs.deliveries_query(current_account_id(), subscription_id)


@blp.route("/<int:subscription_id>/deliveries/<int:delivery_id>/retry")
class EventDeliveryRetry(MethodView):
    @account_required
    @blp.response(202, EventDeliverySchema)
    @blp.doc(security=SECURITY)
    def post(self, subscription_id: int, delivery_id: int) -> EventDelivery:
        """Send a failed batch again (the same events and ids), with its attempts reset; 409 unless failed."""
        session = get_db()
        lease = timedelta(seconds=current_app.config["ESEQ_SETTINGS"].lease_seconds)
        with _errors:
            row = subs.retry_delivery(session, current_account_id(), subscription_id, delivery_id, utcnow(), lease)
        session.commit()
        from tasks.webhooks import deliver_events  # the Celery app loads only when first needed

        enqueue_stored(deliver_events, ([row.id],), "event delivery retry", "the feed's sweep will send it",
                       delivery_id=row.id)
        return row
