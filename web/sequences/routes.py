"""``/api/v1/email-sequences``: define, replace, delete and switch sequences on and off.

Views parse, call one domain function, commit, serialize; the rules live in
``sequencing.lifecycle`` and ``sequencing.steps``.
"""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields
from flask_smorest import Blueprint
from sqlalchemy import Select

from models import Sequence, utcnow
from sequencing import lifecycle
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.pagination import SQLPage
from web.preflight import OverrideSchema, check
from web.resource import newest_owned
from web.sequences.domain_errors import domain_errors
from web.sequences.schemas import (
    SequenceDetailSchema,
    SequenceInSchema,
    SequenceQuerySchema,
    SequenceSchema,
    dump_steps,
)

class PreflightSchema(Schema):
    passed = fields.Boolean()
    score = fields.Float()
    fail_score = fields.Float()
    emails = fields.List(fields.Dict())
    problems = fields.List(fields.String(), metadata={"description": "Each blocks activation."})
    notices = fields.List(fields.String(), metadata={"description": "Worth knowing; block nothing."})


blp = Blueprint("email_sequences", __name__, url_prefix="/api/v1/email-sequences",
                description="Sequences (drip campaigns) and their steps")


def _detail(sequence: Sequence) -> dict[str, Any]:
    """The sequence's fields plus enrollment counts, ready for SequenceDetailSchema."""
    body = {name: getattr(sequence, name) for name in SequenceSchema().fields if name != "steps"}
    return body | {"steps": dump_steps(sequence), "enrollments": lifecycle.count_enrollments(get_db(), sequence.id)}


@blp.route("")
class Sequences(MethodView):
    @account_required
    @blp.arguments(SequenceInSchema)
    @blp.response(201, SequenceDetailSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a draft sequence; every step is validated (422 names e.g. ``steps.2.seconds``)."""
        session = get_db()
        with domain_errors:
            sequence = lifecycle.create_sequence(session, current_account_id(), data, utcnow())
        session.commit()
        return _detail(sequence)

    @account_required
    @blp.arguments(SequenceQuerySchema, location="query")
    @blp.response(200, SequenceSchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any]) -> Select[Any]:
        """The account's sequences, newest first."""
        return newest_owned(Sequence, query)


@blp.route("/<int:sequence_id>")
class SequenceById(MethodView):
    @account_required
    @blp.response(200, SequenceDetailSchema)
    @blp.doc(security=SECURITY)
    def get(self, sequence_id: int) -> dict[str, Any]:
        """One sequence with its steps and enrollment counts by status."""
        with domain_errors:
            sequence = lifecycle.get_sequence(get_db(), current_account_id(), sequence_id)
        return _detail(sequence)

    @account_required
    @blp.arguments(SequenceInSchema)
    @blp.response(200, SequenceDetailSchema)
    @blp.doc(security=SECURITY)
    def put(self, data: dict[str, Any], sequence_id: int) -> dict[str, Any]:
        """Replace the sequence. Running enrollments keep their position index, clamped
        to the new last step; ``version`` goes up by one. An active sequence's new
        content must pass the pre-flight check (422 with its reasons, nothing
        changed) unless ``override_preflight`` is true."""
        session = get_db()
        with domain_errors:
            sequence = lifecycle.update_sequence(session, current_account_id(), sequence_id, data, utcnow(),
                                                 preflight=lambda seq: check(session, seq),
                                                 override_preflight=data.get("override_preflight", False))
        session.commit()
        return _detail(sequence)

    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, sequence_id: int) -> None:
        """Delete the sequence, its steps and enrollments; the message log keeps what was sent."""
        session = get_db()
        with domain_errors:
            lifecycle.delete_sequence(session, current_account_id(), sequence_id)
        session.commit()


def _transition(action: str, sequence_id: int, override_preflight: bool = False) -> dict[str, Any]:
    session = get_db()
    with domain_errors:
        sequence = lifecycle.transition(
            session, current_account_id(), sequence_id, action, utcnow(),
            preflight=lambda seq: check(session, seq), override_preflight=override_preflight)
    session.commit()
    return _detail(sequence)


@blp.route("/<int:sequence_id>/activate")
class Activate(MethodView):
    @account_required
    @blp.arguments(OverrideSchema)
    @blp.response(200, SequenceDetailSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any], sequence_id: int) -> dict[str, Any]:
        """draft or paused -> active (409 otherwise). Steps are re-checked and the
        pre-flight content check must pass (422 with its reasons) unless
        ``override_preflight`` is true."""
        return _transition("activate", sequence_id, data["override_preflight"])


@blp.route("/<int:sequence_id>/preflight")
class PreflightReport(MethodView):
    @account_required
    @blp.response(200, PreflightSchema)
    @blp.doc(security=SECURITY)
    def get(self, sequence_id: int) -> dict[str, Any]:
        """The content score and reasons for every email of the sequence, as activation judges them."""
        session = get_db()
        with domain_errors:
            sequence = lifecycle.get_sequence(session, current_account_id(), sequence_id)
        return check(session, sequence).as_dict()


@blp.route("/<int:sequence_id>/pause")
class Pause(MethodView):
    @account_required
    @blp.response(200, SequenceDetailSchema)
    @blp.doc(security=SECURITY)
    def post(self, sequence_id: int) -> dict[str, Any]:
        """active -> paused; its running enrollments stop until resumed."""
        return _transition("pause", sequence_id)


@blp.route("/<int:sequence_id>/resume")
class Resume(MethodView):
    @account_required
    @blp.arguments(OverrideSchema)
    @blp.response(200, SequenceDetailSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any], sequence_id: int) -> dict[str, Any]:
        """paused -> active; paused enrollments continue, overdue ones at once. The
        pre-flight check must pass, as for activation, unless ``override_preflight``
        is true (a sequence activated with the override needs it again)."""
        return _transition("resume", sequence_id, data["override_preflight"])
