"""What can go wrong calling the model, split the way callers must act on it:
wait and try later (unavailable), give up and show the person why (refused),
or ask again differently (truncated, malformed). Each carries a human ``reason``
that never holds the API key or the prompt."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ai.client import Completion


class AiError(Exception):
    """Base of the model client's errors; ``reason`` is safe to store and show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AiUnavailable(AiError):
    """The model could not be reached now: the circuit is open, or retries ran out
    on 429, 5xx, timeouts or connection errors, or the server asked us to wait
    longer than a worker thread should. ``retry_after``: seconds, when known."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class AiRefused(AiError):
    """The server refused the request (a 4xx other than 429: a bad key, a bad
    request, an unknown model). Not retried: asking again gets the same answer."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class AiTruncated(AiError):
    """The answer stopped at the token bound (``finish_reason: length``): half an
    answer is never used. ``completion``: what came, for its token counts."""

    def __init__(self, reason: str, completion: Completion | None = None) -> None:
        super().__init__(reason)
        self.completion = completion


class AiMalformed(AiError):
    """The server's answer is not a chat completion (not JSON, no choices;
    ``completion`` None), or its content is missing or empty, a model's refusal
    included (``completion`` set, for its token counts)."""

    def __init__(self, reason: str, completion: Completion | None = None) -> None:
        super().__init__(reason)
        self.completion = completion
