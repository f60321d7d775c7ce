"""Mapping the domain's errors onto the API's one error shape."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask_smorest import abort
from marshmallow import ValidationError, validate

from sequencing.errors import InvalidInputError, NotFoundError, PreflightFailedError, StateConflictError

MAX_ID = 2**31 - 1


@contextmanager
def domain_errors() -> Iterator[None]:
    """Not found -> 404, illegal state -> 409, invalid input -> 422 naming each field."""
    try:
        yield
    except NotFoundError as exc:
        abort(404, message=str(exc))
    except StateConflictError as exc:
        abort(409, message=str(exc))
    except InvalidInputError as exc:
        abort(422, message=str(exc), errors={"json": exc.errors})
    except PreflightFailedError as exc:
        failing = {f"steps.{e['position']}" + (f".variants.{e['variant']}" if e["variant"] else ""): e["reasons"]
                   for e in exc.report.emails if not e["passed"]}
        abort(422, message=str(exc), errors={"preflight": {**failing, **({"sender": exc.report.problems}
                                                                         if exc.report.problems else {})}})


def no_nul(value: str) -> None:
    """PostgreSQL cannot store NUL in text; refuse it here rather than fail at INSERT."""
    if "\x00" in value:
        raise ValidationError("Contains a forbidden control character.")


def text(max_len: int, min_len: int = 1) -> list[object]:
    return [validate.Length(min=min_len, max=max_len), no_nul]
