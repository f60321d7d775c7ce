"""A stand-in chat-completions server: 127.0.0.1, a free port, its own thread.

It checks each request as OpenAI documents ``POST /v1/chat/completions`` (the
path under the base URL, ``Authorization: Bearer``, a JSON body whose ``model``,
``messages``, ``response_format`` with a JSON schema and token bound are well
formed; a strict schema must follow the Structured Outputs rules), and answers a
request that breaks the protocol with the 400/401/404 error body OpenAI sends, so
a client that passes here speaks the protocol, not just this server's dialect.

Answers are scripted per test: ``reply()`` and the misbehaviours
(``rate_limited``, ``server_error``, ``slow``, ``not_json``, ``truncated``,
``refused_by_model``) queue up and are used in order; when the queue is empty the
``answerer`` (request -> content) answers, so a test can read the prompt and the
requested schema and produce JSON that fits it. Every request is recorded.

    with FakeOpenAI() as ai:
        ai.rate_limited(retry_after="2")
        ai.reply('{"subject": "Hi"}')
        client = ChatClient(base_url=ai.base_url, api_key=ai.api_key, model="gpt-test")
"""
from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROLES = {"system", "developer", "user", "assistant", "tool"}
# The request body's documented top-level fields (Create chat completion); any
# other is refused as OpenAI does: "Unrecognized request argument supplied".
KNOWN_FIELDS = {
    "model", "messages", "response_format", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n",
    "stream", "stream_options", "stop", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
    "top_logprobs", "user", "seed", "tools", "tool_choice", "parallel_tool_calls", "store", "metadata",
    "reasoning_effort", "service_tier", "modalities", "audio", "prediction", "web_search_options",
    "functions", "function_call",
    "safety_identifier", "prompt_cache_key", "verbosity",
}
SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class ChatRequest:
    """One request as it arrived; ``body`` is None when it was not JSON."""

    method: str
    path: str
    headers: Message
    raw: bytes
    body: dict[str, Any] | None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("messages") or [])

    @property
    def prompt(self) -> str:
        """Every message's text, joined: what a test greps for (or for the absence of)."""
        return "\n".join(str(m.get("content")) for m in self.messages)

    @property
    def schema(self) -> dict[str, Any] | None:
        fmt = (self.body or {}).get("response_format") or {}
        return (fmt.get("json_schema") or {}).get("schema")

    @property
    def schema_name(self) -> str | None:
        fmt = (self.body or {}).get("response_format") or {}
        return (fmt.get("json_schema") or {}).get("name")


@dataclass
class Reply:
    """One scripted answer. ``body`` given: sent as it is (a misbehaviour);
    otherwise a chat completion is built around ``content``."""

    content: str | None = None
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    delay: float = 0.0
    refusal: str | None = None


def openai_error(message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> bytes:
    """The error body every OpenAI endpoint sends."""
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


class ProtocolError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(body.decode())
        self.status = status
        self.body = body


class FakeOpenAI:
    """``api_key``: the one key it accepts. ``served_model``: the model name it
    answers with (servers answer with a dated name, e.g. ``gpt-4o-2024-08-06``);
    None echoes the requested one. ``require_schema``/``require_token_limit``:
    OpenAI allows a request without them, this platform never sends one, so by
    default their absence is refused here as OpenAI refuses a bad value."""

    def __init__(self, *, api_key: str | None = None, served_model: str | None = None,
                 answerer: Callable[[ChatRequest], str] | None = None, require_schema: bool = True,
                 require_token_limit: bool = True, base_path: str = "/v1") -> None:
        self.api_key = api_key if api_key is not None else "sk-test-" + secrets.token_hex(12)
        self.served_model = served_model
        self.answerer = answerer
        self.require_schema = require_schema
        self.require_token_limit = require_token_limit
        self.base_path = base_path.rstrip("/")
        self.requests: list[ChatRequest] = []
        self.refused: list[tuple[ChatRequest, int, bytes]] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the openai package's httpx expects

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm
                # and the client's delayed ACK hold each answer back some 40 ms.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, headers, body, delay = owner._handle(self.command, self.path, self.headers, raw)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (the timeout tests)

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.root_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.base_url = self.root_url + self.base_path
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    # -- scripting -----------------------------------------------------------------

    def reply(self, content: str, *, finish_reason: str = "stop", prompt_tokens: int | None = None,
              completion_tokens: int | None = None, delay: float = 0.0) -> None:
        self._push(Reply(content, finish_reason, prompt_tokens, completion_tokens, delay=delay))

    def truncated(self, content: str = '{"name": "Welcome", "steps": [{"type": "em',
                  completion_tokens: int | None = None) -> None:
        """Half an answer: the model ran out of tokens."""
        self._push(Reply(content, "length", completion_tokens=completion_tokens))

    def refused_by_model(self, refusal: str = "I'm sorry, I can't help with that.") -> None:
        """A structured-outputs refusal: ``content`` null, ``refusal`` set."""
        self._push(Reply(None, "stop", refusal=refusal))

    def rate_limited(self, retry_after: str | None = "1", *, retry_after_ms: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        if retry_after_ms is not None:
            headers["retry-after-ms"] = retry_after_ms
        self._push(Reply(status=429, headers=headers, body=openai_error(
            "Rate limit reached for requests. Please try again later.", "requests", None, "rate_limit_exceeded")))

    def server_error(self, status: int = 500, retry_after: str | None = None) -> None:
        message = ("The engine is currently overloaded, please try again later." if status == 503 else
                   "The server had an error while processing your request. Sorry about that!")
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._push(Reply(status=status, headers=headers, body=openai_error(message, "server_error")))

    def slow(self, delay: float, content: str = "{}") -> None:
        """An answer that comes after ``delay`` seconds (longer than the client's timeout)."""
        self._push(Reply(content, delay=delay))

    def not_json(self, status: int = 200) -> None:
        """What a proxy in front of the model sends: an HTML page, not a chat completion."""
        self._push(Reply(status=status, headers={"Content-Type": "text/html"},
                         body=b"<html><body><h1>502 Bad Gateway</h1></body></html>"))

    def raw(self, status: int, body: bytes | str, headers: dict[str, str] | None = None) -> None:
        """Any answer at all, sent as it is."""
        self._push(Reply(status=status, headers=headers or {"Content-Type": "application/json"},
                         body=body.encode() if isinstance(body, str) else body))

    def _push(self, reply: Reply) -> None:
        with self._lock:
            self._queue.append(reply)

    @property
    def pending(self) -> int:
        """Scripted answers not used yet."""
        with self._lock:
            return len(self._queue)

    @property
    def last(self) -> ChatRequest:
        assert self.requests, "the client made no request"
        return self.requests[-1]

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------

    def _handle(self, method: str, path: str, headers: Message,
                raw: bytes) -> tuple[int, dict[str, str], bytes, float]:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = ChatRequest(method, path, headers, raw, body if isinstance(body, dict) else None)
        with self._lock:
            self.requests.append(request)
        try:
            self._check(request)
        except ProtocolError as refusal:
            with self._lock:
                self.refused.append((request, refusal.status, refusal.body))
            return refusal.status, {"Content-Type": "application/json"}, refusal.body, 0.0
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        if reply is None:
            if self.answerer is None:
                return 500, {"Content-Type": "application/json"}, openai_error(
                    "fake_openai: no scripted answer and no answerer", "server_error"), 0.0
            try:
                reply = Reply(self.answerer(request))
            except Exception as exc:  # the test's answerer is broken: say so rather than drop the connection
                return 500, {"Content-Type": "application/json"}, openai_error(
                    f"fake_openai: the answerer raised {type(exc).__name__}: {exc}", "server_error"), 0.0
        if reply.body is not None:
            return reply.status, reply.headers, reply.body, reply.delay
        return 200, {"Content-Type": "application/json", **reply.headers}, \
            json.dumps(self._completion(request, reply)).encode(), reply.delay

    def _completion(self, request: ChatRequest, reply: Reply) -> dict[str, Any]:
        assert request.body is not None
        prompt_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else max(1, len(request.prompt) // 4)
        completion_tokens = (reply.completion_tokens if reply.completion_tokens is not None
                             else max(1, len(reply.content or "") // 4))
        return {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.served_model or request.body["model"],
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply.content, "refusal": reply.refusal},
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "system_fingerprint": "fp_fake",
        }

    def _check(self, request: ChatRequest) -> None:
        """Refuse what OpenAI refuses, in the order it does: the route, the key, then the body."""
        route = self.base_path + "/chat/completions"
        if request.method != "POST" or request.path.split("?")[0] != route:
            raise ProtocolError(404, openai_error(f"Invalid URL ({request.method} {request.path})"))
        authorization = request.headers.get("Authorization") or ""
        if not authorization.startswith("Bearer "):
            raise ProtocolError(401, openai_error(
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."))
        key = authorization[len("Bearer "):]
        if not secrets.compare_digest(key.encode(), self.api_key.encode()):
            masked = key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "*" * len(key)
            raise ProtocolError(401, openai_error(
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.", code="invalid_api_key"))
        if (request.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            raise ProtocolError(400, openai_error(
                "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload, "
                "but what was sent was not valid JSON."))
        if request.body is None:
            raise ProtocolError(400, openai_error(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
                "not valid JSON."))
        _check_body(request.body, self.require_schema, self.require_token_limit)


def _refuse(message: str, param: str | None = None) -> ProtocolError:
    return ProtocolError(400, openai_error(message, param=param))


def _check_body(body: dict[str, Any], require_schema: bool, require_token_limit: bool) -> None:
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        raise _refuse(f"Unrecognized request argument supplied: {unknown[0]}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _refuse("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _refuse("[] is too short - 'messages'" if messages == [] else "Missing required parameter: 'messages'.",
                      "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise _refuse(f"Invalid value for 'messages[{i}].role': expected one of {sorted(ROLES)}.",
                          f"messages[{i}].role")
        content = message.get("content")
        if not isinstance(content, str) and not (isinstance(content, list) and content):
            raise _refuse(f"Invalid type for 'messages[{i}].content': expected a string or an array of parts.",
                          f"messages[{i}].content")
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise _refuse(f"Invalid '{name}': integer below minimum value. Expected a value >= 1.", name)
    if require_token_limit and body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
        raise _refuse("fake_openai: this platform always bounds the answer (max_tokens or max_completion_tokens)",
                      "max_completion_tokens")
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2):
        raise _refuse("Invalid 'temperature': expected a number between 0 and 2.", "temperature")
    if body.get("stream"):
        raise _refuse("fake_openai: streaming is not scripted", "stream")
    fmt = body.get("response_format")
    if fmt is None:
        if require_schema:
            raise _refuse("fake_openai: this platform always asks for a JSON schema (response_format)",
                          "response_format")
        return
    _check_response_format(fmt)


def _check_response_format(fmt: Any) -> None:
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise _refuse("Invalid value for 'response_format.type': expected one of 'text', 'json_object' or "
                      "'json_schema'.", "response_format.type")
    if fmt["type"] != "json_schema":
        return
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise _refuse("Missing required parameter: 'response_format.json_schema'.", "response_format.json_schema")
    name = spec.get("name")
    if not isinstance(name, str) or not SCHEMA_NAME.match(name):
        raise _refuse("Invalid 'response_format.json_schema.name': string does not match pattern. Expected a "
                      "string that matches the pattern '^[a-zA-Z0-9_-]+$' of at most 64 characters.",
                      "response_format.json_schema.name")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise _refuse("Invalid type for 'response_format.json_schema.schema': expected an object.",
                      "response_format.json_schema.schema")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _refuse("Invalid type for 'response_format.json_schema.strict': expected a boolean.",
                      "response_format.json_schema.strict")
    if strict:
        problem = strict_schema_problem(schema)
        if problem:
            raise _refuse(f"Invalid schema for response_format '{name}': {problem}", "response_format")


def strict_schema_problem(schema: dict[str, Any], context: tuple[str, ...] = ()) -> str | None:
    """What Structured Outputs' strict mode refuses: an object whose
    ``additionalProperties`` is not false or whose ``required`` misses one of its
    properties (optional fields are written as a union with null). None: it passes."""
    where = f"In context=({', '.join(repr(c) for c in context)}), "
    if schema.get("type") == "object" or (isinstance(schema.get("type"), list) and "object" in schema["type"]):
        if schema.get("additionalProperties") is not False:
            return where + "'additionalProperties' is required to be supplied and to be false."
        properties = schema.get("properties") or {}
        missing = [p for p in properties if p not in (schema.get("required") or [])]
        if missing:
            return where + ("'required' is required to be supplied and to be an array including every key in "
                            f"properties. Missing '{missing[0]}'.")
        for prop, sub in properties.items():
            problem = strict_schema_problem(sub, (*context, "properties", prop)) if isinstance(sub, dict) else None
            if problem:
                return problem
    for key in ("items",):
        if isinstance(schema.get(key), dict):
            problem = strict_schema_problem(schema[key], (*context, key))
            if problem:
                return problem
    for key in ("anyOf", "allOf", "oneOf"):
        for i, sub in enumerate(schema.get(key) or []):
            problem = strict_schema_problem(sub, (*context, key, str(i))) if isinstance(sub, dict) else None
            if problem:
                return problem
    for name, sub in (schema.get("$defs") or schema.get("definitions") or {}).items():
        problem = strict_schema_problem(sub, (*context, "$defs", name)) if isinstance(sub, dict) else None
        if problem:
            return problem
    return None



def example_for(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """The smallest value that fits ``schema`` (the subset Structured Outputs allows:
    objects, arrays, enums, consts, anyOf, $ref to $defs): an answerer's starting
    point, e.g. ``lambda r: json.dumps(example_for(r.schema))``."""
    defs = defs if defs is not None else {**schema.get("definitions", {}), **schema.get("$defs", {})}
    if "$ref" in schema:
        return example_for(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_for(options[0], defs)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example_for(properties[name], defs) for name in schema.get("required") or properties}
    if kind == "array":
        return [example_for(schema.get("items") or {}, defs) for _ in range(schema.get("minItems", 1))]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "x" * max(1, int(schema.get("minLength", 1)))
