"""The one place that calls the model: a chat completion asking for JSON that fits
a schema, through the ``openai`` package pointed at ``base_url``, so OpenAI itself
or any server speaking the same protocol (vLLM, llama.cpp's server, Ollama) works.

The package's own retries are off: ours honour ``Retry-After`` (seconds, an HTTP
date, or ``retry-after-ms``) on 429 and 5xx, back off exponentially with jitter
otherwise, and give up with ``AiUnavailable`` (carrying the wait) rather than hold
a worker thread longer than ``MAX_WAIT``, so the caller's task can retry later.
A circuit breaker (``ai.circuit``) stops calls to a server that keeps failing.

Content that is not valid JSON is not this module's error: the caller validates
it against its schema and asks again with the errors shown to the model. Prompts
and the API key are never logged; errors are scrubbed of the key.
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from functools import lru_cache
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import openai

from ai.circuit import OPEN, Circuit, circuit_for
from ai.errors import AiMalformed, AiRefused, AiTruncated, AiUnavailable

log = logging.getLogger(__name__)

# The longest a worker thread sleeps between two tries; a server asking for longer
# gets AiUnavailable with its Retry-After, and the task is retried then.
MAX_WAIT = 60.0
MAX_RETRY_AFTER = 86400.0  # a server asking for longer is believed for a day
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
# Sent to servers that need no key (a local vLLM or Ollama): the package insists on one.
NO_KEY = "no-key"


@dataclass(frozen=True)
class Completion:
    content: str            # choices[0].message.content
    finish_reason: str
    model: str              # as the server answered
    prompt_tokens: int
    completion_tokens: int
    model_seconds: float    # wall time of the HTTP call(s) that produced it (for the overhead figure)
    attempts: int
    refusal: str | None = None  # choices[0].message.refusal: why a model declined (content then empty)


class _Transient(Exception):
    """One try that may succeed if repeated (429, 5xx, timeout, connection)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """The wait a server asked for: ``retry-after-ms`` (OpenAI's, finer) first, then
    ``Retry-After`` as seconds or an HTTP date. None when absent or unreadable.
    (Not delivery's parser: that one also reads SendGrid's epoch X-RateLimit-Reset,
    which OpenAI's ``x-ratelimit-reset-*`` durations are not.)"""
    millis = _header(headers, "retry-after-ms")
    if millis:
        try:
            return _bounded(float(millis) / 1000)
        except ValueError:
            pass
    value = _header(headers, "retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return _bounded(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return _bounded((when - (now or datetime.now(timezone.utc))).total_seconds())


def _bounded(seconds: float) -> float | None:
    """A wait a task can be retried after: never negative, at most a day; None for
    "inf" or "nan", which float() reads but no countdown can use."""
    return min(max(0.0, seconds), MAX_RETRY_AFTER) if math.isfinite(seconds) else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict in tests: look case-insensitively
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """The wait after failed try number ``attempt`` (1-based) when the server named
    none: 1 s, 2 s, 4 s ... capped at 30 s, each drawn from its upper half so
    threads that failed together do not come back together."""
    base = min(BACKOFF_BASE * 2 ** max(attempt - 1, 0), BACKOFF_CAP)
    return base * (rng or random).uniform(0.5, 1.0)


def default_token_field(base_url: str) -> str:
    """OpenAI's newer models refuse ``max_tokens`` for ``max_completion_tokens``;
    self-hosted servers (Ollama, older vLLM and llama.cpp) know only ``max_tokens``."""
    host = (urlsplit(base_url).hostname or "").lower()
    return "max_completion_tokens" if host == "api.openai.com" or host.endswith(".openai.com") else "max_tokens"


class ChatClient:
    """Thread-safe: one per process and endpoint is enough (the ``openai`` client
    holds a connection pool). ``circuit`` None: this process's breaker for
    ``base_url``. ``sleep``/``clock``/``rng`` are injected by tests."""

    def __init__(self, *, base_url: str, api_key: str | None, model: str, timeout: float = 60.0,
                 max_attempts: int = 4, circuit: Circuit | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, token_field: str | None = None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be 1 or more")
        self.base_url = base_url
        self.model = model
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.circuit = circuit if circuit is not None else circuit_for(base_url)
        self.token_field = token_field or default_token_field(base_url)
        self._key = api_key or ""
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._openai = openai.OpenAI(base_url=base_url, api_key=api_key or NO_KEY, timeout=timeout,
                                     max_retries=0, organization=None, project=None)

    def complete(self, messages: list[dict[str, str]], *, schema: dict, schema_name: str,
                 max_tokens: int, temperature: float = 0.7, strict: bool = True) -> Completion:
        """One answer that fits ``schema`` (``strict``: OpenAI's Structured Outputs
        guarantee it; the caller validates anyway). Raises the ``ai.errors``."""
        params: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": schema_name, "schema": schema, "strict": strict}},
            self.token_field: max_tokens,
            "temperature": temperature,
        }
        attempts, model_seconds = 0, 0.0
        while True:
            wait = self.circuit.allow()
            if wait is not None:
                raise AiUnavailable(f"the AI server failed repeatedly; its circuit is open for {wait:.0f} s more",
                                    retry_after=wait)
            attempts += 1
            started = self._clock()
            try:
                body = self._call(params)
            except _Transient as failure:
                model_seconds += self._clock() - started
                self.circuit.failed()
                if self.circuit.state == OPEN:  # this failure opened it: no point sleeping before a refusal
                    raise AiUnavailable(f"{failure.reason}; the circuit is now open for {self.circuit.cool_off:g} s",
                                        max(self.circuit.cool_off, failure.retry_after or 0.0))
                delay = self._next_wait(failure, attempts)
                log.warning("AI call failed (%s, try %d of %d); trying again in %.1f s",
                            failure.reason, attempts, self.max_attempts, delay)
                self._sleep(delay)
                continue
            except AiRefused:
                self.circuit.succeeded()  # it answered: the endpoint is up, the request is wrong
                raise
            model_seconds += self._clock() - started
            try:
                completion = self._completion(body, attempts, model_seconds)
            except AiMalformed:
                self.circuit.failed()  # a body that is no chat completion (a proxy's error page): as good as down
                raise
            self.circuit.succeeded()
            log.info("AI call: model %s, %d try(s), %.2f s, %d+%d tokens, finish %s", completion.model,
                     attempts, model_seconds, completion.prompt_tokens, completion.completion_tokens,
                     completion.finish_reason)
            return _usable(completion, max_tokens)

    def _next_wait(self, failure: _Transient, attempts: int) -> float:
        """How long to sleep before the next try, or AiUnavailable when there is none."""
        if attempts >= self.max_attempts:
            raise AiUnavailable(f"{failure.reason}; gave up after {attempts} tries", failure.retry_after)
        if failure.retry_after is not None:
            if failure.retry_after > MAX_WAIT:
                raise AiUnavailable(f"{failure.reason}; the server asked us to wait {failure.retry_after:.0f} s",
                                    failure.retry_after)
            return failure.retry_after
        return backoff_seconds(attempts, self._rng)

    def _call(self, params: dict[str, Any]) -> bytes:
        """One HTTP request; the raw body of a 2xx answer."""
        try:
            raw = self._openai.chat.completions.with_raw_response.create(**params)
            return raw.http_response.content
        except openai.APIStatusError as exc:
            status = exc.status_code
            detail = self._scrub(_error_message(exc))
            if status == 429 or status >= 500:
                raise _Transient(f"the AI server answered {status}{detail}",
                                 retry_after_seconds(exc.response.headers)) from None
            if status in (401, 403):
                raise AiRefused(f"the AI server refused our API key ({status}){detail}", status) from None
            raise AiRefused(f"the AI server refused the request ({status}){detail}", status) from None
        except openai.APITimeoutError:
            raise _Transient(f"no answer from the AI server within {self.timeout:g} s") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc.__context__
            raise _Transient(f"cannot reach the AI server: {type(cause).__name__ if cause else 'connection error'}"
                             ) from None

    def _completion(self, body: bytes, attempts: int, model_seconds: float) -> Completion:
        """The chat completion in a 2xx body, or AiMalformed when it is none."""
        try:
            data = json.loads(body)
        except ValueError:
            raise AiMalformed(f"the AI server's answer is not JSON: {_preview(body)}") from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict) \
                or not isinstance(choices[0].get("message"), dict):
            raise AiMalformed(f"the AI server's answer is not a chat completion: {_preview(body)}")
        message = choices[0]["message"]
        content, refusal = message.get("content"), message.get("refusal")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Completion(
            content=content if isinstance(content, str) else "",
            finish_reason=str(choices[0].get("finish_reason") or "stop"),
            model=str(data.get("model") or self.model),
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
            model_seconds=model_seconds,
            attempts=attempts,
            refusal=str(refusal)[:300] if refusal else None,
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[key]") if self._key else text

    def close(self) -> None:
        self._openai.close()


def _usable(completion: Completion, max_tokens: int) -> Completion:
    """The completion, when it holds a whole answer. The errors carry it, so that
    the caller can count the tokens it cost."""
    if completion.finish_reason == "length":
        raise AiTruncated(f"the answer was cut off at the token bound ({max_tokens} tokens); nothing of it is used",
                          completion)
    if completion.finish_reason == "content_filter":
        raise AiMalformed("the AI provider's content filter stopped the answer", completion)
    if not completion.content.strip():
        raise AiMalformed(f"the model declined: {completion.refusal}" if completion.refusal
                          else "the AI server's answer has no content", completion)
    return completion


def _error_message(exc: openai.APIStatusError) -> str:
    """": <the server's error message>", from OpenAI's error body when it sent one."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else None
        if message:
            return f": {str(message)[:300]}"
    return ""


def _preview(body: bytes) -> str:
    text = body[:120].decode("utf-8", errors="replace").strip()
    return repr(text) if text else "(empty)"


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


@lru_cache(maxsize=8)
def shared_client(base_url: str, api_key: str | None, model: str, timeout: float = 60.0) -> ChatClient:
    """This process's client for one configuration. Building one costs 100-200 ms
    (the ``openai`` client's HTTP pool and TLS context), far more than a call's own
    overhead (about 2 ms): build it once per process, and reuse its connections."""
    return ChatClient(base_url=base_url, api_key=api_key, model=model, timeout=timeout)
