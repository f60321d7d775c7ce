"""Amazon SES notifications and event publishing, delivered through SNS.

Verification follows AWS's SNS guide: the signing certificate is fetched only
from ``https://sns.<region>.amazonaws.com/...pem`` (a region-shaped host: an S3
bucket named "sns" is also under amazonaws.com, and anyone can create one), without
following redirects, the string to sign is built from the documented keys in their
fixed order, and the base64 signature is checked with RSA PKCS#1 v1.5 over SHA1
(SignatureVersion 1) or SHA256 (2). The signature proves SNS sent the message, not
whose topic it came from: anyone can point their own topic at a URL, so only the
topics in ``webhook_topic_arns`` are accepted, on every endpoint (an account
without any is refused with 401). A SubscriptionConfirmation is confirmed by
visiting its SubscribeURL, only on an SNS host. Fetching and visiting are
injectable for tests.

Anyone who knows an allowed topic ARN can name any ``.pem`` on an SNS host, so the
certificate host saying there is no such file (4xx) or serving something that is
not a certificate makes the request unverifiable (401); only no answer or the
host's own 5xx is ours to retry (503).
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.error
from collections.abc import Callable
from email.header import decode_header, make_header
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import ParseResult, urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from delivery.providers import WEBHOOK_FIELDS
from delivery.providers.http import NO_REDIRECTS
from inbound.events import (InboundRequest, NormalizedEvent, VerificationError, blames_address, check_age,
                            content_id, from_iso, load_json, message_ref, outbox_key, text)

NAME = "ses"
# Not a secret, but what makes a signed SNS message ours: without topics, 401.
SECRET_KEYS = WEBHOOK_FIELDS[NAME]  # the provider row's webhook_* keys (delivery.providers)
# SNS retries HTTP deliveries for at most an hour under any delivery policy.
MAX_AGE_SECONDS = 2 * 3600
TIMEOUT_SECONDS = 5.0
# sns.us-east-1, sns.us-gov-west-1, sns.cn-north-1 (.com.cn): never sns.s3, sns.s3-external-1.
_SNS_HOST = re.compile(r"sns\.[a-z]{2}(-gov)?-[a-z]+-[0-9]\.amazonaws\.com(\.cn)?")
_SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
# Present fields SNS signs or we read are strings (Subject may also be null): any
# other JSON would reach a set lookup (unhashable) or the string to sign.
_STRING_FIELDS = ("Type", "Message", "MessageId", "Subject", "SubscribeURL", "Timestamp", "Token", "TopicArn",
                  "Signature", "SignatureVersion", "SigningCertURL")
_REQUIRED_FIELDS = ("Signature", "SignatureVersion", "SigningCertURL", "MessageId", "Timestamp", "TopicArn", "Message")
# Statuses that say "not now" rather than "no such certificate".
_RETRY_STATUSES = (408, 429)
_KINDS = {"Delivery": "delivered", "DeliveryDelay": "deferred", "Bounce": "bounced", "Complaint": "complained",
          "Reject": "rejected", "Open": "opened", "Click": "clicked"}

CertificateFetcher = Callable[[str], bytes]
UrlVisitor = Callable[[str], None]


def _sns_url(url: str) -> ParseResult | None:
    """``url`` parsed, when it is https on an SNS host (default port, no userinfo)."""
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError:  # "[" without an IPv6 address, a port that is not a number
        return None
    if (parsed.scheme == "https" and _SNS_HOST.fullmatch(parsed.hostname or "") and port in (None, 443)
            and parsed.username is None and parsed.password is None):
        return parsed
    return None


def is_certificate_url(url: str) -> bool:
    parsed = _sns_url(url)
    return parsed is not None and parsed.path.endswith(".pem") and not parsed.query


def is_subscribe_url(url: str) -> bool:
    return _sns_url(url) is not None


@lru_cache(maxsize=16)
def fetch_certificate(url: str) -> bytes:
    """The default fetcher. Certificates are few and long-lived, so they are cached,
    but only once they load: lru_cache keeps no exception, so an error page or a
    failed fetch is tried again next time instead of refusing every genuine message
    signed with that certificate until a restart."""
    with NO_REDIRECTS.open(url, timeout=TIMEOUT_SECONDS) as response:  # URL checked by the caller
        pem = bytes(response.read(64 * 1024))
    public_key(pem)
    return pem


def public_key(pem: bytes) -> rsa.RSAPublicKey:
    """The RSA key of an SNS signing certificate; 401 for anything else."""
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise VerificationError("signing certificate unreadable") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise VerificationError("signing certificate is not RSA")
    return key


def visit(url: str) -> None:
    with NO_REDIRECTS.open(url, timeout=TIMEOUT_SECONDS) as response:  # URL checked by the caller
        response.read(64 * 1024)


def string_to_sign(envelope: dict[str, Any]) -> bytes:
    keys = _SIGNED_KEYS[envelope["Type"]]
    return "".join(f"{k}\n{envelope[k]}\n" for k in keys if k in envelope and (k != "Subject" or envelope[k] is not None)).encode()


def _topics(config: dict[str, Any]) -> set[str]:
    raw = config.get("webhook_topic_arns") or ()
    items = raw.split(",") if isinstance(raw, str) else raw
    return {str(t).strip() for t in items if str(t).strip()}


def _envelope(body: bytes) -> dict[str, Any]:
    """The SNS message in ``body``: 400 when it is not shaped like one, 401 when it
    lacks what a signature check needs."""
    envelope = load_json(body)
    if not isinstance(envelope, dict):
        raise VerificationError("not an SNS message", status=400)
    wrong = [k for k in _STRING_FIELDS if k in envelope and not isinstance(envelope[k], str)
             and not (k == "Subject" and envelope[k] is None)]
    if wrong:
        raise VerificationError(f"SNS fields must be strings: {', '.join(wrong)}", status=400)
    if envelope.get("Type") not in _SIGNED_KEYS:
        raise VerificationError("not an SNS message", status=400)
    if not all(k in envelope for k in _REQUIRED_FIELDS):
        raise VerificationError("SNS signature fields missing")
    return envelope


def verify(request: InboundRequest, configs: list[dict[str, Any]], now: datetime, *,
           fetch_certificate: CertificateFetcher = fetch_certificate, **_: Any) -> str | None:
    envelope = _envelope(request.body)
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(envelope["SignatureVersion"])
    if algorithm is None:
        raise VerificationError("unknown SNS SignatureVersion")
    allowed = set().union(*(_topics(c) for c in configs))
    if envelope["TopicArn"] not in allowed:
        raise VerificationError("topic not allowed")
    check_age(from_iso(envelope["Timestamp"]), now, MAX_AGE_SECONDS)
    url = envelope["SigningCertURL"]
    if not is_certificate_url(url):
        raise VerificationError("signing certificate URL is not an SNS host")
    try:
        signature = base64.b64decode(envelope["Signature"], validate=True)
        to_sign = string_to_sign(envelope)
    except (binascii.Error, ValueError, KeyError):
        raise VerificationError("signature unreadable") from None
    key = public_key(_fetch(fetch_certificate, url))
    try:
        key.verify(signature, to_sign, padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError):
        raise VerificationError("signature does not verify") from None
    return None


def _fetch(fetch: CertificateFetcher, url: str) -> bytes:
    """The certificate at ``url``: 401 when its host answers that there is none (a
    forger may name any path), CertificateUnavailableError when we got no answer."""
    try:
        return fetch(url)
    except VerificationError:
        raise
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code >= 500 or exc.code in _RETRY_STATUSES:
            raise CertificateUnavailableError(f"certificate host answered {exc.code}") from exc
        raise VerificationError(f"no signing certificate there (HTTP {exc.code})") from None
    except Exception as exc:  # noqa: BLE001 - refused, timed out, TLS: ours, let SNS retry
        raise CertificateUnavailableError(str(exc)) from exc


class CertificateUnavailableError(Exception):
    """The SNS certificate could not be fetched: our problem, answered 5xx."""


def subscribe_url(body: bytes) -> str | None:
    """For a (verified) SubscriptionConfirmation, the URL that confirms it."""
    envelope = json.loads(body)
    if envelope.get("Type") != "SubscriptionConfirmation":
        return None
    url = envelope.get("SubscribeURL")
    if not isinstance(url, str) or not is_subscribe_url(url):
        raise VerificationError("SubscribeURL is not an SNS address", status=400)
    return url


def parse(body: bytes) -> list[NormalizedEvent]:
    envelope = load_json(body)
    if not isinstance(envelope, dict) or envelope.get("Type") != "Notification":
        return []
    try:
        notification = json.loads(envelope.get("Message") or "")
    except (TypeError, ValueError, RecursionError):  # not JSON: kept raw, recorded as nothing
        notification = None
    event_id = str(envelope.get("MessageId") or content_id(envelope))[:300]
    if not isinstance(notification, dict):
        return [NormalizedEvent(event_id, None, None, None, from_iso(envelope.get("Timestamp")), envelope)]
    # Event publishing says eventType; the older identity notifications say notificationType.
    event_type = notification.get("eventType") or notification.get("notificationType")
    kind = _KINDS.get(event_type) if isinstance(event_type, str) else None
    mail = notification.get("mail") if isinstance(notification.get("mail"), dict) else {}
    detail_key = {"DeliveryDelay": "deliveryDelay"}.get(str(event_type), str(event_type).lower())
    detail = notification.get(detail_key) if isinstance(notification.get(detail_key), dict) else {}
    bounce_type, recipient, reason = None, None, detail.get("reason")
    if kind == "bounced":
        first = _first(detail.get("bouncedRecipients"), dict) or {}
        recipient, reason = first.get("emailAddress"), first.get("diagnosticCode") or detail.get("bounceSubType")
        # SES files some policy blocks (5.7.x) as Permanent/General: the address is not at fault.
        permanent = detail.get("bounceType") == "Permanent"
        bounce_type = "hard" if permanent and blames_address(first.get("status"), first.get("diagnosticCode")) else "soft"
    elif kind == "complained":
        recipient = (_first(detail.get("complainedRecipients"), dict) or {}).get("emailAddress")
        reason = detail.get("complaintFeedbackType")
    else:
        recipient = _first(mail.get("destination"), str)
    return [NormalizedEvent(
        provider_event_id=event_id, message_ref=message_ref(mail.get("messageId")), kind=kind, bounce_type=bounce_type,
        occurred_at=from_iso(detail.get("timestamp") or mail.get("timestamp")), raw=envelope,
        recipient=text(recipient, 320), reason=text(reason), message_key=_header_key(mail.get("headers")))]


def _first(items: Any, of: type) -> Any:
    """The first item of a JSON list when it is of the documented type, else None: a
    signed notification of another shape is kept raw, never a 500."""
    return items[0] if isinstance(items, list) and items and isinstance(items[0], of) else None


def _header_key(headers: Any) -> str | None:
    """X-Eseq-Message from the original headers SES includes in its notifications,
    as written: a key that is not plain ASCII went out as RFC 2047 encoded words
    (delivery.mime), which are decoded back here."""
    for header in headers if isinstance(headers, list) else []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "x-eseq-message":
            return outbox_key(_decoded(header.get("value")))
    return None


def _decoded(value: Any) -> Any:
    if not isinstance(value, str) or "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value.replace("\r\n", ""))))
    except (ValueError, LookupError):  # not encoded words after all, or an unknown charset
        return value
