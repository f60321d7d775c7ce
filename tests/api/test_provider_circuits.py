"""A circuit's state as operators see it, in the API and in the metrics: an open
circuit past its cool-down is half_open (its provider is being tried again)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from delivery.routing import CIRCUIT_COOLDOWN
from models import Provider, db
from models.base import utcnow
from tests.conftest import METRICS_TOKEN
from tests.support.prometheus import sample

RELAY = {"name": "relay", "kind": "smtp", "config": {"host": "93.184.216.34", "port": 587}}


@pytest.mark.committing  # the metrics' gauges are read on a connection of their own
def test_an_open_circuit_shows_open_then_half_open_after_its_cooldown(client, alice):
    fresh, cooled = (client.post("/api/v1/providers", json={**RELAY, "name": name}, headers=alice.headers)
                     .get_json()["id"] for name in ("fresh", "cooled"))
    now = utcnow()
    with db.session_scope() as s:
        for pid, opened in ((fresh, now), (cooled, now - CIRCUIT_COOLDOWN - timedelta(seconds=5))):
            p = s.get(Provider, pid)
            p.circuit_state, p.circuit_opened_at, p.consecutive_failures = "open", opened, 5
    shown = {p["id"]: p["health"]["circuit_state"]
             for p in client.get("/api/v1/providers", headers=alice.headers).get_json()}
    assert shown == {fresh: "open", cooled: "half_open"}
    assert client.get(f"/api/v1/providers/{cooled}", headers=alice.headers).get_json()["health"]["circuit_state"] \
        == "half_open"
    text = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).get_data(as_text=True)
    assert sample(text, "eseq_provider_circuit", provider_id=str(fresh), state="open") == 1
    assert sample(text, "eseq_provider_circuit", provider_id=str(cooled), state="half_open") == 1
