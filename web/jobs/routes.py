"""``/api/v1/jobs``: the account's background jobs (imports), for polling."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Select

from models import Job
from web.auth import SECURITY, account_required
from web.jobs.schemas import JobQuerySchema, JobSchema
from web.pagination import SQLPage
from web.resource import get_owned_or_404, newest_owned

blp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs", description="Background jobs (imports)")


@blp.route("")
class Jobs(MethodView):
    @account_required
    @blp.arguments(JobQuerySchema, location="query")
    @blp.response(200, JobSchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any]) -> Select[Any]:
        """The account's jobs, newest first."""
        return newest_owned(Job, query)


@blp.route("/<int:job_id>")
class JobById(MethodView):
    @account_required
    @blp.response(200, JobSchema)
    @blp.doc(security=SECURITY)
    def get(self, job_id: int) -> Job:
        """A job's status, progress, counts and first errors; another account's job is 404."""
        return get_owned_or_404(Job, job_id, f"Job {job_id} not found.")
