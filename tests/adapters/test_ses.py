"""Amazon SES v2 SendEmail against a local server that checks the documented
request and verifies its SigV4 signature, and the signer against AWS's published
example values."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime, timezone
from email import message_from_bytes, policy

import pytest

from delivery.errors import (DeliveryError, PermanentDeliveryError, RejectedMessageError, ThrottledError,
                             TransientDeliveryError, UnconfirmedDeliveryError)
from delivery.providers import sigv4
from delivery.providers.ses import SesConfig, SesTransport
from tests.adapters.conftest import KEY

# AWS's documentation example credentials and time (SigV4 test suite, IAM example).
AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
EXAMPLE_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc)


def signature_of(method: str, url: str, headers: dict[str, str], region: str = "us-east-1",
                 service: str = "service") -> str:
    signed = sigv4.sign(method, url, headers, b"", access_key_id=AKID, secret_access_key=SECRET,
                        region=region, service=service, now=EXAMPLE_TIME)
    return signed["Authorization"]


def test_the_signer_reproduces_aws_get_vanilla():
    assert signature_of("GET", "https://example.amazonaws.com/", {"Host": "example.amazonaws.com"}) == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")


def test_the_signer_sorts_the_query_as_in_aws_get_vanilla_query_order_key_case():
    assert signature_of("GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1", {}).endswith(
        "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")


def test_the_signer_reproduces_aws_post_vanilla():
    assert signature_of("POST", "https://example.amazonaws.com/", {}).endswith(
        "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")


def test_the_signer_reproduces_the_iam_list_users_example_step_by_step():
    url = "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Host": "iam.amazonaws.com",
               "X-Amz-Date": "20150830T123600Z"}
    request, signed = sigv4.canonical_request("GET", url, headers, hashlib.sha256(b"").hexdigest())
    assert signed == "content-type;host;x-amz-date"
    assert hashlib.sha256(request.encode()).hexdigest() == "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    assert sigv4.signing_key(SECRET, "20150830", "us-east-1", "iam").hex() == (
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9")
    assert signature_of("GET", url, {"Content-Type": headers["Content-Type"]}, service="iam").endswith(
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")


def test_a_session_token_is_sent_and_signed():
    signed = sigv4.sign("POST", "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails", {}, b"{}",
                        access_key_id=AKID, secret_access_key=SECRET, region="eu-west-1", service="ses",
                        now=EXAMPLE_TIME, session_token="session-token")
    assert signed["X-Amz-Security-Token"] == "session-token"
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in signed["Authorization"]


AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
                  r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$")


def verify_signature(request, secret: str) -> dict[str, str]:
    """What SES does with the request, written out again from AWS's documented
    algorithm rather than by calling our signer."""
    auth = AUTH.match(request.headers["Authorization"])
    assert auth, request.headers["Authorization"]
    names = auth["signed"].split(";")
    assert {"host", "x-amz-date", "content-type"} <= set(names)
    canonical = "\n".join([
        request.method, request.path, "",
        "".join(f"{n}:{request.headers[n].strip()}\n" for n in names), auth["signed"],
        hashlib.sha256(request.body).hexdigest(),
    ])
    amz_date = request.headers["X-Amz-Date"]
    scope = f"{auth['date']}/{auth['region']}/{auth['service']}/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = b"AWS4" + secret.encode()
    for part in (auth["date"], auth["region"], auth["service"], "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    assert hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest() == auth["sig"], "signature does not verify"
    return auth.groupdict()


def send(base_url: str, message, timeout: float = 5.0, configuration_set: str | None = None) -> str:
    config = SesConfig(access_key_id="AKIAALICE", secret_access_key="alice-secret", region="eu-west-1",
                       configuration_set=configuration_set, base_url=base_url, timeout=timeout)
    with SesTransport(config) as ses:
        return ses.send(message, "alice@news.example", "bob@example.org")


def test_it_posts_a_signed_raw_send_and_returns_the_message_id(provider, message):
    provider.answer(200, '{"MessageId":"0102018e-ses-id"}', {"Content-Type": "application/json"})
    assert send(provider.base_url, message, configuration_set="sequences") == "0102018e-ses-id"
    request = provider.last
    assert (request.method, request.path) == ("POST", "/v2/email/outbound-emails")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Host"] == provider.base_url.removeprefix("http://")
    auth = verify_signature(request, "alice-secret")
    assert (auth["akid"], auth["region"], auth["service"]) == ("AKIAALICE", "eu-west-1", "ses")
    payload = json.loads(request.body)
    raw = base64.b64decode(payload.pop("Content")["Raw"]["Data"])
    assert payload == {"FromEmailAddress": "alice@news.example", "Destination": {"ToAddresses": ["bob@example.org"]},
                       "ConfigurationSetName": "sequences"}
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    sent = message_from_bytes(raw, policy=policy.default)
    for header in ("Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "Subject"):
        assert str(sent[header]).strip() == str(message[header]).strip()  # may arrive folded
    assert sent["X-Eseq-Message"] == KEY


def test_too_many_requests_is_transient_with_retry_after(provider, message):
    provider.answer(429, '{"message":"Maximum sending rate exceeded."}',
                    {"X-Amzn-ErrorType": "TooManyRequestsException:http://internal.amazon.com/coral/com.amazonaws.sesv2/",
                     "Retry-After": "2"})
    with pytest.raises(TransientDeliveryError) as caught:
        send(provider.base_url, message)
    assert caught.value.retry_after == 2


def test_a_throttling_error_with_status_400_is_still_transient(provider, message):
    provider.answer(400, '{"__type":"ThrottlingException","message":"Rate exceeded"}')
    with pytest.raises(TransientDeliveryError, match="throttled"):
        send(provider.base_url, message)


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_transient(provider, message, status):
    provider.answer(status, '{"message":"Service unavailable"}', {"X-Amzn-ErrorType": "InternalFailure"})
    with pytest.raises(TransientDeliveryError):
        send(provider.base_url, message)


@pytest.mark.parametrize("text, expected, suppresses", [
    ("Message rejected: Illegal address", PermanentDeliveryError, True),
    ("Address blacklisted.", PermanentDeliveryError, True),  # on SES's suppression list
    ("Message length is more than 10485760 bytes long: '10485761'.", RejectedMessageError, False),
    ("Duplicate header 'Message-ID'.", RejectedMessageError, False),
    ("Sending suspended for this account. For more information, please check the inbox of the email address "
     "associated with your AWS account.", TransientDeliveryError, False),  # our account: never the reader's fault
    ("Sending paused for this account.", TransientDeliveryError, False),
])
def test_a_rejected_message_suppresses_only_when_ses_names_the_address(provider, message, text, expected, suppresses):
    provider.answer(400, json.dumps({"message": text}),
                    {"X-Amzn-ErrorType": "MessageRejected:http://internal.amazon.com/coral/com.amazonaws.sesv2/"})
    with pytest.raises(DeliveryError) as caught:
        send(provider.base_url, message)
    assert type(caught.value) is expected and caught.value.suppresses is suppresses


@pytest.mark.parametrize("text, wait", [("Maximum sending rate exceeded.", 1.0), ("Daily message quota exceeded.", 600.0)])
def test_throttling_without_retry_after_pauses_for_a_while_the_limit_suggests(provider, message, text, wait):
    provider.answer(400, json.dumps({"__type": "ThrottlingException", "message": text}))
    with pytest.raises(ThrottledError) as caught:
        send(provider.base_url, message)
    assert caught.value.retry_after == wait


def test_a_signature_error_keeps_only_its_first_line(provider, message):
    # AWS goes on to quote the canonical request, session token included.
    said = ("The request signature we calculated does not match the signature you provided.\n\nThe Canonical String "
            "for this request should have been\n'POST\n/v2/email/outbound-emails\n\nx-amz-security-token:FQoG-token'")
    provider.answer(403, json.dumps({"message": said}), {"X-Amzn-ErrorType": "InvalidSignatureException"})
    with pytest.raises(TransientDeliveryError) as caught:
        send(provider.base_url, message)
    assert "signature we calculated" in str(caught.value) and "FQoG-token" not in str(caught.value)


@pytest.mark.parametrize("code, text", [
    ("MessageRejected", "Email address is not verified. The following identities failed the check in region "
                        "EU-WEST-1: alice@news.example"),
    ("MailFromDomainNotVerifiedException", "The MAIL FROM domain is not verified"),
    ("SendingPausedException", "Sending is paused for this account"),
    ("AccountSuspendedException", "Sending is suspended for this account"),
])
def test_errors_about_our_account_are_not_blamed_on_the_recipient(provider, message, code, text):
    provider.answer(400, json.dumps({"message": text}), {"X-Amzn-ErrorType": code})
    with pytest.raises(TransientDeliveryError):
        send(provider.base_url, message)


def test_a_bad_signature_is_transient_and_the_secret_is_not_echoed(provider, message):
    provider.answer(403, '{"message":"The request signature we calculated does not match the signature you provided."}',
                    {"X-Amzn-ErrorType": "SignatureDoesNotMatch"})
    with pytest.raises(TransientDeliveryError) as caught:
        send(provider.base_url, message)
    assert "alice-secret" not in str(caught.value)


def test_connection_refused_is_transient_and_not_in_doubt(nothing_listening, message):
    with pytest.raises(TransientDeliveryError, match="cannot reach") as refused:
        send(nothing_listening, message)
    assert not refused.value.in_doubt  # nothing reached the provider: another may be tried


def test_a_provider_slower_than_the_timeout_leaves_the_message_in_doubt(provider, message):
    provider.answer(200, '{"MessageId":"x"}', delay=1.0)
    with pytest.raises(UnconfirmedDeliveryError, match="after the whole request was sent"):
        send(provider.base_url, message, timeout=0.2)
