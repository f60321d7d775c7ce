"""Provider webhooks: verified per provider, stored once, processed on the queue.

Payloads are shaped as each provider documents them (SendGrid Event Webhook,
Mailgun webhooks, Postmark webhooks, SES notifications through SNS). Every
forgery stores nothing; a replay answers 200 and changes nothing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
import urllib.error
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.message import Message as Headers
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from inbound.ses import string_to_sign
from inbound.tokens import account_token
from models import Enrollment, Event, InboundEvent, Message, Provider, Subscriber, Suppression, db
from tests.support import factories
from tests.support.provider_signing import NOW, SG_PUBLIC, sendgrid_headers
from tests.support.waiting import wait_for

# --- provider stand-ins: keys and signatures made here, as the providers make theirs ---

MG_KEY = "mailgun-signing-key-0123456789abcdef"
PM_USER, PM_PASSWORD = "postmark-hooks", "s3cret-pm-password"
SNS_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"


def _sns_keypair() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


SNS_KEY, SNS_CERT = _sns_keypair()


def sendgrid_bounce(message_id: str = "14c5d75ce93.dfd.64b469", event_id: str = "6g4ZI7SA-xmRDv57GoPIPw==",
                    kind: str = "bounce") -> bytes:
    return json.dumps([{
        "email": "user0@example.test", "timestamp": NOW - 5, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": "bounce", "category": "cat facts", "sg_event_id": event_id,
        "sg_message_id": f"{message_id}.filter0001.16648.5515E0B88.0", "reason": "500 unknown recipient",
        "status": "5.0.0", "type": kind, "bounce_classification": "Invalid Address"}]).encode()


def mailgun_body(event_data: dict[str, Any], key: str = MG_KEY, timestamp: int = NOW, token: str | None = None) -> bytes:
    token = token or hashlib.sha256(json.dumps(event_data).encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": str(timestamp), "token": token, "signature": signature},
                       "event-data": event_data}).encode()


def mailgun_failed(message_id: str = "20130503182626.18666.16540@sandbox.mailgun.org",
                   severity: str = "permanent", event_id: str = "G9Bn5sl1TC6nu79C8C0bwg") -> dict[str, Any]:
    return {"id": event_id, "timestamp": NOW - 5, "log-level": "error", "event": "failed", "severity": severity,
            "reason": "bounce", "recipient": "user0@example.test", "recipient-domain": "example.test",
            "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist",
                                "description": "", "attempt-no": 1, "retry-seconds": 0},
            "message": {"headers": {"to": "user0@example.test", "message-id": message_id,
                                    "from": "alice@sender.test", "subject": "Welcome"}, "size": 111},
            "flags": {"is-routed": False, "is-authenticated": True, "is-system-test": False, "is-test-mode": False}}


def postmark_bounce(message_id: str = "883953f4-6105-42a2-a16a-77a8eac79483", bounce_id: int = 42,
                    kind: str = "HardBounce") -> bytes:
    return json.dumps({
        "RecordType": "Bounce", "MessageStream": "outbound", "ID": bounce_id, "Type": kind, "TypeCode": 1,
        "Name": "Hard bounce", "Tag": "Test", "MessageID": message_id, "Metadata": {"a_key": "a_value"},
        "ServerID": 23, "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "Test bounce details", "Email": "user0@example.test", "From": "alice@sender.test",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z", "DumpAvailable": True, "Inactive": True, "CanActivate": True,
        "Subject": "Test subject", "Content": "<Full dump of bounce>"}).encode()


def sns_envelope(notification: dict[str, Any], *, message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                 key: rsa.RSAPrivateKey = SNS_KEY, topic: str = TOPIC, timestamp: datetime | None = None,
                 kind: str = "Notification", version: str = "1") -> dict[str, Any]:
    moment = (timestamp or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    envelope: dict[str, Any] = {"Type": kind, "MessageId": message_id, "TopicArn": topic,
                                "Message": json.dumps(notification), "Timestamp": moment,
                                "SignatureVersion": version, "SigningCertURL": SNS_CERT_URL,
                                "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&x=1"}
    if kind == "SubscriptionConfirmation":
        envelope.update(Token="2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a7",
                        SubscribeURL=f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token=2336",
                        Message=f"You have chosen to subscribe to the topic {topic}.")
        del envelope["UnsubscribeURL"]
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    envelope["Signature"] = base64.b64encode(key.sign(string_to_sign(envelope), padding.PKCS1v15(), algorithm)).decode()
    return envelope


def ses_bounce(message_id: str = "0100018c-ses-message-id-000000", bounce_type: str = "Permanent") -> dict[str, Any]:
    return {"notificationType": "Bounce",
            "bounce": {"bounceType": bounce_type, "bounceSubType": "General",
                       "bouncedRecipients": [{"emailAddress": "user0@example.test", "action": "failed",
                                              "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
                       "timestamp": "2016-01-27T14:59:38.237Z", "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
                       "remoteMtaIp": "127.0.2.0"},
            "mail": {"timestamp": "2016-01-27T14:59:38.237Z", "source": "alice@sender.test",
                     "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender.test",
                     "sendingAccountId": "123456789012", "messageId": message_id,
                     "destination": ["user0@example.test"]}}


# --- fixtures ---

@pytest.fixture
def sns(app, monkeypatch):
    fetched: list[str] = []
    visited: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return SNS_CERT

    monkeypatch.setitem(app.config, "ESEQ_SNS_CERT_FETCHER", fetch)
    monkeypatch.setitem(app.config, "ESEQ_SNS_SUBSCRIBE_VISITOR", visited.append)
    return {"fetched": fetched, "visited": visited}


@pytest.fixture
def providers(alice):
    configs = {"sendgrid": {"api_key": "SG.x", "webhook_public_key": SG_PUBLIC},
               "mailgun": {"api_key": "k", "domain": "mg.sender.test", "webhook_signing_key": MG_KEY},
               "postmark": {"server_token": "t", "webhook_username": PM_USER, "webhook_password": PM_PASSWORD},
               "ses": {"access_key_id": "AKID", "secret_access_key": "x", "region": "us-east-1",
                       "webhook_topic_arns": [TOPIC]}}
    with db.session_scope() as s:
        s.add_all([Provider(account_id=alice.account_id, name=kind, kind=kind, config=config)
                   for kind, config in configs.items()])
    return alice


def url(settings, provider: str, account_id: int) -> str:
    return f"/webhooks/{provider}/{account_token(settings.secret_key, account_id)}"


def sent_message(account_id: int, provider: str, provider_message_id: str, enroll: bool = False) -> dict[str, int]:
    (subscriber_id,) = factories.subscribers(account_id, 1)
    ids = {"subscriber": subscriber_id}
    if enroll:
        sequence_id = factories.sequence(account_id, [{"type": "delay", "days": 30},
                                                      {"type": "email", "subject": "Later", "text": "x"}])
        (ids["enrollment"],) = factories.enroll(account_id, sequence_id, [subscriber_id],
                                                datetime.now(timezone.utc) + timedelta(days=30))
    with db.session_scope() as s:
        message = Message(account_id=account_id, subscriber_id=subscriber_id, idempotency_key=f"t-{provider_message_id}",
                          status="sent", to_email="user0@example.test", subject="Welcome", provider=provider,
                          provider_message_id=provider_message_id, sent_at=datetime.now(timezone.utc))
        s.add(message)
        s.flush()
        ids["message"] = message.id
    return ids


def stored() -> int:
    with db.session_scope() as s:
        return s.scalar(select(func.count()).select_from(InboundEvent))


def snapshot() -> tuple[int, int, int]:
    with db.session_scope() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (InboundEvent, Event, Suppression))


# --- SendGrid ---

def test_a_signed_sendgrid_batch_is_stored_and_acknowledged(client, settings, providers):
    body = sendgrid_bounce()
    response = client.post(url(settings, "sendgrid", providers.account_id), data=body, headers=sendgrid_headers(body))
    assert response.status_code == 200, response.get_json()
    with db.session_scope() as s:
        row = s.scalars(select(InboundEvent)).one()
        assert (row.provider, row.provider_event_id, row.kind, row.bounce_type, row.message_ref, row.account_id) == (
            "sendgrid", "6g4ZI7SA-xmRDv57GoPIPw==", "bounced", "hard", "14c5d75ce93.dfd.64b469", providers.account_id)
        assert row.payload["event"]["sg_event_id"] == "6g4ZI7SA-xmRDv57GoPIPw=="


@pytest.mark.parametrize("forge", ["missing signature", "wrong key", "one byte changed", "old timestamp",
                                   "timestamp changed"])
def test_a_forged_sendgrid_request_is_refused_and_stores_nothing(client, settings, providers, forge):
    body = sendgrid_bounce()
    headers = sendgrid_headers(body)
    if forge == "missing signature":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
    elif forge == "wrong key":
        headers = sendgrid_headers(body, key=ec.generate_private_key(ec.SECP256R1()))
    elif forge == "one byte changed":
        body = body.replace(b"500 unknown", b"501 unknown")
    elif forge == "old timestamp":
        headers = sendgrid_headers(body, timestamp=NOW - 3 * 86400)
    elif forge == "timestamp changed":
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = str(NOW - 1)
    response = client.post(url(settings, "sendgrid", providers.account_id), data=body, headers=headers)
    assert response.status_code in (400, 401), forge
    assert stored() == 0


# --- Mailgun ---

def test_a_signed_mailgun_event_is_stored(client, settings, providers):
    body = mailgun_body(mailgun_failed())
    response = client.post(url(settings, "mailgun", providers.account_id), data=body,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.get_json()
    with db.session_scope() as s:
        row = s.scalars(select(InboundEvent)).one()
        assert (row.kind, row.bounce_type, row.message_ref) == (
            "bounced", "hard", "20130503182626.18666.16540@sandbox.mailgun.org")


@pytest.mark.parametrize("forge", ["missing signature", "wrong key", "one byte changed", "old timestamp"])
def test_a_forged_mailgun_request_is_refused_and_stores_nothing(client, settings, providers, forge):
    body = mailgun_body(mailgun_failed())
    if forge == "missing signature":
        document = json.loads(body)
        del document["signature"]
        body = json.dumps(document).encode()
    elif forge == "wrong key":
        body = mailgun_body(mailgun_failed(), key="another-key")
    elif forge == "one byte changed":
        # Mailgun signs timestamp+token, not event-data: change a byte of what it signs.
        document = json.loads(body)
        token = document["signature"]["token"]
        document["signature"]["token"] = token[:-1] + ("0" if token[-1] != "0" else "1")
        body = json.dumps(document).encode()
    elif forge == "old timestamp":
        body = mailgun_body(mailgun_failed(), timestamp=NOW - 2 * 86400)
    response = client.post(url(settings, "mailgun", providers.account_id), data=body,
                           headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 401), forge
    assert stored() == 0


def test_a_mailgun_token_seen_before_stores_nothing_even_with_other_event_data(client, settings, providers):
    target = url(settings, "mailgun", providers.account_id)
    first = mailgun_body(mailgun_failed(), token="t" * 50)
    assert client.post(target, data=first, headers={"Content-Type": "application/json"}).status_code == 200
    replay = mailgun_body(mailgun_failed(event_id="another-event-id"), token="t" * 50)
    assert client.post(target, data=replay, headers={"Content-Type": "application/json"}).status_code == 200
    assert stored() == 1


def test_a_temporary_mailgun_failure_is_a_deferral(client, settings, providers):
    body = mailgun_body(mailgun_failed(severity="temporary"))
    client.post(url(settings, "mailgun", providers.account_id), data=body, headers={"Content-Type": "application/json"})
    with db.session_scope() as s:
        assert s.scalars(select(InboundEvent.kind)).one() == "deferred"


# --- Postmark ---

def test_a_postmark_record_with_the_right_basic_auth_is_stored(client, settings, providers):
    response = client.post(url(settings, "postmark", providers.account_id), data=postmark_bounce(),
                           headers={"Content-Type": "application/json"}, auth=(PM_USER, PM_PASSWORD))
    assert response.status_code == 200, response.get_json()
    with db.session_scope() as s:
        row = s.scalars(select(InboundEvent)).one()
        assert (row.provider_event_id, row.kind, row.bounce_type) == ("bounce:42", "bounced", "hard")


@pytest.mark.parametrize("auth", [None, (PM_USER, "wrong"), ("someone", PM_PASSWORD), ("", "")])
def test_a_postmark_request_without_the_credentials_is_refused_and_stores_nothing(client, settings, providers, auth):
    response = client.post(url(settings, "postmark", providers.account_id), data=postmark_bounce(),
                           headers={"Content-Type": "application/json"}, auth=auth)
    assert response.status_code == 401
    assert stored() == 0


def test_a_postmark_soft_bounce_never_suppresses(client, settings, providers, worker):
    ids = sent_message(providers.account_id, "postmark", "883953f4-6105-42a2-a16a-77a8eac79483")
    client.post(url(settings, "postmark", providers.account_id), data=postmark_bounce(kind="SoftBounce"),
                headers={"Content-Type": "application/json"}, auth=(PM_USER, PM_PASSWORD))
    with db.session_scope() as s:
        wait_for(lambda: s.scalar(select(func.count()).select_from(Event)) == 1, what="the soft bounce")
        assert s.scalars(select(Suppression)).all() == []
        assert s.get(Subscriber, ids["subscriber"]).status == "active"


# --- SES through SNS ---

def test_an_sns_notification_signed_with_the_sns_certificate_is_stored(client, settings, providers, sns):
    body = json.dumps(sns_envelope(ses_bounce())).encode()
    response = client.post(url(settings, "ses", providers.account_id), data=body,
                           headers={"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"})
    assert response.status_code == 200, response.get_json()
    assert sns["fetched"] == [SNS_CERT_URL]
    with db.session_scope() as s:
        row = s.scalars(select(InboundEvent)).one()
        assert (row.provider_event_id, row.kind, row.bounce_type, row.message_ref) == (
            "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", "bounced", "hard", "0100018c-ses-message-id-000000")


def test_sns_signature_version_2_verifies_too(client, settings, providers, sns):
    body = json.dumps(sns_envelope(ses_bounce(), version="2")).encode()
    assert client.post(url(settings, "ses", providers.account_id), data=body).status_code == 200


@pytest.mark.parametrize("forge", ["missing signature", "wrong key", "one byte changed", "old timestamp",
                                   "certificate elsewhere", "other topic"])
def test_a_forged_sns_message_is_refused_and_stores_nothing(client, settings, providers, sns, forge):
    envelope = sns_envelope(ses_bounce())
    if forge == "missing signature":
        del envelope["Signature"]
    elif forge == "wrong key":
        envelope = sns_envelope(ses_bounce(), key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif forge == "one byte changed":
        envelope["Message"] = envelope["Message"].replace("Permanent", "Permanenu")
    elif forge == "old timestamp":
        envelope = sns_envelope(ses_bounce(), timestamp=datetime.now(timezone.utc) - timedelta(days=1))
    elif forge == "certificate elsewhere":
        envelope["SigningCertURL"] = "https://sns.us-east-1.amazonaws.com.evil.test/cert.pem"
    elif forge == "other topic":
        envelope = sns_envelope(ses_bounce(), topic="arn:aws:sns:us-east-1:999999999999:attacker")
    response = client.post(url(settings, "ses", providers.account_id), data=json.dumps(envelope).encode())
    assert response.status_code in (400, 401), forge
    assert stored() == 0
    if forge == "certificate elsewhere":
        assert sns["fetched"] == []


def test_a_subscription_confirmation_is_confirmed_only_on_an_amazonaws_host(client, settings, providers, sns):
    target = url(settings, "ses", providers.account_id)
    envelope = sns_envelope({}, kind="SubscriptionConfirmation")
    assert client.post(target, data=json.dumps(envelope).encode()).status_code == 200
    assert sns["visited"] == [envelope["SubscribeURL"]]

    elsewhere = sns_envelope({}, kind="SubscriptionConfirmation")
    elsewhere["SubscribeURL"] = "https://attacker.test/?Action=ConfirmSubscription"
    elsewhere["Signature"] = base64.b64encode(SNS_KEY.sign(string_to_sign(elsewhere), padding.PKCS1v15(),
                                                           hashes.SHA1())).decode()
    assert client.post(target, data=json.dumps(elsewhere).encode()).status_code == 400
    assert len(sns["visited"]) == 1 and stored() == 0


@pytest.fixture
def ses_everywhere(app, monkeypatch):
    """SES topics on the environment URL too, so both URLs reach verification."""
    configured = {"ses": {"webhook_topic_arns": TOPIC}}
    monkeypatch.setitem(app.config, "ESEQ_SETTINGS", replace(app.config["ESEQ_SETTINGS"], provider_webhooks=configured))


@pytest.mark.parametrize("field, value", [("Type", []), ("Type", {"Notification": 1}), ("Type", None),
                                          ("SignatureVersion", 1), ("SigningCertURL", [SNS_CERT_URL]),
                                          ("Signature", {"x": 1}), ("Message", {"notificationType": "Bounce"}),
                                          ("TopicArn", [TOPIC]), ("Timestamp", 1700000000), ("Subject", ["x"])])
@pytest.mark.parametrize("endpoint", ["account", "environment"])
def test_an_sns_envelope_with_a_field_that_is_not_a_string_is_a_400_and_changes_nothing(
        client, settings, providers, sns, ses_everywhere, field, value, endpoint):
    envelope = {**sns_envelope(ses_bounce()), field: value}
    target = url(settings, "ses", providers.account_id) if endpoint == "account" else "/webhooks/ses"
    response = client.post(target, data=json.dumps(envelope).encode())
    assert response.status_code == 400, response.get_json()
    assert snapshot() == (0, 0, 0) and sns["fetched"] == []


def test_an_unknown_signature_version_is_refused_before_any_fetch(client, settings, providers, sns):
    envelope = {**sns_envelope(ses_bounce()), "SignatureVersion": "3"}  # SNS does not sign the version itself
    response = client.post(url(settings, "ses", providers.account_id), data=json.dumps(envelope).encode())
    assert response.status_code == 401
    assert snapshot() == (0, 0, 0) and sns["fetched"] == []


@pytest.mark.parametrize("endpoint", ["account", "environment"])
def test_a_subscription_confirmation_from_a_topic_not_allowed_is_refused_and_never_visited(
        client, settings, providers, sns, ses_everywhere, endpoint):
    envelope = sns_envelope({}, kind="SubscriptionConfirmation", topic="arn:aws:sns:us-east-1:999999999999:attacker")
    target = url(settings, "ses", providers.account_id) if endpoint == "account" else "/webhooks/ses"
    response = client.post(target, data=json.dumps(envelope).encode())
    assert response.status_code == 401
    assert sns["visited"] == [] and sns["fetched"] == [] and snapshot() == (0, 0, 0)


def _http_error(status: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError(SNS_CERT_URL, status, "answer", Headers(), io.BytesIO(b"<Error/>"))


@pytest.mark.parametrize("failure, status", [(_http_error(404), 401), (_http_error(403), 401), (_http_error(302), 401),
                                             (_http_error(500), 503), (_http_error(503), 503), (_http_error(429), 503),
                                             (urllib.error.URLError("connection refused"), 503),
                                             (TimeoutError("timed out"), 503)])
def test_a_certificate_the_sns_host_does_not_have_is_a_401_and_no_answer_a_503(
        client, settings, providers, app, monkeypatch, failure, status):
    """A forger who knows an allowed topic can name any .pem on an SNS host: that
    is their bad request, not our outage."""
    def fetch(_url: str) -> bytes:
        raise failure

    monkeypatch.setitem(app.config, "ESEQ_SNS_CERT_FETCHER", fetch)
    envelope = sns_envelope(ses_bounce())
    envelope["SigningCertURL"] = "https://sns.us-east-1.amazonaws.com/anything-at-all.pem"
    response = client.post(url(settings, "ses", providers.account_id), data=json.dumps(envelope).encode())
    assert response.status_code == status, response.get_json()
    assert snapshot() == (0, 0, 0)


def test_a_certificate_url_that_serves_no_certificate_is_a_401(client, settings, providers, app, monkeypatch):
    monkeypatch.setitem(app.config, "ESEQ_SNS_CERT_FETCHER", lambda _url: b"<html>maintenance</html>")
    body = json.dumps(sns_envelope(ses_bounce())).encode()
    response = client.post(url(settings, "ses", providers.account_id), data=body)
    assert response.status_code == 401
    assert snapshot() == (0, 0, 0)


def ses_complaint(recipients: Any) -> dict[str, Any]:
    notification = ses_bounce()
    del notification["bounce"]
    return {**notification, "notificationType": "Complaint",
            "complaint": {"complainedRecipients": recipients, "complaintFeedbackType": "abuse",
                          "timestamp": "2016-01-27T14:59:38.237Z", "feedbackId": "0000013786031775-fea503bc"}}


@pytest.mark.parametrize("notification, kind", [
    (ses_complaint(["user0@example.test"]), "complained"),
    (ses_complaint([]), "complained"),
    (ses_complaint({"emailAddress": "user0@example.test"}), "complained"),
    ({**ses_bounce(), "bounce": {**ses_bounce()["bounce"], "bouncedRecipients": ["user0@example.test"]}}, "bounced"),
    ({"notificationType": "Delivery", "mail": {**ses_bounce()["mail"], "destination": {"to": "user0@example.test"}},
      "delivery": {"timestamp": "2016-01-27T14:59:38.237Z"}}, "delivered"),
    ({"notificationType": "Delivery", "mail": {**ses_bounce()["mail"], "destination": "user0@example.test"}}, "delivered"),
    ({"notificationType": "Delivery", "mail": {**ses_bounce()["mail"], "destination": [{"x": 1}]}}, "delivered"),
])
def test_a_signed_notification_of_an_unexpected_shape_is_stored_without_its_recipient(
        client, settings, providers, sns, notification, kind):
    body = json.dumps(sns_envelope(notification)).encode()
    response = client.post(url(settings, "ses", providers.account_id), data=body)
    assert response.status_code == 200, response.get_json()
    with db.session_scope() as s:
        row = s.scalars(select(InboundEvent)).one()
        assert (row.kind, row.payload["recipient"]) == (kind, None)


# --- accounts, environment, failures ---

def test_an_unknown_account_token_or_provider_is_refused(client, settings, providers):
    body = sendgrid_bounce()
    forged = f"/webhooks/sendgrid/{providers.account_id}-{'0' * 40}"
    assert client.post(forged, data=body, headers=sendgrid_headers(body)).status_code == 401
    assert client.post("/webhooks/sparkpost", data=body).status_code == 404
    assert stored() == 0


def test_the_providers_api_gives_each_account_the_url_that_receives_its_events(client, settings, alice, bob):
    config = {"api_key": "SG.x", "webhook_public_key": SG_PUBLIC}
    shown = [client.post("/api/v1/providers", json={"name": "sg", "kind": "sendgrid", "config": config},
                         headers=tenant.headers).get_json() for tenant in (alice, bob)]
    relay = client.post("/api/v1/providers", json={"name": "relay", "kind": "smtp", "config": {
        "host": "93.184.216.34"}}, headers=alice.headers).get_json()
    assert relay["webhook_url"] is None  # SMTP reports nothing back
    alices, bobs = (s["webhook_url"] for s in shown)
    assert alices.startswith(f"{settings.public_base_url}/webhooks/sendgrid/") and alices != bobs
    assert client.get(f"/api/v1/providers/{shown[0]['id']}", headers=alice.headers).get_json()["webhook_url"] == alices
    body = sendgrid_bounce()
    path = alices.removeprefix(settings.public_base_url)
    assert client.post(path, data=body, headers=sendgrid_headers(body)).status_code == 200
    with db.session_scope() as s:
        assert s.scalars(select(InboundEvent.account_id)).one() == alice.account_id


def test_another_accounts_key_does_not_verify_on_alices_url(client, settings, alice, bob):
    other = ec.generate_private_key(ec.SECP256R1())
    with db.session_scope() as s:
        s.add(Provider(account_id=bob.account_id, name="sg", kind="sendgrid", config={"webhook_public_key": base64.b64encode(
            other.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)).decode()}))
    body = sendgrid_bounce()
    response = client.post(url(settings, "sendgrid", alice.account_id), data=body, headers=sendgrid_headers(body, key=other))
    assert response.status_code == 401
    assert stored() == 0


def test_the_environment_endpoint_is_refused_until_configured_then_verifies(client, app, providers, monkeypatch):
    body = sendgrid_bounce()
    assert client.post("/webhooks/sendgrid", data=body, headers=sendgrid_headers(body)).status_code == 401
    configured = {"sendgrid": {"webhook_public_key": SG_PUBLIC}}
    monkeypatch.setitem(app.config, "ESEQ_SETTINGS", replace(app.config["ESEQ_SETTINGS"], provider_webhooks=configured))
    assert client.post("/webhooks/sendgrid", data=body, headers=sendgrid_headers(body)).status_code == 200
    with db.session_scope() as s:
        assert s.scalars(select(InboundEvent.account_id)).one() is None


def test_a_replay_is_answered_200_and_changes_nothing(client, settings, providers, worker):
    sent_message(providers.account_id, "sendgrid", "14c5d75ce93.dfd.64b469")
    body = sendgrid_bounce()
    target = url(settings, "sendgrid", providers.account_id)
    assert client.post(target, data=body, headers=sendgrid_headers(body)).status_code == 200
    wait_for(lambda: snapshot()[1] == 1, what="the bounce to be recorded")
    before = snapshot()
    replay = client.post(target, data=body, headers=sendgrid_headers(body, timestamp=NOW + 1))
    assert replay.status_code == 200 and replay.get_json()["queued"] == 0
    time.sleep(0.3)
    assert snapshot() == before


def test_our_database_failing_is_answered_503_so_the_provider_retries(client, settings, providers, monkeypatch):
    from sqlalchemy.exc import OperationalError

    import web.provider_webhooks as view

    def down(*_args, **_kwargs):
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(view, "store_events", down)
    body = sendgrid_bounce()
    response = client.post(url(settings, "sendgrid", providers.account_id), data=body, headers=sendgrid_headers(body))
    assert response.status_code == 503


# --- the full path through a real worker ---

@pytest.mark.parametrize("provider", ["sendgrid", "mailgun", "postmark", "ses"])
def test_a_hard_bounce_suppresses_the_address_and_ends_the_subscribers_enrollments(
        client, settings, providers, sns, worker, provider):
    refs = {"sendgrid": "14c5d75ce93.dfd.64b469", "mailgun": "<20130503182626.18666.16540@sandbox.mailgun.org>",
            "postmark": "883953f4-6105-42a2-a16a-77a8eac79483", "ses": "0100018c-ses-message-id-000000"}
    ids = sent_message(providers.account_id, provider, refs[provider], enroll=True)
    auth = None
    if provider == "sendgrid":
        body = sendgrid_bounce()
        headers = sendgrid_headers(body)
    elif provider == "mailgun":
        body, headers = mailgun_body(mailgun_failed()), {"Content-Type": "application/json"}
    elif provider == "postmark":
        body, headers, auth = postmark_bounce(), {"Content-Type": "application/json"}, (PM_USER, PM_PASSWORD)
    else:
        body, headers = json.dumps(sns_envelope(ses_bounce())).encode(), {"Content-Type": "text/plain"}
    response = client.post(url(settings, provider, providers.account_id), data=body, headers=headers, auth=auth)
    assert response.status_code == 200, response.get_json()

    def suppressed() -> bool:
        with db.session_scope() as s:
            return s.scalar(select(Suppression).where(Suppression.email == "user0@example.test")) is not None

    wait_for(suppressed, what="the address to be suppressed")
    with db.session_scope() as s:
        assert s.get(Enrollment, ids["enrollment"]).status == "exited"
        assert s.get(Subscriber, ids["subscriber"]).status == "bounced"
        event = s.scalars(select(Event)).one()
        assert (event.name, event.message_id, event.source, event.properties["bounce_type"]) == (
            "bounced", ids["message"], provider, "hard")
        assert s.scalars(select(InboundEvent.status)).one() == "processed"


def test_a_complaint_suppresses_and_an_event_for_an_unknown_message_is_kept_unmatched(client, settings, providers, worker):
    ids = sent_message(providers.account_id, "sendgrid", "W86EgYT6SQKk0lRflfLRsA", enroll=True)
    body = json.dumps([
        {"email": "user0@example.test", "timestamp": NOW, "event": "spamreport", "sg_event_id": "spam-1",
         "sg_message_id": "W86EgYT6SQKk0lRflfLRsA.filterdrecv-p3las1-5bf99c48d-6n4ng-18-5A0A4E7C-2A.0"},
        {"email": "nobody@example.test", "timestamp": NOW, "event": "open", "sg_event_id": "open-1",
         "sg_message_id": "unknownid.filterdrecv-1.0", "useragent": "Mozilla/4.0", "ip": "255.255.255.255"},
        {"email": "user0@example.test", "timestamp": NOW, "event": "processed", "sg_event_id": "proc-1",
         "sg_message_id": "W86EgYT6SQKk0lRflfLRsA.filterdrecv-1.0"}]).encode()
    assert client.post(url(settings, "sendgrid", providers.account_id), data=body,
                       headers=sendgrid_headers(body)).status_code == 200

    def settled() -> list[str]:
        with db.session_scope() as s:
            statuses = sorted(s.scalars(select(InboundEvent.status)))
            return statuses if "pending" not in statuses else []

    assert wait_for(settled, what="the batch to be processed") == ["ignored", "processed", "unmatched"]
    with db.session_scope() as s:
        assert s.scalars(select(Suppression.reason)).one() == "complained"
        assert s.get(Enrollment, ids["enrollment"]).status == "exited"
        assert [e.name for e in s.scalars(select(Event))] == ["complained"]


def test_each_provider_hands_back_our_outbox_key_where_the_adapter_put_it():
    from inbound import mailgun, postmark, sendgrid, ses

    key = "41:7:A:1"
    [sg] = sendgrid.parse(json.dumps([{**json.loads(sendgrid_bounce())[0], "eseq_message": key}]).encode())
    [pm] = postmark.parse(json.dumps({**json.loads(postmark_bounce()), "Metadata": {"eseq_message": key}}).encode())
    [mg] = mailgun.parse(json.dumps({"event-data": {**mailgun_failed(), "user-variables": {"eseq_message": key}}}).encode())
    notification = ses_bounce()
    notification["mail"]["headers"] = [{"name": "From", "value": "alice@sender.test"},
                                       {"name": "X-Eseq-Message", "value": key}]
    [ses_event] = ses.parse(json.dumps(sns_envelope(notification)).encode())
    assert [e.message_key for e in (sg, pm, mg, ses_event)] == [key] * 4
    # Without the key (or with something that is not one) nothing is matched by it.
    assert postmark.parse(postmark_bounce())[0].message_key is None
    [odd] = sendgrid.parse(json.dumps([{**json.loads(sendgrid_bounce())[0], "eseq_message": {"x": 1}}]).encode())
    assert odd.message_key is None


def test_an_event_whose_enqueue_was_lost_is_swept_up_and_processed_once(providers, worker):
    from tasks.inbound import sweep_inbound

    sent_message(providers.account_id, "sendgrid", "14c5d75ce93.dfd.64b469")
    with db.session_scope() as s:
        now = datetime.now(timezone.utc)
        for received, event_id in ((now - timedelta(minutes=5), "lost-1"), (now, "fresh-1")):
            s.add(InboundEvent(account_id=providers.account_id, provider="sendgrid", provider_event_id=event_id,
                               kind="bounced", bounce_type="hard", message_ref="14c5d75ce93.dfd.64b469",
                               payload={}, status="pending", received_at=received))
    assert sweep_inbound() == 1  # the fresh one may still be on its way through the queue
    sweep_inbound()  # whether or not the worker got to it yet, handing it on twice is harmless

    def statuses() -> dict[str, str]:
        with db.session_scope() as s:
            return dict(s.execute(select(InboundEvent.provider_event_id, InboundEvent.status)).all())

    wait_for(lambda: statuses()["lost-1"] == "processed", what="the swept event to be processed")
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.name == "bounced")) == 1
        assert s.scalar(select(func.count()).select_from(Suppression)) == 1
    assert statuses()["fresh-1"] == "pending"


def test_a_recipient_reported_in_the_providers_own_spelling_is_recorded_in_ours(client, settings, providers):
    from inbound.store import process_events

    with db.session_scope() as s:
        subscriber = Subscriber(account_id=providers.account_id, email="ada@bücher.de", status="active")
        s.add(subscriber)
        s.flush()
        s.add(Message(account_id=providers.account_id, subscriber_id=subscriber.id, idempotency_key="t-idn",
                      to_email="ada@bücher.de", status="sent", provider="sendgrid", provider_message_id="IDN1"))
    body = json.dumps([{"email": "ADA@XN--BCHER-KVA.DE", "timestamp": NOW, "event": "spamreport",
                        "sg_event_id": "spam-idn", "sg_message_id": "IDN1.filterdrecv-1.0"}]).encode()
    assert client.post(url(settings, "sendgrid", providers.account_id), data=body,
                       headers=sendgrid_headers(body)).status_code == 200
    with db.session_scope() as s:
        pending = list(s.scalars(select(InboundEvent.id)))
        assert process_events(s, pending, datetime.now(timezone.utc)) == {"processed": 1}
    with db.session_scope() as s:
        [event] = s.scalars(select(Event))
        assert (event.name, event.properties["recipient"]) == ("complained", "ada@bücher.de")
        assert s.scalars(select(Suppression.email)).all() == ["ada@bücher.de"]
