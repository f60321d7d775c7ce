"""The SSRF guard: a webhook step, and a provider an account configured, may only
call public addresses.

The host is resolved and every address it resolves to must be public; private,
loopback, link-local (cloud metadata at 169.254.169.254), multicast and reserved
ranges are refused unless an operator allows them explicitly
(ESEQ_WEBHOOK_ALLOW_PRIVATE, which the tests set for loopback). Redirects are never
followed, so a public URL cannot bounce the call inward.

Checking a name when it is saved is not enough: it is resolved again to connect,
and that answer may differ (DNS rebinding). So every connection is checked when it
is made and goes to an address the check returned (``pinned_opener`` for HTTP;
delivery.smtp does the same for SMTP), while TLS and the Host header keep the name.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit


class UnsafeTargetError(ValueError):
    """The webhook URL points somewhere the platform must not call."""


def _embedded_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries and routes to (IPv4-mapped, 6to4)."""
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour
    return None


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    embedded = _embedded_ipv4(address)
    if embedded is not None and not _is_public(embedded):
        return False
    # is_global also leaves out ranges that are neither private nor reserved but
    # still not the public internet (100.64.0.0/10 shared address space).
    return address.is_global and not (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified)


def check_target(url: str, allow_private: bool = False) -> list[str]:
    """Refuse ``url`` unless it is http(s), carries no credentials, and its host
    resolves only to public addresses; return the addresses checked, so the caller
    connects to one of them instead of resolving the name again (a second lookup
    could answer differently: DNS rebinding)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # a bad port or bracketed host
        raise UnsafeTargetError(f"webhook URL is malformed: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTargetError("webhook URL must be http(s) with a host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTargetError("webhook URL must not carry credentials")
    return check_host(parts.hostname, port, allow_private)


def check_host(host: str, port: int, allow_private: bool = False) -> list[str]:
    """Resolve ``host`` once and return its addresses, every one of them checked
    (public unless ``allow_private``); UnsafeTargetError otherwise. Connect to one
    of these rather than to the name: a second lookup could answer differently."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):  # gaierror, an over-long IDNA label, a NUL
        raise UnsafeTargetError(f"cannot resolve {host}") from None
    addresses: list[str] = []
    for info in infos:
        found = str(info[4][0])
        try:
            address = ipaddress.ip_address(found)
        except ValueError:
            raise UnsafeTargetError(f"{host} resolves to an unusable address") from None
        if not allow_private and not _is_public(address):
            raise UnsafeTargetError(f"{host} resolves to a non-public address")
        if found not in addresses:
            addresses.append(found)
    if not addresses:
        raise UnsafeTargetError(f"cannot resolve {host}")
    return addresses


# Who checks a connection's host before it is made: ``check_host`` with the
# operator's allow_private, or None for a host the operator configured (SMTP_*).
HostCheck = Callable[[str, int], list[str]]


def host_check(allow_private: bool) -> HostCheck:
    return lambda host, port: check_host(host, port, allow_private)


def connect_pinned(addresses: Sequence[str], port: int, timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                   source_address: tuple[str, int] | None = None) -> socket.socket:
    """A connection to the first of ``addresses`` (from ``check_host``) that takes
    one, each tried in turn as socket.create_connection tries a name's, but with no
    lookup of the name."""
    error: OSError = OSError(f"no address to connect to on port {port}")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout, source_address)
        except OSError as exc:
            error = exc
    raise error


def _pinned(http_class: Any, addresses: Sequence[str]) -> Any:
    """``http_class`` connecting to ``addresses`` whatever its host name resolves to
    now; the Host header, TLS SNI and certificate check still use the name."""
    def connection(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
        conn = http_class(*args, **kwargs)
        conn._create_connection = lambda target, *a, **kw: connect_pinned(addresses, target[1], *a, **kw)
        return conn  # type: ignore[no-any-return]
    return connection


class _PinnedHandler:
    """Connect to the address the SSRF guard checked, not to a second lookup's
    answer (DNS rebinding). Through an operator's proxy the proxy connects."""

    def __init__(self, addresses: Sequence[str]) -> None:
        super().__init__()
        self.addresses = list(addresses)

    def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> Any:
        if not (req.has_proxy() or getattr(req, "_tunnel_host", None)):
            http_class = _pinned(http_class, self.addresses)
        return super().do_open(http_class, req, **kwargs)  # type: ignore[misc]


class _PinnedHTTPHandler(_PinnedHandler, urllib.request.HTTPHandler):
    pass


class _PinnedHTTPSHandler(_PinnedHandler, urllib.request.HTTPSHandler):
    pass


def pinned_opener(addresses: Sequence[str], *handlers: Any) -> urllib.request.OpenerDirector:
    """An opener whose http(s) connections go to ``addresses`` (what ``check_host``
    returned), with ``handlers`` besides (a redirect refusal)."""
    return urllib.request.build_opener(*handlers, _PinnedHTTPHandler(addresses), _PinnedHTTPSHandler(addresses))
