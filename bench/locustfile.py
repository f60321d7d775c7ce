"""Load on the web process as readers and an integrating app make it: the open pixel,
the click redirect, enrollment through the API and one API read.

Links must be signed with the platform's SECRET_KEY and name messages that exist,
or every request would be a cheap 404. So this file reads a plan (JSON, the path in
``ESEQ_LOCUST_PLAN``) that ``bench/locust_run.py`` writes after seeding a throwaway
database: ``api_key``, ``sequence_id``, and the ``opens`` and ``clicks`` paths. Run
it through that script, which also starts the web process as the Procfile does; by
hand against such a server::

    ESEQ_LOCUST_PLAN=plan.json locust -f bench/locustfile.py --headless --host http://127.0.0.1:8000 -u 20 -r 20 -t 60s

``ESEQ_LOCUST_RATE`` (requests a second per simulated user; unset or 0: none, each
user sends its next request as soon as its last is answered) makes the load an
offered rate instead of the server's saturation point.
"""
from __future__ import annotations

import json
import os
import random
import uuid

from locust import between, constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser

with open(os.environ["ESEQ_LOCUST_PLAN"]) as _f:
    PLAN = json.load(_f)
_RATE = float(os.environ.get("ESEQ_LOCUST_RATE") or 0)


class Reader(FastHttpUser):
    """A mix weighted as mail traffic is: opens far above clicks, clicks above the
    API calls that enroll people."""

    wait_time = constant_throughput(_RATE) if _RATE > 0 else between(0, 0)

    def on_start(self) -> None:
        self.api = {"X-API-Key": PLAN["api_key"], "Content-Type": "application/json"}

    @task(10)
    def open_pixel(self) -> None:
        with self.client.get(random.choice(PLAN["opens"]), name="open pixel /t/o/<token>.gif",
                             catch_response=True) as response:
            if response.status_code != 200 or response.headers.get("Content-Type") != "image/gif":
                response.failure(f"pixel answered {response.status_code}")

    @task(4)
    def click(self) -> None:
        # Never followed: the destination is outside this machine; the 302 is the answer measured.
        with self.client.get(random.choice(PLAN["clicks"]), name="click redirect /t/c/<token>",
                             allow_redirects=False, catch_response=True) as response:
            if response.status_code != 302 or not response.headers.get("Location", "").startswith("https://"):
                response.failure(f"click answered {response.status_code}")
            else:
                response.success()

    @task(2)
    def enroll(self) -> None:
        body = json.dumps({"emails": [f"load-{uuid.uuid4().hex}@bench.test"]})
        with self.client.post(f"/api/v1/email-sequences/{PLAN['sequence_id']}/subscribers", data=body,
                              headers=self.api, name="enroll POST /api/v1/email-sequences/<id>/subscribers",
                              catch_response=True) as response:
            if response.status_code != 202 or (response.json() or {}).get("enrolled") != 1:
                response.failure(f"enroll answered {response.status_code}: {response.text[:200]}")

    @task(1)
    def read_sequence(self) -> None:
        with self.client.get(f"/api/v1/email-sequences/{PLAN['sequence_id']}", headers=self.api,
                             name="API GET /api/v1/email-sequences/<id>", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"sequence answered {response.status_code}")
