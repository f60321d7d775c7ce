"""Benchmark of the model client's own cost (issue 20: the platform's overhead per
draft beyond the model's time), in process, against the fake chat-completions
server answering at once; and of drafting from a blueprint, which has no model.

Prints, in milliseconds: building a ChatClient (the ``openai`` package's client:
build one per process, not per draft); one ``complete()`` p50/p99; the same
request and answer as a bare ``http.client`` round trip to the same server (the
loopback and the fake's own work); their difference is what the client adds per
call. Then ``draft_sequence`` p50/p99 for 5 and 10 emails.

Run: ``.venv/bin/python -m bench.ai_client [--calls 500]``
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ai.blueprints import draft_sequence  # noqa: E402
from ai.circuit import Circuit  # noqa: E402
from ai.client import ChatClient  # noqa: E402
from bench import timed  # noqa: E402
from tests.support.fake_openai import FakeOpenAI, example_for  # noqa: E402

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["subjects"],
          "properties": {"subjects": {"type": "array", "minItems": 5, "items": {"type": "string"}}}}
MESSAGES = [{"role": "system", "content": "You write subject lines for marketing emails. " * 20},
            {"role": "user", "content": "Five subject lines for a spring sale email to weekend hikers. " * 5}]
BRIEF = {"goal": "abandoned cart", "product": "Trailhead boots", "audience": "weekend hikers", "tone": "friendly",
         "language": "en", "sender_name": "Maya from Trailhead"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()

    with FakeOpenAI(answerer=lambda request: json.dumps(example_for(request.schema or {}))) as fake:
        started = time.perf_counter()
        client = ChatClient(base_url=fake.base_url, api_key=fake.api_key, model="gpt-test", circuit=Circuit())
        built = (time.perf_counter() - started) * 1000
        ask = lambda: client.complete(MESSAGES, schema=SCHEMA, schema_name="subject_lines",  # noqa: E731
                                      max_tokens=300)
        ask()  # the first call opens the connection
        client_p50, client_p99 = timed(ask, args.calls)

        body = json.dumps({"model": "gpt-test", "messages": MESSAGES, "max_tokens": 300, "temperature": 0.7,
                           "response_format": {"type": "json_schema", "json_schema": {
                               "name": "subject_lines", "schema": SCHEMA, "strict": True}}}).encode()
        connection = http.client.HTTPConnection("127.0.0.1", int(fake.root_url.rsplit(":", 1)[1]), timeout=10)
        headers = {"Authorization": f"Bearer {fake.api_key}", "Content-Type": "application/json"}

        def bare() -> None:
            connection.request("POST", "/v1/chat/completions", body, headers)
            answer = connection.getresponse()
            json.loads(answer.read())
            assert answer.status == 200

        bare()
        bare_p50, bare_p99 = timed(bare, args.calls)
        connection.close()
        client.close()

    print(f"ChatClient built once:              {built:7.2f} ms")
    print(f"complete(), fake answering at once: p50 {client_p50:6.2f} ms  p99 {client_p99:6.2f} ms  ({args.calls} calls)")
    print(f"bare http.client round trip:        p50 {bare_p50:6.2f} ms  p99 {bare_p99:6.2f} ms")
    print(f"the client's own cost per call:     p50 {client_p50 - bare_p50:6.2f} ms")
    for emails in (5, 10):
        p50, p99 = timed(lambda: draft_sequence({**BRIEF, "emails": emails}, ["company"]), args.calls)
        print(f"draft_sequence, {emails:2d} emails:          p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")


if __name__ == "__main__":
    main()
