"""Property-based fuzzing of every operation the served OpenAPI document describes:
whatever a client sends, authenticated as a tenant, the answer is never a 5xx. The
schema is read from the running app, so endpoints added later are covered too.

Bounded (``MAX_EXAMPLES`` valid and as many invalid requests per operation, no
deadline), and split into ``SHARDS`` tests that the suite's workers share.
Operations are driven through schemathesis' strategies directly, because its lazy
pytest integration (``from_fixture``) does not run on pytest 9.

Schemathesis cannot send some of the inputs that broke the API: its strings leave
out lone surrogates on purpose, and its JSON serialiser cannot write integers of
thousands of digits or nesting thousands deep. The second test sends those, built
from the same served document (every body field, query and path parameter of every
operation); run against the code before they were refused, it found 226 server
errors in 24 operations (lone surrogates, 5,000-digit integers, 5,000-deep nesting,
a far-future ``occurred_at``).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.conftest import ADMIN_TOKEN, Tenant

MAX_EXAMPLES = 25
# The operations are fuzzed in this many tests, each taking every SHARDS-th: one test
# of all of them took three minutes on one of the suite's two workers.
SHARDS = 4


@pytest.fixture(autouse=True)
def drop_enqueued_work(database: str) -> Iterator[None]:
    """Fuzzed imports and enrollments enqueue tasks for rows that the next test's
    truncation deletes; purge this run's queues so no later worker runs them."""
    yield
    from tasks.app import app as celery_app

    celery_app.control.purge()


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# What schemathesis' own strategies never produce, mixed into its JSON bodies by the
# hook below: lone surrogates, integers far past 64 bits (its serialiser can write up
# to 4,300 digits; 400 keeps generation cheap, the explicit probes below send 5,000)
# and nesting past the API's limit (below the serialiser's).
HOSTILE = st.one_of(
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3).map(lambda s: f"x{s}"),
    st.integers(min_value=2**63, max_value=10**400),
    st.integers(min_value=-(10**400), max_value=-(2**63) - 1),
    st.integers(min_value=65, max_value=200).map(_nested),
)


def flatmap_case(_context: Any, case: Any) -> st.SearchStrategy[Any]:
    """Keep the generated case, or put a hostile value into one of its JSON body's fields.
    Only JSON: a multipart or CSV upload cannot carry a lone surrogate at all (the
    client fails to encode it before anything is sent), and the import endpoint's
    rows get their own hostile values in tests/integration/test_import.py."""
    if not isinstance(case.body, dict) or not case.body or case.media_type != "application/json":
        return st.just(case)

    def hostile(field_and_value: tuple[str, Any]) -> Any:
        # Each draw builds a fresh case upstream, so changing this one is safe (Case has
        # slots and cannot be copied). Then take the change as generated: otherwise
        # schemathesis re-labels the case with a JSON Schema validator that cannot
        # encode a surrogate, and only the server's answer is checked here anyway.
        case.body = {**case.body, field_and_value[0]: field_and_value[1]}
        case._record_starting_state()
        return case

    return st.one_of(st.just(case), st.tuples(st.sampled_from(sorted(case.body)), HOSTILE).map(hostile))


def fuzz(operation: Any, headers: dict[str, str]) -> None:
    """Raise on the first request (shrunk by Hypothesis) that gets a server error."""
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(max_examples=2 * MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    run()


def summary(exc: BaseException) -> str:
    """The failure's kind and the curl line that reproduces it (schemathesis filters credentials)."""
    text = str(exc)
    if isinstance(exc, BaseExceptionGroup):  # Hypothesis found several: say what each was
        text += "\n" + "\n".join(str(inner) for inner in exc.exceptions)
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(("- ", "curl "))]
    return "\n".join(lines) or f"{type(exc).__name__}: {text[:1000]}"


@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_request_a_tenant_can_send_gets_a_server_error(app: Any, alice: Tenant, shard: int) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    schema.hook(flatmap_case)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the served schema should describe the API"
    # Account endpoints read X-API-Key first; admin endpoints read the bearer token.
    headers = {**alice.headers, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    failures: dict[str, str] = {}
    for operation in operations[shard::SHARDS]:
        try:
            fuzz(operation, headers)
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, not only the first
            failures[operation.label] = summary(exc)
    assert not failures, "\n\n".join(f"{label}\n{detail}" for label, detail in failures.items())


# What schemathesis cannot send: its strings exclude lone surrogates (category Cs),
# and its JSON serialiser refuses integers past 4,300 digits and nesting past
# Python's recursion limit. These hostile values go into every field, query and
# path parameter the served OpenAPI document describes, so a new endpoint or field
# is covered without a change here. Each is a JSON text (placeholders are spliced
# in after json.dumps, which could not write them).
DEEP = 5000
HOSTILE_JSON = {
    "lone surrogate": '"x\\ud800"',
    "lone surrogate in a key": '{"k\\udfff": 1}',
    "lone surrogate in a list": '["ok", "\\udc80"]',
    "integer of 5,000 digits": "9" * 5000,
    "integer 2^63": str(2**63),
    "integer -2^63 - 1": str(-(2**63) - 1),
    "integer 10^30": "1" + "0" * 30,
    "float overflowing to infinity": "1e400",
    "NaN": "NaN",
    "-Infinity": "-Infinity",
    "nesting 100 deep": "[" * 100 + "]" * 100,
    "nesting 5,000 deep": "[" * DEEP + "]" * DEEP,
    "far-future datetime with offset": '"9999-12-31T23:59:59-14:00"',
    "year-1 datetime with offset": '"0001-01-01T00:00:00+14:00"',
    "year-9999 date": '"9999-12-31"',
}
HOSTILE_QUERY = {
    "integer of 5,000 digits": "9" * 5000,
    "integer 2^63 + 1": str(2**63 + 1),
    "integer 10^30": "1" + "0" * 30,
    "invalid UTF-8 (a surrogate's bytes)": "%ED%A0%80",
    "far-future datetime with offset": "9999-12-31T23:59:59-14:00",
}
HOSTILE_PATH = {"integer of 5,000 digits": "9" * 5000, "integer 2^63 + 1": str(2**63 + 1), "integer 10^30": "1" + "0" * 30}
PLACEHOLDER = '"__hostile__"'
# A valid body per request schema, so each hostile value is the only thing wrong and
# reaches as far as it can (the database, if nothing refuses it first). A schema not
# listed here (a new endpoint) is probed from an empty body, which still finds 5xx.
BASES: dict[str, dict[str, Any]] = {
    "AccountCreate": {"name": "Acme", "from_email": "acme@example.com"},
    "TemplateIn": {"name": "t", "subject": "Hi"},
    "TemplateReplace": {"name": "t", "subject": "Hi"},
    "SequenceIn": {"name": "s", "steps": [{"type": "delay", "seconds": 60}]},
    "EnrollRequest": {"emails": ["ada@example.com"]},
    "EventCreate": {"email": "ada@example.com", "name": "signup"},
    "SubscriberCreate": {"email": "ada@example.com"},
    "ProviderCreate": {"name": "p", "kind": "smtp", "config": {}},  # a real host would be resolved in DNS
    "SuppressionCreate": {"email": "sup@example.com"},
    "PlanCreate": {"provider_id": 1},
}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its ``$ref`` (to ``#/components/...``) followed."""
    while "$ref" in schema:
        target: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = target
    return schema


@dataclass(frozen=True)
class Probe:
    """One hostile request: ``field`` is what its 4xx must name."""

    method: str
    path: str
    field: str
    what: str
    query: str = ""
    body: str | None = None
    siblings: tuple[str, ...] = ()  # the body's other fields, which a refusal may name instead

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path} {self.field}: {self.what}"


def _fill_path(path: str, params: list[dict[str, Any]], hostile: tuple[str, str] | None = None) -> str:
    for param in params:
        if param["in"] == "path":
            value = hostile[1] if hostile and hostile[0] == param["name"] else "1"
            path = path.replace("{" + param["name"] + "}", value)
    return path


def probes(spec: dict[str, Any]) -> Iterator[Probe]:
    """Every hostile value in every body property, query and path parameter of every operation."""
    for template, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method == "parameters":
                continue
            params = [*shared, *operation.get("parameters", [])]
            path = _fill_path(template, params)
            for param in params:
                if param["in"] == "path":
                    for what, value in HOSTILE_PATH.items():
                        yield Probe(method, _fill_path(template, params, (param["name"], value)), param["name"], what)
                elif param["in"] == "query":
                    for what, value in HOSTILE_QUERY.items():
                        yield Probe(method, path, param["name"], what, query=f"{param['name']}={value}")
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            reference = content["application/json"].get("schema", {})
            base = BASES.get(str(reference.get("$ref", "")).rsplit("/", 1)[-1], {})
            schema = _resolve(spec, reference)
            yield Probe(method, path, "body", "nesting 5,000 deep", body=HOSTILE_JSON["nesting 5,000 deep"])
            names = tuple(schema.get("properties", {}))
            for name in names:
                for what, value in HOSTILE_JSON.items():
                    # Past the parser's recursion limit no path is known: the refusal names the body.
                    field = "body" if what == "nesting 5,000 deep" else name
                    yield Probe(method, path, field, what, body=json.dumps({**base, name: "__hostile__"}).replace(
                        PLACEHOLDER, value), siblings=tuple(n for n in names if n != name))
            if schema.get("type") == "array":  # an upload of rows (imports): each row gets the values
                for what, value in HOSTILE_JSON.items():
                    row = json.dumps({"email": "row@example.com", "first_name": "__hostile__"})
                    field = "body" if what == "nesting 5,000 deep" else "first_name"
                    yield Probe(method, path, field, what, body="[" + row.replace(PLACEHOLDER, value) + "]")


def _names(body: dict[str, Any], probe: Probe) -> bool:
    """The refusal names the probed field (or a path inside it), or the value was
    taken and only the body's other fields were refused (absent, say). A whole
    body is "body", or "file" for an upload."""
    fields = ("body", "file") if probe.field == "body" else (probe.field,)
    errors = [name for location in (body.get("errors") or {}).values() if isinstance(location, dict)
              for name in location]
    if any(name == field or name.startswith(f"{field}.") for name in errors for field in fields):
        return any(field in body.get("message", "") for field in fields)
    return bool(errors) and all(name.split(".")[0] in probe.siblings for name in errors)


def test_no_hostile_value_in_any_field_gets_a_server_error_and_a_refusal_names_the_field(
        app: Any, client: Any, alice: Tenant) -> None:
    spec = client.get("/openapi.json").get_json()
    headers = {**alice.headers, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    failures: list[str] = []
    sent = 0
    for probe in probes(spec):
        sent += 1
        response = client.open(probe.path, method=probe.method.upper(), query_string=probe.query or None,
                               data=probe.body, content_type="application/json" if probe.body else None,
                               headers=headers)
        text = response.get_data(as_text=True)
        if response.status_code >= 500:
            failures.append(f"{probe} -> {response.status_code}")
        elif response.status_code in (400, 422) and not _names(response.get_json(), probe):
            failures.append(f"{probe} -> {response.status_code} not naming the field: {text[:300]}")
    assert sent > 500, "every operation's fields should be probed"
    assert not failures, f"{len(failures)} of {sent} probes:\n" + "\n".join(failures)
