"""AWS Signature Version 4 for one request, per AWS's documented steps: canonical
request, string to sign, derived signing key, Authorization header.

Small on purpose (no botocore for one POST). Checked against the values AWS
publishes for its examples (tests/adapters/test_ses.py).
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from urllib.parse import parse_qsl, quote, unquote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")  # RFC 3986 unreserved characters stay as they are


def canonical_request(method: str, url: str, headers: dict[str, str], payload_hash: str) -> tuple[str, str]:
    """(canonical request, signed header list)."""
    parts = urlsplit(url)
    path = "/".join(_encode(unquote(segment)) for segment in (parts.path or "/").split("/"))
    query = "&".join(f"{k}={v}" for k, v in sorted(
        (_encode(k), _encode(v)) for k, v in parse_qsl(parts.query, keep_blank_values=True)))
    lines = sorted((name.lower(), " ".join(value.split())) for name, value in headers.items())
    signed = ";".join(name for name, _ in lines)
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in lines)
    return "\n".join([method, path, query, canonical_headers, signed, payload_hash]), signed


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_access_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(method: str, url: str, headers: dict[str, str], body: bytes, *, access_key_id: str,
         secret_access_key: str, region: str, service: str, now: datetime | None = None,
         session_token: str | None = None) -> dict[str, str]:
    """``headers`` plus Host (when absent), X-Amz-Date, X-Amz-Security-Token (with a
    session token) and Authorization; every header returned is signed, so send
    exactly these."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    signed_headers = dict(headers)
    if not any(name.lower() == "host" for name in signed_headers):
        signed_headers["Host"] = urlsplit(url).netloc
    signed_headers["X-Amz-Date"] = amz_date
    if session_token:
        signed_headers["X-Amz-Security-Token"] = session_token
    request, signed = canonical_request(method, url, signed_headers, hashlib.sha256(body).hexdigest())
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret_access_key, amz_date[:8], region, service), to_sign.encode(),
                         hashlib.sha256).hexdigest()
    signed_headers["Authorization"] = (f"{ALGORITHM} Credential={access_key_id}/{scope}, "
                                       f"SignedHeaders={signed}, Signature={signature}")
    return signed_headers
