"""``/api/v1/topics``: an account's subscription topics, and adding subscribers to one."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Select

from audience import topics as domain
from core.errors import InvalidFieldError
from models import Topic, utcnow
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.pagination import SQLPage
from web.resource import On, field_errors, map_errors, newest_owned
from web.topics.schemas import (
    TopicCreateSchema,
    TopicDetailSchema,
    TopicMembersAddedSchema,
    TopicMembersSchema,
    TopicSchema,
    TopicUpdateSchema,
)

blp = Blueprint("topics", __name__, url_prefix="/api/v1/topics", description="Subscription topics")

_errors = map_errors(
    On(domain.TopicNotFoundError, 404),
    On(domain.DuplicateTopicError, 409, errors=field_errors("json", "key")),
    On(domain.TopicInUseError, 409),
    On(InvalidFieldError, 422, errors=field_errors("json")),
)


@blp.route("")
class Topics(MethodView):
    @account_required
    @blp.arguments(TopicCreateSchema)
    @blp.response(201, TopicSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> Topic:
        """A new topic; 409 if the account already has its key."""
        session = get_db()
        with _errors:
            topic = domain.create_topic(session, current_account_id(), data, utcnow())
        session.commit()
        return topic

    @account_required
    @blp.response(200, TopicSchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self) -> Select[Any]:
        """The account's topics, newest first."""
        return newest_owned(Topic)


@blp.route("/<int:topic_id>")
class TopicById(MethodView):
    @account_required
    @blp.response(200, TopicDetailSchema)
    @blp.doc(security=SECURITY)
    def get(self, topic_id: int) -> dict[str, Any]:
        """The topic, with how many are in it (``subscribed``) and how many ``left``."""
        session = get_db()
        with _errors:
            topic = domain.get_topic(session, current_account_id(), topic_id)
        return {name: getattr(topic, name) for name in TopicSchema().fields} | {
            "members": domain.member_counts(session, current_account_id(), topic_id)}

    @account_required
    @blp.arguments(TopicUpdateSchema)
    @blp.response(200, TopicSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], topic_id: int) -> Topic:
        """Change the name (what readers see) or the description."""
        session = get_db()
        with _errors:
            topic = domain.update_topic(session, current_account_id(), topic_id, data)
        session.commit()
        return topic

    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, topic_id: int) -> None:
        """Delete the topic and its memberships; 409 while a sequence targets it."""
        session = get_db()
        with _errors:
            domain.delete_topic(session, current_account_id(), topic_id)
        session.commit()


@blp.route("/<int:topic_id>/subscribers")
class TopicMembers(MethodView):
    @account_required
    @blp.arguments(TopicMembersSchema)
    @blp.response(200, TopicMembersAddedSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any], topic_id: int) -> dict[str, int]:
        """Add existing subscribers (by id or address, up to 10,000) to the topic.
        Those who left it stay out: only they can rejoin (the subscribe form)."""
        session = get_db()
        with _errors:
            added, skipped = domain.add_many(session, current_account_id(), topic_id, data["subscriber_ids"],
                                             data["emails"], utcnow())
        session.commit()
        return {"added": added, "skipped": skipped}
