"""An enrollment whose advance keeps failing shows why in the enrollments list,
while it is retried and once it is failed."""
from __future__ import annotations

from sqlalchemy import update

from models import Enrollment, Step, utcnow
from sequencing.engine import MAX_CRASHES
from tests.support.engine import run_due

URL = "/api/v1/email-sequences"


def test_the_enrollments_list_shows_the_crashes_and_the_reason_an_enrollment_failed(client, alice, session):
    created = client.post(URL, json={"name": "Drip", "steps": [{"type": "email", "subject": "Hi"}]},
                          headers=alice.headers).get_json()
    sequence_id = created["id"]
    assert client.post(f"{URL}/{sequence_id}/activate", headers=alice.headers).status_code == 200
    client.post(f"{URL}/{sequence_id}/subscribers", json={"emails": ["a@example.com"]}, headers=alice.headers)
    # A step row the API would not have written: variants as bare names.
    session.execute(update(Step).where(Step.sequence_id == sequence_id)
                    .values(config={"subject": "Hi", "variants": ["A"]}))
    session.commit()

    def listed() -> dict:
        [row] = client.get(f"{URL}/{sequence_id}/enrollments", headers=alice.headers).get_json()
        return row

    fresh = listed()
    assert (fresh["crashes"], fresh["error"]) == (0, None)
    now = utcnow()
    run_due(now)
    retried = listed()
    assert (retried["status"], retried["crashes"]) == ("active", 1)
    assert retried["error"].startswith("advance crashed: AttributeError")
    for _ in range(MAX_CRASHES - 1):
        session.expire_all()
        now = session.get(Enrollment, retried["id"]).next_run_at
        run_due(now)
    failed = listed()
    assert (failed["status"], failed["crashes"]) == ("failed", MAX_CRASHES)
    assert failed["exit_reason"] == failed["error"]
    assert "AttributeError" in failed["exit_reason"]
    assert client.get(f"{URL}/{sequence_id}/enrollments?status=failed", headers=alice.headers).get_json() != []
    [step] = client.get(f"{URL}/{sequence_id}/funnel", headers=alice.headers).get_json()["steps"]
    assert (step["entered"], step["passed"], step["failed"], step["waiting"]) == (1, 0, 1, 0), "failed once, at step 0"
