"""``/api/v1/jobs``: the account's background jobs (imports), for polling."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import Select, select

from models import Job
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.jobs.schemas import JobQuerySchema, JobSchema
from web.pagination import SQLPage

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
        statement = select(Job).where(Job.account_id == current_account_id())
        if query.get("status"):
            statement = statement.where(Job.status == query["status"])
        return statement.order_by(Job.id.desc())


@blp.route("/<int:job_id>")
class JobById(MethodView):
    @account_required
    @blp.response(200, JobSchema)
    @blp.doc(security=SECURITY)
    def get(self, job_id: int) -> Job:
        """A job's status, progress, counts and first errors; another account's job is 404."""
        job = get_db().scalar(select(Job).where(Job.id == job_id, Job.account_id == current_account_id()))
        if job is None:
            abort(404, message=f"Job {job_id} not found.")
        return job
