"""``/api/v1/templates``: reusable email content, scoped to the calling account."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import Select
from sqlalchemy.orm import Session

from content.render import render_email, subscriber_context
from models import Subscriber, Template, utcnow
from sequencing.lifecycle import active_sequences_using, templates_in_use
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.email_templates.schemas import (
    PreviewRequestSchema,
    PreviewSchema,
    TemplateInSchema,
    TemplateReplaceSchema,
    TemplateSchema,
)
from web.pagination import SQLPage
from web.preflight import check
from web.resource import get_owned_or_404, newest_owned

blp = Blueprint("email_templates", __name__, url_prefix="/api/v1/templates", description="Email templates")


def _template(template_id: int) -> Template:
    """The caller's template; another account's id is not found (404), never forbidden."""
    return get_owned_or_404(Template, template_id, "Template not found.")


@blp.route("")
class Templates(MethodView):
    @account_required
    @blp.arguments(TemplateInSchema)
    @blp.response(201, TemplateSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> Template:
        """Create a template (Jinja2: ``{{ subscriber.first_name }}``)."""
        session = get_db()
        now = utcnow()
        template = Template(account_id=current_account_id(), created_at=now, updated_at=now, **data)
        session.add(template)
        session.commit()
        return template

    @account_required
    @blp.response(200, TemplateSchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self) -> Select[Any]:
        """The account's templates, newest first."""
        return newest_owned(Template)


@blp.route("/<int:template_id>")
class TemplateById(MethodView):
    @account_required
    @blp.response(200, TemplateSchema)
    @blp.doc(security=SECURITY)
    def get(self, template_id: int) -> Template:
        """One template."""
        return _template(template_id)

    @account_required
    @blp.arguments(TemplateReplaceSchema)
    @blp.response(200, TemplateSchema)
    @blp.doc(security=SECURITY)
    def put(self, data: dict[str, Any], template_id: int) -> Template:
        """Replace the template; sequences using it send the new content from now on.
        Every active sequence using it must still pass the pre-flight check (422
        naming each failing email as ``sequences.<id>.steps.<position>``, nothing
        changed) unless ``override_preflight`` is true."""
        override = data.pop("override_preflight")
        template = _template(template_id)
        session = get_db()
        for key, value in data.items():
            setattr(template, key, value)
        template.updated_at = utcnow()
        session.flush()
        if not override:
            _refuse_failing_users(session, template)
        session.commit()
        return template

    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, template_id: int) -> None:
        """Delete the template; 409 while a sequence's email step uses it."""
        template = _template(template_id)
        session = get_db()
        users = templates_in_use(session, current_account_id(), template.id)
        if users:
            abort(409, message=f"Template is used by sequence(s) {', '.join(map(str, users))}; change them first.")
        session.delete(template)
        session.commit()


def _refuse_failing_users(session: Session, template: Template) -> None:
    """422 (rolled back) when an active sequence using the template fails the check
    with its new content: replacing it would otherwise put that content live
    without the check activation demands."""
    failing: dict[str, list[str]] = {}
    for sequence in active_sequences_using(session, template.account_id, template.id):
        # Only the emails built on this template: the rest did not change.
        report = check(session, sequence, template_id=template.id)
        failing.update({f"sequences.{sequence.id}.{place}": reasons for place, reasons in report.failing().items()})
    if failing:
        session.rollback()
        abort(422, message="An active sequence using this template would fail the pre-flight check; "
                           "send override_preflight: true to replace it anyway.",
              errors={"preflight": failing})


@blp.route("/<int:template_id>/preview")
class Preview(MethodView):
    @account_required
    @blp.arguments(PreviewRequestSchema)
    @blp.response(200, PreviewSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any], template_id: int) -> dict[str, Any]:
        """Render the template for a stored subscriber (``subscriber_id``) or a sample
        (``subscriber``); nothing is sent or stored."""
        template = _template(template_id)
        if "subscriber_id" in data:
            subscriber = get_owned_or_404(Subscriber, data["subscriber_id"], "Subscriber not found.",
                                          errors={"json": {"subscriber_id": ["Subscriber not found."]}})
        else:
            subscriber = Subscriber(id=None, **data.get("subscriber", {"email": "preview@example.com"}))
        try:
            rendered = render_email(template.subject, template.html, template.text, subscriber_context(subscriber))
        except Exception as exc:  # user templates can fail in any way at render time (1/0, bad filters)
            message = f"The template does not render: {exc}"[:500]
            abort(422, message=message, errors={"json": {"template": [message]}})
        return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}
