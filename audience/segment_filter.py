"""Temporary stand-in for the segments' filter compiler (replaced at merge by the
real module of the same name): ``{"tag"}`` and ``{"attribute", "op": "eq"}`` only,
enough for broadcasts to be built and tested against the same signature."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, and_, cast, func, select, true

from models import Subscriber


def _leaf(node: dict[str, Any]) -> Any:
    if "tag" in node:
        tags = Subscriber.tags
        return func.coalesce(cast(tags, String), "").contains(f'"{node["tag"]}"')
    if "attribute" in node and node.get("op", "eq") == "eq":
        return Subscriber.attributes[node["attribute"]].as_string() == str(node["value"])
    if "all" in node:
        return and_(true(), *(_leaf(child) for child in node["all"]))
    raise ValueError(f"the stand-in segment filter cannot compile {sorted(node)}")


def member_ids(account_id: int, filter: dict[str, Any], now: datetime) -> Select[Any]:
    """The account's subscribers matching ``filter``: one column of ids."""
    return select(Subscriber.id).where(Subscriber.account_id == account_id, _leaf(filter))
