"""One error shape for the whole API (flask-smorest's), including the failures no
view anticipated: a unique-constraint race becomes 409, anything else a logged 500
with no internals in the body."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


def _body(code: int, status: str, message: str) -> dict[str, object]:
    return {"code": code, "status": status, "message": message}


def init_app(app: Flask) -> None:
    @app.errorhandler(IntegrityError)
    def _conflict(exc: IntegrityError):  # type: ignore[no-untyped-def]
        log.info("integrity conflict", extra={"error": str(exc.orig)[:200]})
        return jsonify(_body(409, "Conflict", "The request conflicts with an existing resource.")), 409

    @app.errorhandler(OperationalError)
    def _database_down(exc: OperationalError):  # type: ignore[no-untyped-def]
        log.error("database unavailable", exc_info=exc)
        return jsonify(_body(503, "Service Unavailable", "The database is unavailable; try again shortly.")), 503

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        if isinstance(exc, HTTPException):
            return exc
        log.exception("unhandled error")
        return jsonify(_body(500, "Internal Server Error", "An unexpected error occurred.")), 500
