"""Amazon SES v2 SendEmail (POST /v2/email/outbound-emails) with our MIME message
as raw content, signed with SigV4 (service "ses").

Sending raw keeps every header we built (Message-ID, List-Unsubscribe, our
X-Eseq-Message) exactly as the SMTP path sends them.

Idempotency: SendEmail takes no client token, so a retry after a lost 200 can
deliver twice. Our key travels in the raw message's X-Eseq-Message header, which
SES event publishing reports back with the mail's headers.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from delivery.errors import (DeliveryError, PermanentDeliveryError, RejectedMessageError, ThrottledError,
                             TransientDeliveryError)
from delivery.providers import http, sigv4

THROTTLED = {"TooManyRequestsException", "ThrottlingException", "Throttling", "LimitExceededException"}

# An AWS region name (eu-west-1, us-gov-west-1). The endpoint's host is built from
# it, so anything looser would let "@10.0.0.5:8443/#" send signed requests inward.
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")


def is_region(value: object) -> bool:
    return isinstance(value, str) and REGION.fullmatch(value) is not None


@dataclass(frozen=True)
class SesConfig:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str
    session_token: str | None = field(default=None, repr=False)
    configuration_set: str | None = None
    base_url: str | None = None  # default https://email.{region}.amazonaws.com
    timeout: float = http.DEFAULT_TIMEOUT
    name: str = "ses"

    @property
    def endpoint(self) -> str:
        return (self.base_url or f"https://email.{self.region}.amazonaws.com").rstrip("/")


def build_payload(message: EmailMessage, sender: str, recipient: str, configuration_set: str | None) -> dict[str, Any]:
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))  # RFC 5322 line endings
    payload: dict[str, Any] = {
        "FromEmailAddress": sender,
        "Destination": {"ToAddresses": [recipient]},
        "Content": {"Raw": {"Data": base64.b64encode(raw).decode()}},
    }
    if configuration_set:
        payload["ConfigurationSetName"] = configuration_set
    return payload


def error_code(response: http.Response) -> str:
    """The AWS error name: the X-Amzn-ErrorType header ("MessageRejected:http://...")
    or the body's __type/code ("com.amazonaws...#MessageRejected")."""
    answer = response.json()
    raw = response.headers.get("X-Amzn-ErrorType") or answer.get("__type") or answer.get("code") or ""
    return str(raw).split(":", 1)[0].rsplit("#", 1)[-1]


# MessageRejected texts about the address (on SES's suppression list, not an
# address at all), and about our SES account rather than the message or the address.
ADDRESS_TROUBLE = ("address blacklisted", "illegal address")
ACCOUNT_TROUBLE = ("not verified", "suspended", "paused", "quota", "sending rate")
DAILY_QUOTA_WAIT = 600.0  # AWS: wait, then retry; a message held this long costs no attempt


def classify(response: http.Response) -> DeliveryError:
    answer = response.json()
    code = error_code(response)
    # The first line only: a signature error goes on to quote the canonical
    # request, session token included.
    said = str(answer.get("message") or answer.get("Message") or response.text()).split("\n", 1)[0][:300]
    detail = f"{code or response.status}: {said}"
    lowered = said.lower()
    if code in THROTTLED:  # sending-rate and quota limits, whatever status they came with
        wait = http.retry_after(response.headers) or (DAILY_QUOTA_WAIT if "quota" in lowered else 1.0)
        return ThrottledError(f"SES throttled the send: {detail}", wait)
    failure = http.provider_failure("SES", response, detail)
    if failure is not None:
        return failure
    if code == "MessageRejected":
        if any(trouble in lowered for trouble in ADDRESS_TROUBLE):
            return PermanentDeliveryError(f"SES refused the recipient: {detail}")
        if not any(trouble in lowered for trouble in ACCOUNT_TROUBLE):
            # Content SES will not send (size, headers, a virus): this message, not the address.
            return RejectedMessageError(f"SES rejected the message: {detail}")
    # Unverified identity (or the sandbox), a suspended or paused account,
    # MailFromDomainNotVerified, a missing configuration set: all about our
    # account, so failover moves on and no recipient is blamed.
    return TransientDeliveryError(f"SES refused the request ({response.status}): {detail}")


class SesTransport(http.HttpTransport):
    config: SesConfig

    def send(self, message: EmailMessage, sender: str, recipient: str) -> str:
        cfg = self.config
        url = cfg.endpoint + "/v2/email/outbound-emails"
        body = json.dumps(build_payload(message, sender, recipient, cfg.configuration_set)).encode()
        headers = sigv4.sign("POST", url, {"Content-Type": "application/json"}, body,
                             access_key_id=cfg.access_key_id, secret_access_key=cfg.secret_access_key,
                             region=cfg.region, service="ses", session_token=cfg.session_token)
        response = http.post(url, body, headers, cfg.timeout, self.check)
        if response.status == 200:
            return str(response.json().get("MessageId") or message["Message-ID"])
        raise classify(response)
