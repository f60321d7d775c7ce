"""flask-smorest pagination over a SQLAlchemy ``select``: COUNT plus OFFSET/LIMIT,
so a page never loads the whole collection."""
from __future__ import annotations

from typing import Any

from flask_smorest import Page
from sqlalchemy import Select, func, select

from web.db import get_db


# Past this, OFFSET overflows PostgreSQL's bigint; no real page is that deep.
MAX_OFFSET = 10**12


class SQLPage(Page):
    collection: Select[Any]

    @property
    def items(self) -> list[Any]:
        params = self.page_params
        if params.first_item > MAX_OFFSET:
            return []
        return self.fetch(self.collection.offset(params.first_item).limit(params.page_size))

    def fetch(self, statement: Select[Any]) -> list[Any]:
        """One page's items; ORM objects here, a subclass may return rows."""
        return list(get_db().scalars(statement))

    @property
    def item_count(self) -> int:
        query = select(func.count()).select_from(self.collection.order_by(None).subquery())
        return int(get_db().scalar(query) or 0)
