"""A template that would build a huge value is refused with a 422 naming it, by every
endpoint that renders one, without the web process building that value."""
from __future__ import annotations

import pytest

from tests.support.memory import allocation_peak

# What a refused request may allocate at its peak, far below the hundreds of MB
# each of these templates built before it was refused (or before it finished).
PEAK_BYTES = 64 * 2**20
HOSTILE = ["{{ lipsum(1000000) }}", "{{ range(100000)|join('x' * 10000) }}", "{{ [('x' * 100000)] * 3000 }}"]


@pytest.mark.parametrize("source", HOSTILE)
def test_a_preview_of_a_template_that_would_build_a_huge_value_is_a_422_naming_the_template(client, alice, source):
    created = client.post("/api/v1/templates", json={"name": "n", "subject": "Hi", "html": f"<p>{source}</p>"},
                          headers=alice.headers).get_json()
    response, peak = allocation_peak(lambda: client.post(f"/api/v1/templates/{created['id']}/preview", json={},
                                                         headers=alice.headers))
    assert response.status_code == 422
    message = response.get_json()["errors"]["json"]["template"][0]
    assert "too large" in message
    assert peak < PEAK_BYTES


@pytest.mark.parametrize("source", HOSTILE)
def test_the_pre_flight_check_and_activation_score_such_an_email_as_written_without_building_it(client, alice,
                                                                                                  source):
    steps = [{"type": "email", "subject": "Welcome", "html": f"<p>{source}</p>"}]
    sid = client.post("/api/v1/email-sequences", json={"name": "Big", "steps": steps},
                      headers=alice.headers).get_json()["id"]
    report, peak = allocation_peak(lambda: client.get(f"/api/v1/email-sequences/{sid}/preflight",
                                                      headers=alice.headers))
    assert report.status_code == 200 and len(report.get_json()["emails"]) == 1
    assert peak < PEAK_BYTES
    activated, peak = allocation_peak(lambda: client.post(f"/api/v1/email-sequences/{sid}/activate", json={},
                                                          headers=alice.headers))
    assert activated.status_code in (200, 422), activated.get_json()
    assert peak < PEAK_BYTES
