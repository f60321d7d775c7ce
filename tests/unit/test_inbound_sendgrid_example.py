"""SendGrid's own published Event Webhook example verifies, and nothing else does.

The key, signature, timestamp and body are the ones sendgrid-python checks in
test/unit/test_eventwebhook.py: a key and signature made here (as the API tests
do) could agree with a misreading of the scheme that SendGrid's would not.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from inbound import sendgrid
from inbound.events import InboundRequest, VerificationError

PUBLIC_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+"
              "2fNNRaINXvVpiglSI8eNEc6wEA3F+g==")
SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
OTHER_SIGNATURE = ("MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0=")
TIMESTAMP = "1600112502"
# Exactly as posted, trailing CRLF included: the signature covers the raw bytes.
BODY = (b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
        b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
        b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
        b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n')
RECEIVED = datetime.fromtimestamp(int(TIMESTAMP), timezone.utc) + timedelta(seconds=30)


def verify(body: bytes = BODY, signature: str = SIGNATURE, timestamp: str = TIMESTAMP, key: str = PUBLIC_KEY) -> None:
    headers = {sendgrid.SIGNATURE_HEADER: signature, sendgrid.TIMESTAMP_HEADER: timestamp}
    sendgrid.verify(InboundRequest(body, headers), [{"webhook_public_key": key}], RECEIVED)


def as_pem(key: str) -> str:
    lines = [key[i:i + 64] for i in range(0, len(key), 64)]
    return "\n".join(["-----BEGIN PUBLIC KEY-----", *lines, "-----END PUBLIC KEY-----"])


def test_sendgrids_published_example_verifies_with_the_key_as_the_console_shows_it_or_as_pem():
    verify()
    verify(key=as_pem(PUBLIC_KEY))
    [event] = sendgrid.parse(BODY)
    assert (event.kind, event.message_ref, event.provider_event_id) == (
        "rejected", "LRzXl_NHStOGhQ4kofSm_A", "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA")


@pytest.mark.parametrize("change", [
    {"body": BODY.replace(b"dropped", b"droppee")},
    {"body": BODY.replace(b"1600112492", b"1600112493")},
    {"body": BODY.rstrip(b"\r\n")},  # a framework that strips the body breaks verification
    {"timestamp": "1600112503"},
    {"signature": OTHER_SIGNATURE},
])
def test_changing_one_byte_of_the_example_is_refused(change):
    with pytest.raises(VerificationError) as refused:
        verify(**change)
    assert refused.value.status == 401
