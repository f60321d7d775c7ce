"""The "entered segment" trigger: a sequence with ``settings.trigger = {"type":
"segment_entered", "segment_id"}`` enrolls who enters the segment after its first
check, once; time passes only through the checks' ``now``."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models import Enrollment, Event, Segment, Subscriber, utcnow
from models.segment import SegmentMember
from schedules.beat import beat_schedule
from sequencing.segment_entries import check_segment, segments_to_check

URL = "/api/v1/segments"
SEQUENCES = "/api/v1/email-sequences"
STEPS = [{"type": "email", "subject": "Hi", "text": "Hello"}]


def _segment(client, tenant, filter_) -> int:
    response = client.post(URL, json={"name": "s", "filter": filter_}, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def _triggered_sequence(client, tenant, segment_id: int, reentry: str = "never") -> int:
    body = {"name": "Welcome to VIP", "steps": STEPS,
            "settings": {"trigger": {"type": "segment_entered", "segment_id": segment_id}, "reentry": reentry}}
    created = client.post(SEQUENCES, json=body, headers=tenant.headers)
    assert created.status_code == 201, created.get_json()
    sequence_id = int(created.get_json()["id"])
    assert client.post(f"{SEQUENCES}/{sequence_id}/activate", json={"override_preflight": True},
                       headers=tenant.headers).status_code == 200
    return sequence_id


def _people(session, tenant, *specs) -> list[int]:
    rows = [Subscriber(account_id=tenant.account_id, email=email, tags=tags, attributes={}) for email, tags in specs]
    session.add_all(rows)
    session.commit()
    return [r.id for r in rows]


def _enrolled(session, sequence_id: int) -> list[tuple[int, int]]:
    return sorted(session.execute(select(Enrollment.subscriber_id, Enrollment.run).where(
        Enrollment.sequence_id == sequence_id)).all())


def test_the_trigger_needs_a_segment_of_the_account(client, alice, bob):
    alices = _segment(client, alice, {"tag": "vip"})
    for segment_id in (alices, 999_999):
        body = {"name": "x", "steps": STEPS, "settings": {"trigger": {"type": "segment_entered", "segment_id": segment_id}}}
        response = client.post(SEQUENCES, json=body, headers=bob.headers)
        assert response.status_code == 422, response.get_json()
        assert "settings.trigger.segment_id" in response.get_json()["errors"]["json"]
    body = {"name": "x", "steps": STEPS, "settings": {"trigger": {"type": "segment_entered"}}}
    missing = client.post(SEQUENCES, json=body, headers=alice.headers)
    assert "settings.trigger.segment_id" in missing.get_json()["errors"]["json"]
    body["settings"]["trigger"] = {"type": "segment_entered", "segment_id": alices, "tag": "vip"}
    assert "settings.trigger.tag" in client.post(SEQUENCES, json=body, headers=alice.headers).get_json()["errors"]["json"]


def test_members_at_the_first_check_do_not_enter_those_who_join_later_do_once(client, alice, session):
    ann, bob = _people(session, alice, ("ann@example.com", ["vip"]), ("bob@example.com", []))
    segment_id = _segment(client, alice, {"tag": "vip"})
    sequence_id = _triggered_sequence(client, alice, segment_id)
    assert segments_to_check(session) == [segment_id]
    now = utcnow()
    assert check_segment(session, segment_id, now) == 0  # the first check only records who is in
    assert _enrolled(session, sequence_id) == []
    assert session.scalars(select(SegmentMember.subscriber_id)).all() == [ann]

    session.get(Subscriber, bob).tags = ["vip"]
    session.commit()
    assert check_segment(session, segment_id, now + timedelta(minutes=1)) == 1
    assert _enrolled(session, sequence_id) == [(bob, 1)]
    assert check_segment(session, segment_id, now + timedelta(minutes=2)) == 0  # already in: not entering again
    assert session.get(Segment, segment_id).members_at == now + timedelta(minutes=2)

    # Leaving and coming back is entering again; re-entry "never" keeps bob to one run.
    session.get(Subscriber, bob).tags = []
    session.commit()
    check_segment(session, segment_id, now + timedelta(minutes=3))
    assert sorted(session.scalars(select(SegmentMember.subscriber_id))) == [ann]
    session.get(Subscriber, bob).tags = ["vip"]
    session.commit()
    assert check_segment(session, segment_id, now + timedelta(minutes=4)) == 0
    assert _enrolled(session, sequence_id) == [(bob, 1)]


def test_time_passing_moves_people_into_a_segment(client, alice, session):
    """Nobody changes; only ``now`` does: ann's click ages out of "clicked in the
    last 30 days", so she enters "not clicked in the last 30 days"."""
    ann, bob = _people(session, alice, ("ann@example.com", []), ("bob@example.com", []))
    now = utcnow()
    session.add(Event(account_id=alice.account_id, subscriber_id=ann, name="clicked", occurred_at=now - timedelta(days=5)))
    session.add(Event(account_id=alice.account_id, subscriber_id=bob, name="clicked", occurred_at=now - timedelta(days=1)))
    session.commit()
    segment_id = _segment(client, alice, {"not": {"clicked_within_days": 30}})
    sequence_id = _triggered_sequence(client, alice, segment_id, reentry="always")
    check_segment(session, segment_id, now)
    assert check_segment(session, segment_id, now + timedelta(days=20)) == 0
    assert check_segment(session, segment_id, now + timedelta(days=26)) == 1
    assert _enrolled(session, sequence_id) == [(ann, 1)]
    assert check_segment(session, segment_id, now + timedelta(days=32)) == 1
    assert _enrolled(session, sequence_id) == [(ann, 1), (bob, 1)]


def test_a_new_filter_starts_the_snapshot_again_without_enrolling(client, alice, session):
    _ann, bob = _people(session, alice, ("ann@example.com", ["vip"]), ("bob@example.com", ["gold"]))
    segment_id = _segment(client, alice, {"tag": "vip"})
    sequence_id = _triggered_sequence(client, alice, segment_id)
    now = utcnow()
    check_segment(session, segment_id, now)
    assert client.patch(f"{URL}/{segment_id}", json={"filter": {"tag": "gold"}},
                        headers=alice.headers).status_code == 200
    assert check_segment(session, segment_id, now + timedelta(minutes=1)) == 0
    assert session.scalars(select(SegmentMember.subscriber_id)).all() == [bob]
    assert _enrolled(session, sequence_id) == []


def test_only_the_segments_own_account_and_active_sequences_are_fed(client, alice, bob, session):
    _people(session, alice, ("ann@example.com", []))
    segment_id = _segment(client, alice, {"tag": "vip"})
    sequence_id = _triggered_sequence(client, alice, segment_id)
    other = client.post(SEQUENCES, json={"name": "draft", "steps": STEPS, "settings": {
        "trigger": {"type": "segment_entered", "segment_id": segment_id}}}, headers=alice.headers).get_json()["id"]
    now = utcnow()
    check_segment(session, segment_id, now)
    session.add(Subscriber(account_id=bob.account_id, email="vip@example.com", tags=["vip"], attributes={}))
    ann = session.scalar(select(Subscriber).where(Subscriber.email == "ann@example.com"))
    ann.tags = ["vip"]
    session.commit()
    assert check_segment(session, segment_id, now + timedelta(minutes=1)) == 1
    assert _enrolled(session, sequence_id) == [(ann.id, 1)]
    assert _enrolled(session, other) == []  # a draft is not fed


def test_a_deleted_segment_feeds_nothing_and_breaks_nothing(client, alice, session):
    _people(session, alice, ("ann@example.com", ["vip"]))
    segment_id = _segment(client, alice, {"tag": "vip"})
    sequence_id = _triggered_sequence(client, alice, segment_id)
    check_segment(session, segment_id, utcnow())
    assert session.scalars(select(SegmentMember.id)).all() != []
    assert client.delete(f"{URL}/{segment_id}", headers=alice.headers).status_code == 204
    assert session.scalars(select(SegmentMember.id)).all() == []  # the snapshot went with it
    assert check_segment(session, segment_id, utcnow()) == 0
    assert _enrolled(session, sequence_id) == []


def test_beats_task_checks_every_triggering_segment(client, alice, session):
    from tasks.app import app
    from tasks.audience import check_segment_entries

    entry = beat_schedule(1.0)["audience-check-segment-entries"]
    assert app.tasks[entry["task"]].name == check_segment_entries.name
    ann, = _people(session, alice, ("ann@example.com", []))
    segment_id = _segment(client, alice, {"tag": "vip"})
    sequence_id = _triggered_sequence(client, alice, segment_id)
    assert check_segment_entries() == 0
    session.get(Subscriber, ann).tags = ["vip"]
    session.commit()
    assert check_segment_entries() == 1
    assert _enrolled(session, sequence_id) == [(ann, 1)]
