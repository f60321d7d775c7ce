"""The delivery log."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Select

from delivery.message_log import message_log
from web.auth import SECURITY, account_required, current_account_id
from web.messages.schemas import MessageQuerySchema, MessageSchema
from web.pagination import SQLPage

blp = Blueprint("messages", __name__, url_prefix="/api/v1/messages", description="Delivery log")


@blp.route("")
class Messages(MethodView):
    @account_required
    @blp.arguments(MessageQuerySchema, location="query")
    @blp.response(200, MessageSchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any]) -> Select[Any]:
        """Messages newest first, filtered by sequence, subscriber, broadcast, status,
        part of the recipient's address, or when they were created."""
        return message_log(current_account_id(), **query)
