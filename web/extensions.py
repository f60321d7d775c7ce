"""Flask extensions, created unbound and initialised by the app factory."""
from __future__ import annotations

from typing import Any

from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_smorest import Api
from werkzeug.exceptions import HTTPException


def _field_paths(errors: Any, prefix: str = "") -> list[str]:
    """Dotted names of the fields in a marshmallow error tree (location level dropped)."""
    if not isinstance(errors, dict):
        return [prefix] if prefix else []
    paths: list[str] = []
    for key, value in errors.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        paths.extend(_field_paths(value, name))
    return paths


class PlatformApi(Api):
    """flask-smorest's Api, with a message on every error: validation failures say
    which fields were wrong, other errors fall back to the status's description."""

    def handle_http_exception(self, error: HTTPException) -> Any:
        payload, code, headers = super().handle_http_exception(error)
        if "message" not in payload:
            fields: list[str] = []
            notes: list[str] = []
            for location in (payload.get("errors") or {}).values():
                fields.extend(_field_paths(location))
                if isinstance(location, list):
                    notes.extend(str(n) for n in location)
            if fields and code in (400, 422):
                payload["message"] = "Invalid value for: " + ", ".join(sorted(set(fields)))
            elif notes:
                payload["message"] = " ".join(notes)
            else:
                payload["message"] = error.description or error.name
        return payload, code, headers


api = PlatformApi()
jwt = JWTManager()
limiter = Limiter(key_func=get_remote_address, headers_enabled=True)
