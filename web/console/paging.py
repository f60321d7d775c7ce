"""Long lists in pages: COUNT plus OFFSET/LIMIT over a ``select`` (as the API's
pagination), the page number read from ``?page=`` and kept with the other filters."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request, url_for
from sqlalchemy import Select, func, select

from web.db import get_db

PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    items: list[Any]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    def url(self, number: int) -> str:
        """This page's URL, with its filters, at another page number."""
        args = {k: v for k, v in request.args.items() if k != "page"}
        return url_for(request.endpoint or "console.overview", **(request.view_args or {}), **args, page=number)


def page_number() -> int:
    """``?page=``, 1 when absent or not a sensible number."""
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 10**6 else 1


def paginate(statement: Select[Any], size: int = PAGE_SIZE, scalars: bool = True) -> Page:
    """One page of ``statement`` (ORM objects with ``scalars``, else rows) and the total."""
    number = page_number()
    db = get_db()
    total = int(db.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0)
    window = statement.offset((number - 1) * size).limit(size)
    items = list(db.scalars(window)) if scalars else list(db.execute(window))
    return Page(items=items, number=number, size=size, total=total)
