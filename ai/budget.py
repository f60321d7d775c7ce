"""The per-account daily token budget (``ESEQ_AI_DAILY_TOKENS``) and each draft's cost.

Today's use is the sum of the tokens recorded on the account's drafts created since
midnight UTC, read before every call to the model: a draft that would start over
the budget fails with that reason instead of calling. A draft already running may
finish its last call past the budget (one call's worth at most per running draft:
the pool's concurrency bounds how many).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AiDraft


@dataclass(frozen=True)
class Prices:
    """Per 1,000 tokens, in whatever currency the operator prices in; None: unknown."""

    prompt_per_1k: float | None = None
    completion_per_1k: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if self.prompt_per_1k is None and self.completion_per_1k is None:
            return None
        return round(prompt_tokens / 1000 * (self.prompt_per_1k or 0.0)
                     + completion_tokens / 1000 * (self.completion_per_1k or 0.0), 6)


class BudgetExceededError(Exception):
    """The account has used its daily tokens."""


def tokens_used_today(session: Session, account_id: int, now: datetime) -> int:
    midnight = datetime.combine(now.astimezone(timezone.utc).date(), time(0), tzinfo=timezone.utc)
    used = session.scalar(select(func.coalesce(func.sum(AiDraft.prompt_tokens + AiDraft.completion_tokens), 0))
                          .where(AiDraft.account_id == account_id, AiDraft.created_at >= midnight))
    return int(used or 0)


def check_budget(session: Session, account_id: int, daily_tokens: int, now: datetime, spent: int = 0) -> None:
    """BudgetExceededError once today's tokens (plus ``spent`` by this draft, not yet
    recorded) reach ``daily_tokens``; 0 means no limit."""
    if daily_tokens and tokens_used_today(session, account_id, now) + spent >= daily_tokens:
        raise BudgetExceededError(f"the account's daily AI budget of {daily_tokens} tokens is used up "
                                  "(ESEQ_AI_DAILY_TOKENS); it renews at midnight UTC")
