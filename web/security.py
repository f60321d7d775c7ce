"""Security headers on every response. The API serves JSON only, so its CSP forbids
everything; the docs page gets the script and style sources Swagger UI needs."""
from __future__ import annotations

from flask import Flask, Response, jsonify, request

_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; frame-ancestors 'none'"
)


def _has_nul() -> bool:
    if any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        return True
    if request.content_length and request.mimetype == "application/json":
        return "\\u0000" in request.get_data(as_text=True, cache=True)
    return False


def init_input_guard(app: Flask) -> None:
    """NUL characters cannot be stored by PostgreSQL; refuse them at the door with
    a 422 rather than deep in a query with a 500."""

    @app.before_request
    def _refuse_nul():  # type: ignore[no-untyped-def]
        if request.path.startswith("/api/") and _has_nul():
            return jsonify({"code": 422, "status": "Unprocessable Entity",
                            "message": "NUL (\\u0000) characters are not allowed in any field."}), 422
        return None


def init_security_headers(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if request.path.startswith("/docs"):
            response.headers.setdefault("Content-Security-Policy", _DOCS_CSP)
        else:
            response.headers.setdefault("Content-Security-Policy", _API_CSP)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
