"""Security headers on every response. The API serves JSON only, so its CSP forbids
everything; the docs page gets the script and style sources Swagger UI needs."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; frame-ancestors 'none'"
)


def _nul_paths(value: Any, path: str) -> list[str]:
    """Dotted paths of the keys and strings in a JSON value that contain NUL."""
    if isinstance(value, str):
        return [path or "body"] if "\x00" in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            found += [name] if "\x00" in str(key) else _nul_paths(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _nul_paths(item, f"{path}.{index}" if path else str(index))
    return found


def _nul_errors() -> dict[str, dict[str, list[str]]]:
    message = ["NUL characters are not allowed."]
    errors: dict[str, dict[str, list[str]]] = {}
    query = [k for k, v in request.args.items(multi=True) if "\x00" in k or "\x00" in v]
    if query:
        errors["query"] = {name.replace("\x00", "\\u0000"): message for name in query}
    # Every JSON media type webargs parses (application/*+json too), with or without a
    # Content-Length (a chunked body has none; web.limits caps its size all the same).
    if request.is_json and b"\\u0000" in request.get_data(cache=True):  # ASCII: no need to decode the body
        try:
            paths = _nul_paths(request.get_json(silent=True, cache=True), "")
        except RecursionError:  # nested past the parser's limit: the view's own parser refuses it (4xx)
            paths = []
        if paths:
            errors["json"] = {p.replace("\x00", "\\u0000"): message for p in paths}
    return errors


def init_input_guard(app: Flask) -> None:
    """NUL characters cannot be stored by PostgreSQL; refuse them at the door with
    a 422 rather than deep in a query with a 500."""

    @app.before_request
    def _refuse_nul():  # type: ignore[no-untyped-def]
        if not request.path.startswith("/api/"):
            return None
        errors = _nul_errors()
        if not errors:
            return None
        fields = ", ".join(sorted(name for where in errors.values() for name in where))
        return jsonify({"code": 422, "status": "Unprocessable Entity", "errors": errors,
                        "message": f"NUL characters are not allowed: {fields}"}), 422


def init_security_headers(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if request.path.startswith("/docs"):
            response.headers.setdefault("Content-Security-Policy", _DOCS_CSP)
        else:
            response.headers.setdefault("Content-Security-Policy", _API_CSP)
        # A page made to be embedded anywhere (the subscribe form) says so in its own
        # CSP; nothing else may be framed at all.
        if "frame-ancestors *" not in response.headers["Content-Security-Policy"]:
            response.headers.setdefault("X-Frame-Options", "DENY")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
