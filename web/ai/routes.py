"""``/api/v1/ai/drafts``: ask for a draft (202, drafted on the ai pool), read and list
the account's drafts, apply a ready one once. Views parse and call one function of
``web.ai.actions`` (shared with the console), which commits and enqueues after the commit.
"""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Select

from models import AiDraft
from web.ai.actions import apply_ready_draft, ask_for_draft
from web.ai.schemas import AppliedSchema, DraftAcceptedSchema, DraftCreateSchema, DraftQuerySchema, DraftSchema
from web.auth import SECURITY, account_required
from web.pagination import SQLPage
from web.resource import get_owned_or_404, newest_owned
from web.sequences.domain_errors import domain_errors

blp = Blueprint("ai_drafts", __name__, url_prefix="/api/v1/ai",
                description="AI drafts: whole sequences, subject lines, rewrites and fixes, applied by a person")


@blp.route("/drafts")
class Drafts(MethodView):
    @account_required
    @blp.arguments(DraftCreateSchema)
    @blp.response(202, DraftAcceptedSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Queue a draft; poll ``GET /ai/drafts/{id}``. 422 names the field
        (``brief.emails``, ``step``); another account's sequence is 404. Without a
        model server only ``kind: sequence`` drafts (from the built-in blueprints)."""
        with domain_errors:
            draft = ask_for_draft(data)
        return {"id": draft.id, "status": draft.status}

    @account_required
    @blp.arguments(DraftQuerySchema, location="query")
    @blp.response(200, DraftSchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any]) -> Select[Any]:
        """The account's drafts, newest first (filter by ``kind``, ``status``)."""
        return newest_owned(AiDraft, query)


@blp.route("/drafts/<int:draft_id>")
class DraftById(MethodView):
    @account_required
    @blp.response(200, DraftSchema)
    @blp.doc(security=SECURITY)
    def get(self, draft_id: int) -> AiDraft:
        """A draft's status, result, pre-flight report, usage and model; another account's is 404."""
        return get_owned_or_404(AiDraft, draft_id, f"Draft {draft_id} not found.")


@blp.route("/drafts/<int:draft_id>/apply")
class ApplyDraft(MethodView):
    @account_required
    @blp.response(201, AppliedSchema)
    @blp.doc(security=SECURITY)
    def post(self, draft_id: int) -> dict[str, Any]:
        """Apply a ready draft once: a ``sequence`` draft becomes a new sequence in status
        ``draft``; subject lines become new variants of the step; a rewrite or fix replaces
        the step's content (on an active sequence only if it passes the pre-flight, as a
        PUT must). 409 if the draft is not ready, was applied, or its sequence changed."""
        with domain_errors:
            return apply_ready_draft(draft_id)
