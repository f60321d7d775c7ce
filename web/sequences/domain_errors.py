"""Which of sequencing's errors mean which status, for every sequence view."""
from __future__ import annotations

from sequencing.errors import InvalidInputError, NotFoundError, PreflightFailedError, StateConflictError
from web.resource import Errors, On, errors_attribute, map_errors


def _preflight_errors(exc: PreflightFailedError) -> Errors:
    """Each failing email by its place (``steps.2.variants.B``) with its reasons, plus
    the sender's problems; beside it the whole report as GET .../preflight gives it
    (score, fail_score, every email's score, reasons and notices), so a client need
    not ask again to learn how far off the sequence is."""
    return {"preflight": {**exc.report.failing(), **({"sender": exc.report.problems} if exc.report.problems else {})},
            "preflight_report": exc.report.as_dict()}


# Not found -> 404, illegal state -> 409, invalid input -> 422 naming each field.
domain_errors = map_errors(
    On(NotFoundError, 404),
    On(StateConflictError, 409),
    On(InvalidInputError, 422, errors=errors_attribute("json")),
    On(PreflightFailedError, 422, errors=_preflight_errors),
)
