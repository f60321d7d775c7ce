"""The same request answered once: an identical draft (same account, kind, request,
model, and content worked on) reuses the ready answer of an earlier one instead of
calling the model again.

The key hashes everything the prompt is built from, so a changed step, a new
attribute name or another model is a new key. Answers are never shared across
accounts: a brief and its answer are the account's own.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AiDraft


def cache_key(kind: str, request: dict[str, Any], model: str, content: Any, attribute_names: list[str]) -> str:
    material = json.dumps({"kind": kind, "request": request, "model": model, "content": content,
                           "attributes": sorted(attribute_names)}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def earlier_answer(session: Session, account_id: int, key: str, draft_id: int) -> AiDraft | None:
    """The newest ready, uncached draft of the account with this key, other than ``draft_id``."""
    return session.scalar(select(AiDraft).where(
        AiDraft.account_id == account_id, AiDraft.cache_key == key, AiDraft.status == "ready",
        AiDraft.cached.is_(False), AiDraft.id != draft_id).order_by(AiDraft.id.desc()).limit(1))
