"""Property-based fuzzing of every operation the served OpenAPI document describes:
whatever a client sends, authenticated as a tenant, the answer is never a 5xx. The
schema is read from the running app, so endpoints added later are covered too.

Bounded (``MAX_EXAMPLES`` valid and as many invalid requests per operation, no
deadline) so the module stays within a couple of minutes on a 2-core machine.
Operations are driven through schemathesis' strategies directly, because its lazy
pytest integration (``from_fixture``) does not run on pytest 9.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.conftest import ADMIN_TOKEN, Tenant

MAX_EXAMPLES = 25


@pytest.fixture(autouse=True)
def drop_enqueued_work(database: str) -> Iterator[None]:
    """Fuzzed imports and enrollments enqueue tasks for rows that the next test's
    truncation deletes; purge this run's queues so no later worker runs them."""
    yield
    from tasks.app import app as celery_app

    celery_app.control.purge()


def fuzz(operation: Any, headers: dict[str, str]) -> None:
    """Raise on the first request (shrunk by Hypothesis) that gets a server error."""
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(max_examples=2 * MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    run()


def summary(exc: BaseException) -> str:
    """The failure's kind and the curl line that reproduces it (schemathesis filters credentials)."""
    text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(("- ", "curl "))]
    return "\n".join(lines) or f"{type(exc).__name__}: {text[:1000]}"


def test_no_request_a_tenant_can_send_gets_a_server_error(app: Any, alice: Tenant) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the served schema should describe the API"
    # Account endpoints read X-API-Key first; admin endpoints read the bearer token.
    headers = {**alice.headers, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    failures: dict[str, str] = {}
    for operation in operations:
        try:
            fuzz(operation, headers)
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, not only the first
            failures[operation.label] = summary(exc)
    assert not failures, "\n\n".join(f"{label}\n{detail}" for label, detail in failures.items())
