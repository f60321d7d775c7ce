"""How provider events are read: which failures are the address's fault (only those
are hard bounces and suppress), Mailgun's event identity, hashing and storing text
PostgreSQL refuses, account tokens, and where an SNS signing certificate may come
from. Fetching one from a real server: tests/integration/test_sns_certificate_fetch.py."""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from inbound import mailgun, postmark, sendgrid, ses
from inbound.events import content_id
from inbound.tokens import account_from_token, account_token
from tests.api.test_provider_webhooks import mailgun_failed, postmark_bounce, ses_bounce, sns_envelope
from tests.support.provider_signing import NOW


def _mailgun(reason: str = "bounce", code: int = 550, message: str = "5.1.1 The email account does not exist",
             severity: str = "permanent", **status: Any) -> tuple[str | None, str | None]:
    data = {**mailgun_failed(severity=severity), "reason": reason,
            "delivery-status": {"code": code, "message": message, "description": "", **status}}
    [event] = mailgun.parse(json.dumps({"event-data": data}).encode())
    return event.kind, event.bounce_type


def test_mailgun_suppresses_only_for_a_bad_address():
    assert {
        "bad mailbox": _mailgun(),
        "on Mailgun's bounce list": _mailgun("suppress-bounce", 605, "Not delivering to previously bounced address"),
        "no enhanced code": _mailgun("bounce", 550, "No such user here"),
        "enhanced-code field": _mailgun("generic", 550, "Requested action not taken", **{"enhanced-code": "5.1.1"}),
        "gave up retrying": _mailgun("old", 498, "Too old"),
        "blocked by the recipient's ESP": _mailgun("espblock", 550, "5.7.1 blocked as spam"),
        "policy block": _mailgun("generic", 550, "5.7.1 Message rejected as spam"),
        "policy block (enhanced-code)": _mailgun("generic", 554, "Rejected", **{"enhanced-code": "5.7.1"}),
        "mailbox full": _mailgun("bounce", 552, "5.2.2 Mailbox full"),
        "temporary": _mailgun(severity="temporary", code=421, message="4.7.0 try later"),
    } == {
        "bad mailbox": ("bounced", "hard"), "on Mailgun's bounce list": ("bounced", "hard"),
        "no enhanced code": ("bounced", "hard"), "enhanced-code field": ("bounced", "hard"),
        "gave up retrying": ("bounced", "soft"), "blocked by the recipient's ESP": ("bounced", "soft"),
        "policy block": ("bounced", "soft"), "policy block (enhanced-code)": ("bounced", "soft"),
        "mailbox full": ("bounced", "soft"), "temporary": ("deferred", None),
    }


def _sendgrid(**fields: Any) -> str | None:
    item = {"event": "bounce", "type": "bounce", "sg_event_id": "e", "sg_message_id": "m.filter0", "timestamp": NOW,
            "email": "user0@example.test", **fields}
    [event] = sendgrid.parse(json.dumps([{k: v for k, v in item.items() if v is not None}]).encode())
    return event.bounce_type


def test_sendgrid_suppresses_only_when_it_classifies_the_address_invalid():
    classified = {c: _sendgrid(bounce_classification=c, status="5.0.0") for c in (
        "Invalid Address", "Technical Failure", "Content", "Reputation", "Frequency or Volume Too High",
        "Mailbox Unavailable", "Unclassified")}
    assert classified == {"Invalid Address": "hard", "Technical Failure": "soft", "Content": "soft",
                          "Reputation": "soft", "Frequency or Volume Too High": "soft", "Mailbox Unavailable": "soft",
                          "Unclassified": "soft"}
    # Without Bounce & Block Classifications the enhanced status code decides.
    assert _sendgrid(status="5.1.1", reason="550 5.1.1 unknown user") == "hard"
    assert _sendgrid(status="5.7.1", reason="550 5.7.1 blocked using Spamhaus") == "soft"
    assert _sendgrid(type="blocked", bounce_classification="Invalid Address") == "soft"


def _ses(bounce_type: str, status: str, diagnostic: str) -> str | None:
    notification = ses_bounce(bounce_type=bounce_type)
    notification["bounce"]["bouncedRecipients"][0].update(status=status, diagnosticCode=diagnostic)
    [event] = ses.parse(json.dumps(sns_envelope(notification)).encode())
    return event.bounce_type


def test_ses_permanent_bounces_are_hard_unless_their_code_blames_a_policy():
    assert _ses("Permanent", "5.1.1", "smtp; 550 5.1.1 user unknown") == "hard"
    assert _ses("Permanent", "5.7.1", "smtp; 550 5.7.1 Message rejected due to content restrictions") == "soft"
    assert _ses("Transient", "4.2.2", "smtp; 452 4.2.2 mailbox full") == "soft"


def test_postmark_spam_notification_is_a_soft_bounce_and_hard_bounces_stay_hard():
    def read(kind: str) -> tuple[str | None, str | None]:
        [event] = postmark.parse(postmark_bounce(kind=kind))
        return event.kind, event.bounce_type

    assert {k: read(k) for k in ("SpamNotification", "HardBounce", "BadEmailAddress", "SpamComplaint")} == {
        "SpamNotification": ("bounced", "soft"), "HardBounce": ("bounced", "hard"),
        "BadEmailAddress": ("bounced", "hard"), "SpamComplaint": ("complained", None)}


def test_a_mailgun_event_is_identified_by_its_id_and_timestamp():
    """Its id is unique only within a day: the same id a day later is another event."""
    def identity(event_id: str, timestamp: float) -> str:
        data = {**mailgun_failed(event_id=event_id), "timestamp": timestamp}
        return mailgun.parse(json.dumps({"event-data": data}).encode())[0].provider_event_id

    assert identity("abc", 1521472262.908181) == identity("abc", 1521472262.908181) == "abc@1521472262.908181"
    assert identity("abc", 1521472262.908181) != identity("abc", 1521472262.908181 + 86400)
    assert identity("abc", 1521472262.908181) != identity("abd", 1521472262.908181)


def test_content_ids_hash_lone_surrogates_and_keep_their_old_value_for_valid_text():
    assert content_id({"a": "\ud800"}) != content_id({"a": "\udfff"})
    # The value every stored event hashed to before: stored ids must not change.
    assert content_id({"a": "é", "b": [1]}) == "sha256:" + hashlib.sha256('{"a":"é","b":[1]}'.encode()).hexdigest()


def test_storable_strips_nul_and_replaces_lone_surrogates_everywhere():
    from inbound.events import storable

    assert storable({"k\x00": ["a\x00b", "\ud800", {"n": float("inf")}], "ok": 1.5, "emoji": "\U0001f600"}) == {
        "k": ["ab", "\ufffd", {"n": "inf"}], "ok": 1.5, "emoji": "\U0001f600"}


def test_anything_but_an_account_token_is_no_account_and_never_an_error():
    """"²".isdigit() is True and int("²") raises; compare_digest raises on non-ASCII str."""
    tokens = ["²-" + "0" * 40, "1-" + "é" * 40, "1-\ud800", "9" * 13 + "-" + "0" * 40, "", "-", "1-",
              "1-" + "0" * 39, "1-" + "0" * 40 + "\n", " 1-" + "0" * 40, "١-" + "0" * 40]
    assert [account_from_token("k" * 20, t) for t in tokens] == [None] * len(tokens)
    assert account_from_token("k" * 20, account_token("k" * 20, 42)) == 42
    assert account_from_token("k" * 20, account_token("other-key-0123456789", 42)) is None


def test_the_signing_certificate_comes_only_from_a_regional_sns_host():
    accepted = ["https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
                "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-abc.pem",
                "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
                "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem"]
    refused = ["https://sns.s3.amazonaws.com/cert.pem", "https://sns.s3-accelerate.amazonaws.com/cert.pem",
               "https://sns.s3-external-1.amazonaws.com/cert.pem", "https://sns.us-east-1.s3.amazonaws.com/cert.pem",
               "http://sns.us-east-1.amazonaws.com/cert.pem", "https://sns.us-east-1.amazonaws.com.evil.test/c.pem",
               "https://sns.us-east-1.amazonaws.com:8443/cert.pem", "https://sns.us-east-1.amazonaws.com:x/cert.pem",
               "https://user@sns.us-east-1.amazonaws.com/cert.pem", "https://sns.us-east-1.amazonaws.com/cert.txt",
               "https://[sns.us-east-1.amazonaws.com/cert.pem"]
    assert [u for u in accepted if ses.is_certificate_url(u)] == accepted
    assert [u for u in refused if ses.is_certificate_url(u)] == []
    assert not ses.is_subscribe_url("https://bucket.s3.amazonaws.com/?Action=ConfirmSubscription")


def test_ses_gives_back_a_key_that_went_out_as_encoded_words():
    from datetime import datetime, timezone

    from delivery.mime import Envelope, build_message

    key = "12:34:Café ☕:0"
    built = build_message(Envelope(from_email="news@shop.test", from_name=None, to_email="a@b.test", subject="Hi",
                                   html=None, text="Hello", unsubscribe_url="https://m.test/u/x",
                                   unsubscribe_mailto=None, message_key=key), datetime.now(timezone.utc))
    raw = built.raw.decode("ascii")
    written = re.search(r"^X-Eseq-Message: (.*(?:\r\n[ \t].*)*)", raw, re.MULTILINE)[1]
    assert "=?" in written, "a non-ASCII key is written as encoded words"
    assert ses._header_key([{"name": "X-Eseq-Message", "value": written}]) == key
    assert ses._header_key([{"name": "X-Eseq-Message", "value": "1:2::0"}]) == "1:2::0"
