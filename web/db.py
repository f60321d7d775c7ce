"""One database session per request, closed (and rolled back if uncommitted) at teardown."""
from __future__ import annotations

from flask import Flask, g
from sqlalchemy.orm import Session

from models import db


def get_db() -> Session:
    """The request's session, opened on first use."""
    if "db" not in g:
        g.db = db.new_session()
    return g.db


def init_app(app: Flask) -> None:
    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db", None)
        if session is not None:
            session.close()
