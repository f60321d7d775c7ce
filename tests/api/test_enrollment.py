"""Enrollment: bulk, scoped to the account, safe to retry, only into active sequences."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from models import Enrollment, Subscriber, db, utcnow

URL = "/api/v1/email-sequences"
STEPS = [{"type": "email", "subject": "Hi"}, {"type": "delay", "days": 1}, {"type": "email", "subject": "Again"}]


def active_sequence(client, tenant, settings=None):
    body = {"name": "Drip", "steps": STEPS, **({"settings": settings} if settings else {})}
    created = client.post(URL, json=body, headers=tenant.headers).get_json()
    assert client.post(f"{URL}/{created['id']}/activate", headers=tenant.headers).status_code == 200
    return created["id"]


def subscribers(session, tenant, *emails, status="active"):
    rows = [Subscriber(account_id=tenant.account_id, email=e, status=status) for e in emails]
    session.add_all(rows)
    session.commit()
    return [r.id for r in rows]


def enroll(client, tenant, sequence_id, **body):
    return client.post(f"{URL}/{sequence_id}/subscribers", json=body, headers=tenant.headers)


def test_it_enrolls_subscribers_by_id_due_at_once_at_step_zero(client, alice, session):
    sequence_id = active_sequence(client, alice)
    ids = subscribers(session, alice, "a@example.com", "b@example.com")
    before = utcnow()
    response = enroll(client, alice, sequence_id, subscriber_ids=ids)
    assert response.status_code == 202
    assert response.get_json() == {"enrolled": 2, "skipped": 0}
    rows = session.query(Enrollment).order_by(Enrollment.subscriber_id).all()
    assert [r.subscriber_id for r in rows] == ids
    for row in rows:
        assert (row.status, row.current_step, row.run, row.instance_key) == ("active", 0, 1, "")
        assert row.account_id == alice.account_id
        assert before - timedelta(seconds=1) <= row.next_run_at <= utcnow()


def test_it_creates_unknown_emails_as_subscribers_and_reuses_known_ones(client, alice, session):
    sequence_id = active_sequence(client, alice)
    [known] = subscribers(session, alice, "known@example.com")
    response = enroll(client, alice, sequence_id, emails=["Known@Example.com", "new@example.com"])
    assert response.get_json() == {"enrolled": 2, "skipped": 0}
    emails = {s.email: s.id for s in session.query(Subscriber).filter_by(account_id=alice.account_id)}
    assert set(emails) == {"known@example.com", "new@example.com"} and emails["known@example.com"] == known


def test_an_address_given_in_either_form_of_its_domain_is_the_same_subscriber(client, alice, session):
    # Stored as audience.fields.normalise_email writes it (the Unicode domain), so
    # enrolling the punycode form neither duplicates the subscriber nor slips past
    # a suppression written in the other form.
    sequence_id = active_sequence(client, alice)
    [known] = subscribers(session, alice, "ada@bücher.de")
    assert enroll(client, alice, sequence_id, emails=["Ada@xn--bcher-kva.de"]).get_json() == {"enrolled": 1, "skipped": 0}
    assert [s.id for s in session.query(Subscriber).filter_by(account_id=alice.account_id)] == [known]


def test_it_does_not_enroll_anyone_twice_when_a_request_is_retried(client, alice, session):
    sequence_id = active_sequence(client, alice)
    ids = subscribers(session, alice, "a@example.com", "b@example.com")
    assert enroll(client, alice, sequence_id, subscriber_ids=ids).get_json() == {"enrolled": 2, "skipped": 0}
    assert enroll(client, alice, sequence_id, subscriber_ids=ids).get_json() == {"enrolled": 0, "skipped": 2}
    assert enroll(client, alice, sequence_id, emails=["a@example.com"]).get_json() == {"enrolled": 0, "skipped": 1}
    assert session.query(Enrollment).count() == 2


@pytest.mark.committing  # two connections race on the unique index
def test_it_lets_the_unique_key_settle_two_racing_requests(client, alice, session):
    from sequencing.enroll import enroll_subscribers

    sequence_id = active_sequence(client, alice)
    ids = subscribers(session, alice, "a@example.com")
    first = db.new_session()
    assert enroll_subscribers(first, alice.account_id, sequence_id, ids, now=utcnow()) == (1, 0)
    results: list[tuple[int, int]] = []

    def second() -> None:
        with db.session_scope() as other:  # blocks on the unique index until the first commits
            results.append(enroll_subscribers(other, alice.account_id, sequence_id, ids, now=utcnow()))

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=1)
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert results == [(0, 1)]
    assert session.query(Enrollment).count() == 1


def test_it_skips_subscribers_who_are_not_active(client, alice, session):
    sequence_id = active_sequence(client, alice)
    gone = subscribers(session, alice, "gone@example.com", status="unsubscribed")
    bounced = subscribers(session, alice, "bounced@example.com", status="bounced")
    response = enroll(client, alice, sequence_id, subscriber_ids=gone + bounced, emails=["bounced@example.com"])
    assert response.get_json() == {"enrolled": 0, "skipped": 3}


def test_it_counts_bobs_and_unknown_subscriber_ids_as_skipped(client, alice, bob, session):
    sequence_id = active_sequence(client, alice)
    bobs = subscribers(session, bob, "bob-sub@example.com")
    mine = subscribers(session, alice, "mine@example.com")
    response = enroll(client, alice, sequence_id, subscriber_ids=bobs + mine + [999_999])
    assert response.get_json() == {"enrolled": 1, "skipped": 2}
    assert [e.subscriber_id for e in session.query(Enrollment)] == mine


def test_it_refuses_to_enroll_into_a_draft_or_paused_sequence(client, alice, session):
    ids = subscribers(session, alice, "a@example.com")
    draft = client.post(URL, json={"name": "Draft", "steps": STEPS}, headers=alice.headers).get_json()["id"]
    response = enroll(client, alice, draft, subscriber_ids=ids)
    assert response.status_code == 409 and "draft" in response.get_json()["message"]
    paused = active_sequence(client, alice)
    client.post(f"{URL}/{paused}/pause", headers=alice.headers)
    assert enroll(client, alice, paused, subscriber_ids=ids).status_code == 409
    assert session.query(Enrollment).count() == 0


def test_it_hides_alices_sequence_from_bob(client, alice, bob, session):
    sequence_id = active_sequence(client, alice)
    ids = subscribers(session, bob, "b@example.com")
    assert enroll(client, bob, sequence_id, subscriber_ids=ids).status_code == 404
    assert client.get(f"{URL}/{sequence_id}/enrollments", headers=bob.headers).status_code == 404
    assert enroll(client, alice, 99_999_999_999, subscriber_ids=[1]).status_code == 404


def test_it_requires_credentials(client, alice):
    sequence_id = active_sequence(client, alice)
    assert client.post(f"{URL}/{sequence_id}/subscribers", json={"subscriber_ids": [1]}).status_code == 401
    assert client.get(f"{URL}/{sequence_id}/enrollments").status_code == 401


def test_it_refuses_10001_subscribers_in_one_request(client, alice):
    sequence_id = active_sequence(client, alice)
    response = enroll(client, alice, sequence_id, subscriber_ids=list(range(1, 10_002)))
    assert response.status_code == 422
    assert "subscriber_ids" in response.get_json()["errors"]["json"]
    mixed = enroll(client, alice, sequence_id, subscriber_ids=list(range(1, 5_002)),
                   emails=[f"u{i}@example.com" for i in range(5_000)])
    assert mixed.status_code == 422


def test_it_enrolls_10000_new_emails_in_one_request(client, alice, session):
    sequence_id = active_sequence(client, alice)
    emails = [f"user{i}@example.com" for i in range(10_000)]
    response = enroll(client, alice, sequence_id, emails=emails)
    assert response.status_code == 202
    assert response.get_json() == {"enrolled": 10_000, "skipped": 0}
    assert session.query(Enrollment).count() == 10_000


def test_it_names_the_bad_field_of_an_enroll_request(client, alice):
    sequence_id = active_sequence(client, alice)
    cases = [({}, "subscriber_ids"), ({"emails": ["not-an-email"]}, "emails"),
             ({"subscriber_ids": ["1"]}, "subscriber_ids"), ({"subscriber_ids": [10**20]}, "subscriber_ids"),
             ({"subscriber_ids": None}, "subscriber_ids"), ({"emails": "a@example.com"}, "emails"),
             ({"subscriber_ids": [True]}, "subscriber_ids"), ({"everyone": True}, "everyone")]
    for body, field in cases:
        response = enroll(client, alice, sequence_id, **body)
        assert response.status_code == 422, body
        assert field in response.get_json()["errors"]["json"], body


def test_it_lists_enrollments_with_the_subscribers_email(client, alice, session):
    sequence_id = active_sequence(client, alice)
    enroll(client, alice, sequence_id, emails=["a@example.com", "b@example.com", "c@example.com"])
    response = client.get(f"{URL}/{sequence_id}/enrollments?page_size=2", headers=alice.headers)
    assert response.status_code == 200 and "X-Pagination" in response.headers
    page = response.get_json()
    assert [e["email"] for e in page] == ["a@example.com", "b@example.com"]
    assert set(page[0]) >= {"id", "subscriber_id", "email", "status", "current_step", "next_run_at",
                            "enrolled_at", "completed_at"}
    assert page[0]["status"] == "active" and page[0]["completed_at"] is None
    second = client.get(f"{URL}/{sequence_id}/enrollments?page=2&page_size=2", headers=alice.headers).get_json()
    assert [e["email"] for e in second] == ["c@example.com"]
    done = client.get(f"{URL}/{sequence_id}/enrollments?status=completed", headers=alice.headers).get_json()
    assert done == []


def test_it_re_enrolls_after_completion_only_when_the_sequence_allows_it(client, alice, session):
    strict = active_sequence(client, alice)
    again = active_sequence(client, alice, settings={"reentry": "after_completion"})
    ids = subscribers(session, alice, "a@example.com")
    for sequence_id in (strict, again):
        enroll(client, alice, sequence_id, subscriber_ids=ids)
    session.query(Enrollment).update({"status": "completed", "completed_at": utcnow()})
    session.commit()
    assert enroll(client, alice, strict, subscriber_ids=ids).get_json() == {"enrolled": 0, "skipped": 1}
    assert enroll(client, alice, again, subscriber_ids=ids).get_json() == {"enrolled": 1, "skipped": 0}
    assert enroll(client, alice, again, subscriber_ids=ids).get_json() == {"enrolled": 0, "skipped": 1}
    runs = sorted(e.run for e in session.query(Enrollment).filter_by(sequence_id=again))
    assert runs == [1, 2]


def test_a_page_far_past_the_end_is_empty_not_an_error(client, alice):
    sequence_id = active_sequence(client, alice)
    enroll(client, alice, sequence_id, emails=["a@example.com"])
    response = client.get(f"{URL}/{sequence_id}/enrollments?page=100000000000000000&page_size=100", headers=alice.headers)
    assert response.status_code == 200 and response.get_json() == []
