"""``/api/v1/email-sequences/{id}/subscribers`` and ``.../enrollments``: putting
subscribers into a sequence and seeing where each one is."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Select, select

from models import Enrollment, Subscriber, utcnow
from sequencing import lifecycle
from sequencing.enroll import enroll_subscribers
from sequencing.segment_enroll import enroll_segment
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.enqueue import enqueue_stored
from web.pagination import SQLPage
from web.sequences.domain_errors import domain_errors
from web.sequences.schemas import (
    EnrollmentQuerySchema,
    EnrollmentSchema,
    EnrollRequestSchema,
    EnrollResultSchema,
)

blp = Blueprint("enrollments", __name__, url_prefix="/api/v1/email-sequences",
                description="Enrolling subscribers into sequences")


class RowPage(SQLPage):
    """Pages of rows (enrollment columns plus the subscriber's email), not ORM objects."""

    def fetch(self, statement: Select[Any]) -> list[Any]:
        return [row._mapping for row in get_db().execute(statement)]


@blp.route("/<int:sequence_id>/subscribers")
class Enroll(MethodView):
    @account_required
    @blp.arguments(EnrollRequestSchema)
    @blp.response(202, EnrollResultSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any], sequence_id: int) -> dict[str, int | None]:
        """Enroll up to 10,000 subscribers by id or email (unknown emails become
        subscribers), or a segment's active members: up to 100,000 at once, a larger
        segment by a job (`job_id`, polled at `GET /jobs/{id}`). Safe to retry:
        nobody is enrolled twice. 409 unless the sequence is active."""
        session = get_db()
        job_id = None
        with domain_errors:
            if data.get("segment_id") is not None:
                outcome = enroll_segment(session, current_account_id(), sequence_id, data["segment_id"], utcnow())
                enrolled, skipped, job_id = outcome.enrolled, outcome.skipped, outcome.job_id
            else:
                enrolled, skipped = enroll_subscribers(
                    session, current_account_id(), sequence_id,
                    subscriber_ids=data["subscriber_ids"], emails=data["emails"], now=utcnow(),
                )
        session.commit()
        if job_id is not None:
            from tasks.audience import enroll_segment as enroll_segment_task  # the Celery app loads only when needed
            enqueue_stored(enroll_segment_task, (job_id,), "segment enrollment", "the tick will resume it",
                           job_id=job_id)
            return {"enrolled": enrolled, "skipped": skipped, "job_id": job_id}
        return {"enrolled": enrolled, "skipped": skipped}


@blp.route("/<int:sequence_id>/enrollments")
class Enrollments(MethodView):
    @account_required
    @blp.arguments(EnrollmentQuerySchema, location="query")
    @blp.response(200, EnrollmentSchema(many=True))
    @blp.paginate(RowPage)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any], sequence_id: int) -> Select[Any]:
        """Where each enrolled subscriber is, oldest enrollment first."""
        with domain_errors:
            sequence = lifecycle.get_sequence(get_db(), current_account_id(), sequence_id)
        statement = (
            select(Enrollment.id, Enrollment.subscriber_id, Subscriber.email, Enrollment.status, Enrollment.run,
                   Enrollment.current_step, Enrollment.next_run_at, Enrollment.enrolled_at,
                   Enrollment.completed_at, Enrollment.exit_reason, Enrollment.crashes, Enrollment.error,
                   Enrollment.held_out)
            .join(Subscriber, Subscriber.id == Enrollment.subscriber_id)
            .where(Enrollment.sequence_id == sequence.id)
        )
        if query.get("status"):
            statement = statement.where(Enrollment.status == query["status"])
        return statement.order_by(Enrollment.id)
