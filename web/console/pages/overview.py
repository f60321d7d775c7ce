"""The overview: what the account sent and how it went, and whether the pools are keeping up."""
from __future__ import annotations

from typing import Any

from flask import render_template

from web.console import bp
from web.console.session import signed_in


@bp.get("/")
@signed_in
def overview() -> Any:
    return render_template("console/overview.html", title="Overview")
