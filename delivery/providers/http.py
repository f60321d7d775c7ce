"""The one way provider adapters talk HTTP: urllib with a timeout on every call,
redirects refused, and every failure to get an answer turned into a transient
error, so an adapter only has to sort the answers it did get. A failure before the
request was sent whole (refused, unreachable) is plain transient: another provider
may be tried. One after it (no answer in time, a reset, a garbled status line) is
UnconfirmedDeliveryError: the provider may have taken the message.

Redirects are refused because following one would replay an authenticated POST
(with its API key) to wherever the Location points; a provider that moved its
endpoint is a configuration problem, reported as such.

A provider an account configured is checked by the SSRF guard on every request,
not only when it was saved, and the request goes to the address checked: a name
that resolved public then may resolve to loopback or a metadata service now.
"""
from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from core.netguard import HostCheck, UnsafeTargetError, pinned_opener
from delivery.errors import DeliveryError, ThrottledError, TransientDeliveryError, UnconfirmedDeliveryError

DEFAULT_TIMEOUT = 10.0


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx, which we classify


# Also inbound.ses's, for SNS certificates and subscriptions: a URL checked before
# the request must not be swapped for wherever it redirects.
NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or {} when it is not one (an HTML error page
        from a load balancer, an empty 5xx)."""
        try:
            data = json.loads(self.body or b"null")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def text(self, limit: int = 300) -> str:
        return self.body[:limit].decode("utf-8", errors="replace").strip()


def _opener(url: str, check: HostCheck | None) -> urllib.request.OpenerDirector:
    """The opener for one request: pinned to an address ``check`` accepted, or, for
    a provider the operator configured (no check), the plain one."""
    if check is None:
        return NO_REDIRECTS
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = check(parts.hostname or "", port)
    except (UnsafeTargetError, ValueError) as exc:
        raise TransientDeliveryError(f"refused to connect to {parts.hostname}: {exc}") from None
    return pinned_opener(addresses, _RefuseRedirects)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float, check: HostCheck | None = None) -> Response:
    """POST and return whatever status came back; raise TransientDeliveryError only
    when no answer came (refused, reset, timeout, garbled response, a host the SSRF
    ``check`` refuses), as UnconfirmedDeliveryError once the request had gone out."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    host = urlsplit(url).netloc
    opener = _opener(url, check)
    try:
        with opener.open(request, timeout=timeout) as answer:
            return Response(answer.status, answer.headers, answer.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Response(exc.code, exc.headers, _read(exc))
    except ValueError:
        # http.client refusing a header or URL with a control character: its message
        # quotes the value, which may be an API key, so it is not repeated.
        raise TransientDeliveryError(f"cannot send to {host}: a header or the URL holds a character HTTP "
                                     "does not allow; check the provider's settings") from None
    except urllib.error.URLError as exc:  # urllib wraps what fails up to the request's last byte
        raise TransientDeliveryError(f"cannot reach {host}: {_reason(exc.reason)}") from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts while reading, resets, bad status lines
        raise UnconfirmedDeliveryError(f"no answer from {host} after the whole request was sent: "
                                       f"{_reason(exc)}") from None


def _read(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read()
    except (OSError, http.client.HTTPException):
        return b""


def _reason(reason: object) -> str:
    text = str(reason)
    return f"{type(reason).__name__}: {text}" if text else type(reason).__name__


# How long a provider that throttles us without saying for how long is left alone.
DEFAULT_THROTTLE_WAIT = 60.0


def retry_after(headers: Message, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header, which may be a number or an HTTP date, or
    else from X-RateLimit-Reset (an epoch time: SendGrid's rate-limit answer)."""
    value = headers.get("Retry-After")
    if not value:
        reset = headers.get("X-RateLimit-Reset")
        try:
            return max(0.0, float(reset) - (now or datetime.now(timezone.utc)).timestamp()) if reset else None
        except ValueError:
            return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def provider_failure(provider: str, response: Response, detail: str = "") -> DeliveryError | None:
    """The answers every provider means the same way, all transient: the provider
    or our account with it is at fault, never the recipient, so failover moves on.
    None when the answer needs the provider's own reading."""
    why = f": {detail}" if detail else ""
    status = response.status
    if status == 429:
        return ThrottledError(f"{provider} rate limit (429){why}", retry_after(response.headers) or DEFAULT_THROTTLE_WAIT)
    if status == 504:
        # A gateway gave up waiting for the provider, which may have taken the message.
        return UnconfirmedDeliveryError(f"{provider} gateway timeout (504){why}: it may have been delivered")
    if status >= 500:
        return TransientDeliveryError(f"{provider} server error ({status}){why}", retry_after(response.headers))
    if status in (401, 403):
        # Our credentials or account, not the recipient: another provider may
        # deliver, and suppressing the address for our mistake would lose it.
        return TransientDeliveryError(f"{provider} refused our credentials ({status}){why}")
    if 300 <= status < 400:
        return TransientDeliveryError(f"{provider} answered with a redirect ({status}); check its base URL")
    return None


class HttpTransport:
    """What every HTTP adapter shares: the provider's name, use as a context
    manager, nothing to close (one request per message, no connection held), and
    the SSRF check each request's host gets (None: the operator configured it)."""

    def __init__(self, config: Any, check: HostCheck | None = None) -> None:
        self.config = config
        self.check = check

    @property
    def name(self) -> str:
        return str(self.config.name)

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass
