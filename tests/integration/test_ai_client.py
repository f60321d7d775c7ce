"""ChatClient over real HTTP against the fake chat-completions server, which checks
each request as OpenAI documents it and misbehaves on purpose."""
from __future__ import annotations

import json
import logging
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from ai.circuit import Circuit
from ai.client import MAX_WAIT, ChatClient
from ai.errors import AiMalformed, AiRefused, AiTruncated, AiUnavailable
from tests.support.fake_openai import FakeOpenAI, example_for

SCHEMA = {"type": "object", "properties": {"subject": {"type": "string"}}, "required": ["subject"],
          "additionalProperties": False}
MESSAGES = [{"role": "system", "content": "You write marketing emails."},
            {"role": "user", "content": "One subject line for a welcome email."}]


@pytest.fixture(autouse=True)
def clean_tables() -> Iterator[None]:
    """The client touches no table: no database for these tests."""
    yield


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


class Clock:
    """Monotonic time that moves only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def client_for(fake: FakeOpenAI, clock: Clock, **kwargs: object) -> ChatClient:
    options: dict = {"circuit": Circuit(threshold=5, cool_off=30, clock=clock), "timeout": 2.0,
                     "sleep": clock.sleep, "rng": random.Random(7), **kwargs}
    return ChatClient(base_url=fake.base_url, api_key=fake.api_key, model="gpt-test", **options)


def ask(client: ChatClient, max_tokens: int = 200) -> object:
    return client.complete(MESSAGES, schema=SCHEMA, schema_name="subject_line", max_tokens=max_tokens,
                           temperature=0.4)


def test_it_sends_the_documented_request_and_reads_the_answer(fake, clock):
    fake.served_model = "gpt-test-2025-01-01"
    fake.reply('{"subject": "Welcome aboard"}', prompt_tokens=31, completion_tokens=9)

    completion = ask(client_for(fake, clock))

    assert completion.content == '{"subject": "Welcome aboard"}'
    assert (completion.finish_reason, completion.model) == ("stop", "gpt-test-2025-01-01")
    assert (completion.prompt_tokens, completion.completion_tokens, completion.attempts) == (31, 9, 1)
    assert completion.model_seconds >= 0
    request = fake.last
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.body == {
        "model": "gpt-test",
        "messages": MESSAGES,
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "subject_line", "schema": SCHEMA, "strict": True}},
        "max_tokens": 200,
        "temperature": 0.4,
    }
    assert fake.refused == []


def test_it_asks_openai_itself_with_max_completion_tokens(fake, clock):
    fake.reply('{"subject": "Hi"}')
    ask(client_for(fake, clock, token_field="max_completion_tokens"))
    assert fake.last.body["max_completion_tokens"] == 200
    assert "max_tokens" not in fake.last.body


def test_it_honours_retry_after_on_a_429(fake, clock):
    fake.rate_limited(retry_after="7")
    fake.reply('{"subject": "Hi"}')

    completion = ask(client_for(fake, clock))

    assert clock.sleeps == [7.0]
    assert completion.attempts == 2
    assert len(fake.requests) == 2


def test_it_prefers_retry_after_ms(fake, clock):
    fake.rate_limited(retry_after="2", retry_after_ms="1500")
    fake.reply('{"subject": "Hi"}')
    ask(client_for(fake, clock))
    assert clock.sleeps == [1.5]


def test_it_retries_a_500_with_backoff_then_succeeds(fake, clock):
    fake.server_error(500)
    fake.server_error(503)
    fake.reply('{"subject": "Hi"}')

    completion = ask(client_for(fake, clock))

    assert completion.attempts == 3
    assert len(clock.sleeps) == 2
    assert 0.5 <= clock.sleeps[0] <= 1.0 and 1.0 <= clock.sleeps[1] <= 2.0  # 1 s then 2 s, jittered down


def test_it_honours_retry_after_on_a_503(fake, clock):
    fake.server_error(503, retry_after="3")
    fake.reply('{"subject": "Hi"}')
    ask(client_for(fake, clock))
    assert clock.sleeps == [3.0]


def test_a_retry_after_longer_than_a_thread_should_wait_gives_up_with_it(fake, clock):
    fake.rate_limited(retry_after=str(int(MAX_WAIT) + 60))
    fake.reply('{"subject": "never asked for"}')

    with pytest.raises(AiUnavailable) as caught:
        ask(client_for(fake, clock))

    assert caught.value.retry_after == MAX_WAIT + 60
    assert clock.sleeps == []
    assert len(fake.requests) == 1


def test_it_gives_up_after_max_attempts_with_the_last_retry_after(fake, clock):
    for _ in range(3):
        fake.rate_limited(retry_after="2")

    with pytest.raises(AiUnavailable) as caught:
        ask(client_for(fake, clock, max_attempts=3))

    assert "429" in caught.value.reason and "3 tries" in caught.value.reason
    assert caught.value.retry_after == 2.0
    assert clock.sleeps == [2.0, 2.0]
    assert len(fake.requests) == 3


def test_an_answer_slower_than_the_timeout_is_retried_then_unavailable(fake, clock):
    fake.slow(1.5)
    fake.slow(1.5)

    with pytest.raises(AiUnavailable) as caught:
        ask(client_for(fake, clock, timeout=0.3, max_attempts=2))

    assert "within 0.3 s" in caught.value.reason
    assert len(fake.requests) == 2


def test_a_slow_answer_then_a_quick_one_succeeds(fake, clock):
    fake.slow(1.5)
    fake.reply('{"subject": "Hi"}')
    completion = ask(client_for(fake, clock, timeout=0.3))
    assert completion.attempts == 2
    assert completion.model_seconds >= 0.3  # the time lost waiting counts as the model's


def test_a_body_that_is_not_json_is_malformed_and_not_retried(fake, clock):
    fake.not_json()
    with pytest.raises(AiMalformed) as caught:
        ask(client_for(fake, clock))
    assert "not JSON" in caught.value.reason
    assert len(fake.requests) == 1


def test_a_json_body_that_is_not_a_chat_completion_is_malformed(fake, clock):
    fake.raw(200, json.dumps({"object": "list", "data": []}))
    with pytest.raises(AiMalformed, match="not a chat completion"):
        ask(client_for(fake, clock))


def test_a_model_refusal_is_malformed_with_its_words_and_its_cost(fake, clock):
    circuit = Circuit(threshold=1, clock=clock)
    fake.refused_by_model("I can't write that.")
    with pytest.raises(AiMalformed, match="I can't write that") as caught:
        ask(client_for(fake, clock, circuit=circuit))
    assert caught.value.completion.prompt_tokens > 0
    assert circuit.state == "closed"  # the server answered: the model declined


def test_a_body_that_is_no_chat_completion_counts_against_the_circuit(fake, clock):
    circuit = Circuit(threshold=1, clock=clock)
    fake.not_json()
    with pytest.raises(AiMalformed) as caught:
        ask(client_for(fake, clock, circuit=circuit))
    assert caught.value.completion is None and circuit.state == "open"


def test_a_truncated_answer_is_an_error_never_half_an_answer(fake, clock):
    fake.truncated('{"subject": "Welc', completion_tokens=5)
    with pytest.raises(AiTruncated) as caught:
        ask(client_for(fake, clock), max_tokens=5)
    assert "5 tokens" in caught.value.reason
    assert caught.value.completion.completion_tokens == 5  # what it cost, for the budget
    assert len(fake.requests) == 1


def test_content_that_is_not_json_is_returned_for_the_caller_to_judge(fake, clock):
    fake.reply("Sure! Here is your subject line: Hello")
    assert ask(client_for(fake, clock)).content == "Sure! Here is your subject line: Hello"


def test_a_wrong_key_is_refused_once_and_never_repeated_in_the_error_or_the_logs(fake, clock, caplog):
    caplog.set_level(logging.DEBUG)
    wrong_key = "sk-alice-wrong-key-0123456789abcdef"
    client = ChatClient(base_url=fake.base_url, api_key=wrong_key, model="gpt-test",
                        circuit=Circuit(clock=clock), sleep=clock.sleep, clock=clock)

    with pytest.raises(AiRefused) as caught:
        ask(client)

    assert caught.value.status == 401
    assert "API key" in caught.value.reason
    assert len(fake.requests) == 1 and clock.sleeps == []
    assert wrong_key not in caught.value.reason and wrong_key not in repr(caught.value)
    assert caplog.records, "the call logged nothing at all: the check below would prove nothing"
    assert wrong_key not in caplog.text


def test_the_key_and_the_prompt_stay_out_of_the_logs_of_a_retried_call(fake, clock, caplog):
    caplog.set_level(logging.DEBUG)
    fake.server_error(500)
    fake.reply('{"subject": "Hi"}')
    ask(client_for(fake, clock))
    assert "AI call" in caplog.text
    assert fake.api_key not in caplog.text
    assert "welcome email" not in caplog.text and "marketing emails" not in caplog.text


def test_a_bad_request_is_refused_with_the_servers_reason_and_not_retried(fake, clock):
    loose = {"type": "object", "properties": {"subject": {"type": "string"}}}  # not valid for strict mode
    with pytest.raises(AiRefused) as caught:
        client_for(fake, clock).complete(MESSAGES, schema=loose, schema_name="subject", max_tokens=50)
    assert caught.value.status == 400
    assert "additionalProperties" in caught.value.reason
    assert len(fake.requests) == 1 and clock.sleeps == []


def test_a_refusal_does_not_count_towards_the_circuit(fake, clock):
    circuit = Circuit(threshold=2, cool_off=30, clock=clock)
    client = ChatClient(base_url=fake.base_url, api_key="sk-wrong", model="gpt-test", circuit=circuit,
                        sleep=clock.sleep, clock=clock)
    for _ in range(3):
        with pytest.raises(AiRefused):
            ask(client)
    assert circuit.state == "closed" and len(fake.requests) == 3


def test_the_circuit_opens_after_repeated_failures_and_stops_calling_the_server(fake, clock):
    circuit = Circuit(threshold=3, cool_off=30, clock=clock)
    client = client_for(fake, clock, circuit=circuit, max_attempts=2)
    for _ in range(3):
        fake.server_error(500)

    with pytest.raises(AiUnavailable):
        ask(client)  # two failures
    with pytest.raises(AiUnavailable):
        ask(client)  # the third opens the circuit: no second try, and no sleep before one
    assert len(fake.requests) == 3 and len(clock.sleeps) == 1
    assert circuit.state == "open"

    with pytest.raises(AiUnavailable) as caught:
        ask(client)
    assert "circuit is open" in caught.value.reason
    assert 0 < caught.value.retry_after <= 30
    assert len(fake.requests) == 3  # refused without a call

    clock.now += 31  # the cool-off passes: one probe goes through and closes it
    fake.reply('{"subject": "Back"}')
    assert ask(client).content == '{"subject": "Back"}'
    assert circuit.state == "closed" and len(fake.requests) == 4


def test_a_failed_probe_opens_the_circuit_again(fake, clock):
    circuit = Circuit(threshold=1, cool_off=10, clock=clock)
    client = client_for(fake, clock, circuit=circuit, max_attempts=1)
    fake.server_error(500)
    fake.server_error(500)
    with pytest.raises(AiUnavailable):
        ask(client)
    clock.now += 11
    with pytest.raises(AiUnavailable):
        ask(client)  # the probe fails
    assert circuit.state == "open" and len(fake.requests) == 2
    with pytest.raises(AiUnavailable, match="circuit is open"):
        ask(client)
    assert len(fake.requests) == 2


def test_a_base_url_with_another_path_and_a_trailing_slash_works(clock):
    with FakeOpenAI(base_path="/proxy/openai/v1") as fake:
        fake.reply('{"subject": "Hi"}')
        client = ChatClient(base_url=fake.base_url + "/", api_key=fake.api_key, model="m",
                            circuit=Circuit(clock=clock), sleep=clock.sleep, clock=clock)
        assert ask(client).content == '{"subject": "Hi"}'
        assert fake.last.path == "/proxy/openai/v1/chat/completions"


def test_a_server_that_is_not_listening_is_unavailable(clock):
    with FakeOpenAI() as gone:
        base_url = gone.base_url
    client = ChatClient(base_url=base_url, api_key="sk-x", model="m", circuit=Circuit(clock=clock),
                        sleep=clock.sleep, clock=clock, max_attempts=2, timeout=1.0)
    with pytest.raises(AiUnavailable, match="cannot reach"):
        ask(client)
    assert len(clock.sleeps) == 1


def test_an_answerer_can_read_the_prompt_and_the_schema(clock):
    seen = []

    def answer(request) -> str:
        seen.append((request.schema_name, request.schema))
        return json.dumps({"subject": "About " + request.messages[-1]["content"][:20]})

    with FakeOpenAI(answerer=answer) as fake:
        completion = ask(client_for(fake, clock))
    assert json.loads(completion.content) == {"subject": "About One subject line for"}
    assert seen == [("subject_line", SCHEMA)]


def test_threads_share_one_client(fake, clock):
    fake.answerer = lambda request: json.dumps({"subject": request.messages[-1]["content"]})
    client = client_for(fake, clock)
    answers: list[str] = []

    def draft(i: int) -> None:
        messages = [MESSAGES[0], {"role": "user", "content": f"subject {i}"}]
        answers.append(json.loads(client.complete(messages, schema=SCHEMA, schema_name="s", max_tokens=20).content)
                       ["subject"])

    threads = [threading.Thread(target=draft, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == sorted(f"subject {i}" for i in range(8))


def test_example_for_fits_a_strict_schema(fake, clock):
    schema = {"type": "object", "additionalProperties": False, "required": ["name", "steps"],
              "properties": {"name": {"type": "string"},
                             "steps": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/step"}}},
              "$defs": {"step": {"type": "object", "additionalProperties": False, "required": ["type", "days"],
                                 "properties": {"type": {"enum": ["delay"]}, "days": {"anyOf": [
                                     {"type": "null"}, {"type": "integer", "minimum": 1}]}}}}}
    fake.answerer = lambda request: json.dumps(example_for(request.schema))
    content = client_for(fake, clock).complete(MESSAGES, schema=schema, schema_name="seq", max_tokens=50).content
    assert json.loads(content) == {"name": "x", "steps": [{"type": "delay", "days": 1}] * 2}


# The fake refuses what OpenAI refuses, with OpenAI's error body: a client that
# passes these tests speaks the protocol, not the fake's dialect.

def post(fake: FakeOpenAI, body: object, *, path: str = "/v1/chat/completions", key: str | None = "right",
         content_type: str = "application/json") -> tuple[int, dict]:
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["Authorization"] = f"Bearer {fake.api_key if key == 'right' else key}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(fake.root_url + path, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


GOOD = {"model": "gpt-test", "messages": MESSAGES, "max_tokens": 10,
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": SCHEMA, "strict": True}}}


@pytest.mark.parametrize("change,status,param", [
    ({"path": "/v1/completions"}, 404, None),
    ({"key": None}, 401, None),
    ({"key": "sk-wrong-0123456789"}, 401, None),
    ({"content_type": "text/plain"}, 400, None),
    ({"body": b"{not json"}, 400, None),
    ({"body": {**GOOD, "model": ""}}, 400, "model"),
    ({"body": {**GOOD, "messages": []}}, 400, "messages"),
    ({"body": {**GOOD, "messages": [{"role": "robot", "content": "hi"}]}}, 400, "messages[0].role"),
    ({"body": {**GOOD, "max_tokens": 0}}, 400, "max_tokens"),
    ({"body": {**GOOD, "temperature": 3}}, 400, "temperature"),
    ({"body": {**GOOD, "prompt": "hi"}}, 400, None),
    ({"body": {**GOOD, "response_format": {"type": "json_schema", "json_schema": {"name": "a b", "schema": SCHEMA}}}},
     400, "response_format.json_schema.name"),
    ({"body": {**GOOD, "response_format": {"type": "json_schema", "json_schema": {
        "name": "s", "strict": True, "schema": {**SCHEMA, "required": []}}}}}, 400, "response_format"),
])
def test_the_fake_refuses_what_openai_refuses(fake, change, status, param):
    fake.reply('{"subject": "never sent"}')
    options = {"body": GOOD, **change}
    got, body = post(fake, options.pop("body"), **options)
    assert got == status
    assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["param"] == param
    assert fake.pending == 1


def test_the_fake_answers_a_well_formed_request_with_a_chat_completion(fake):
    fake.reply('{"subject": "Hi"}', prompt_tokens=12, completion_tokens=3)
    status, body = post(fake, GOOD)
    assert status == 200
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["created"] > 0
    assert body["choices"][0]["message"] == {"role": "assistant", "content": '{"subject": "Hi"}', "refusal": None}
    assert body["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}


def test_a_broken_answerer_is_reported_by_the_fake(fake, clock):
    fake.answerer = lambda request: request.body["no such field"]
    with pytest.raises(AiUnavailable, match="answerer raised KeyError"):
        ask(client_for(fake, clock, max_attempts=1))
