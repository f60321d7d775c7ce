"""``/api/v1/segments``: create, list, read (with the member count), change,
delete, list members (pages, or all of them as CSV), and a live count of an
unsaved filter for a filter builder.

Views parse, call one ``audience.segments`` function, commit, serialize.
"""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Select

from audience import segments as domain
from audience.errors import InvalidFilterError, SegmentNotFoundError
from models import Segment, utcnow
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.pagination import SQLPage
from web.resource import On, errors_attribute, map_errors
from web.segments.members_csv import CSV_COLUMNS, members_csv
from web.segments.schemas import (
    SegmentCountRequestSchema,
    SegmentCountSchema,
    SegmentMembersQuerySchema,
    SavedSegmentCreateSchema,
    SavedSegmentDetailSchema,
    SavedSegmentSchema,
    SavedSegmentUpdateSchema,
)
from web.subscribers.schemas import SubscriberSchema

blp = Blueprint("segments", __name__, url_prefix="/api/v1/segments", description="Segments: saved audience filters")

_errors = map_errors(
    On(SegmentNotFoundError, 404),
    On(InvalidFilterError, 422, errors=errors_attribute("json")),
)


def _detail(segment: Segment) -> dict[str, Any]:
    count = domain.count_members(get_db(), segment.account_id, segment.filter, utcnow())
    return {name: getattr(segment, name) for name in SavedSegmentSchema().fields} | {"count": count}


@blp.route("")
class Segments(MethodView):
    @account_required
    @blp.arguments(SavedSegmentCreateSchema)
    @blp.response(201, SavedSegmentDetailSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Save a filter as a segment; the answer has its member count now."""
        session = get_db()
        with _errors:
            segment = domain.create_segment(session, current_account_id(), data["name"], data["filter"], utcnow())
        session.commit()
        return _detail(segment)

    @account_required
    @blp.response(200, SavedSegmentSchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self) -> Select[Any]:
        """The account's segments, newest first (without counts: ask one segment for its count)."""
        return domain.list_segments(current_account_id())


@blp.route("/count")
class Count(MethodView):
    @account_required
    @blp.arguments(SegmentCountRequestSchema)
    @blp.response(200, SegmentCountSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> dict[str, int]:
        """How many subscribers a filter matches now, without saving it (for a filter builder)."""
        with _errors:
            node = domain.validate_filter(data["filter"])
        return {"count": domain.count_members(get_db(), current_account_id(), node, utcnow())}


@blp.route("/<int:segment_id>")
class SegmentById(MethodView):
    @account_required
    @blp.response(200, SavedSegmentDetailSchema)
    @blp.doc(security=SECURITY)
    def get(self, segment_id: int) -> dict[str, Any]:
        """One segment with its member count now."""
        with _errors:
            segment = domain.get_segment(get_db(), current_account_id(), segment_id)
        return _detail(segment)

    @account_required
    @blp.arguments(SavedSegmentUpdateSchema)
    @blp.response(200, SavedSegmentDetailSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], segment_id: int) -> dict[str, Any]:
        """Change the name and/or the filter."""
        session = get_db()
        with _errors:
            segment = domain.update_segment(session, current_account_id(), segment_id, data, utcnow())
        session.commit()
        return _detail(segment)

    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, segment_id: int) -> None:
        """Delete the segment (its subscribers stay)."""
        session = get_db()
        with _errors:
            domain.delete_segment(session, current_account_id(), segment_id)
        session.commit()


@blp.route("/<int:segment_id>/subscribers")
class Members(MethodView):
    @account_required
    @blp.arguments(SegmentMembersQuerySchema, location="query")
    @blp.response(200, SubscriberSchema(many=True))
    @blp.alt_response(200, success=True, content_type="text/csv",
                      description="Every member as CSV (`format=csv`): " + ",".join(CSV_COLUMNS))
    @blp.paginate()
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any], segment_id: int, pagination_parameters: Any) -> Any:
        """The segment's members now, newest first, in pages; with ``format=csv`` all of them."""
        with _errors:
            segment = domain.get_segment(get_db(), current_account_id(), segment_id)
        statement = domain.members(segment.account_id, segment.filter, utcnow())
        if query["format"] == "csv":
            pagination_parameters.item_count = 0
            return members_csv(segment)
        page = SQLPage(statement, page_params=pagination_parameters)
        pagination_parameters.item_count = page.item_count
        return page.items
