"""The SSRF guard: a webhook step may only call public addresses.

The URL's host is resolved and every address it resolves to must be public;
private, loopback, link-local (cloud metadata at 169.254.169.254), multicast and
reserved ranges are refused unless an operator allows them explicitly
(ESEQ_WEBHOOK_ALLOW_PRIVATE, which the tests set for loopback). Redirects are never
followed, so a public URL cannot bounce the call inward.
"""
from __future__ import annotations

import ipaddress
import socket
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
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):  # gaierror, an over-long IDNA label, a NUL
        raise UnsafeTargetError(f"cannot resolve {parts.hostname}") from None
    addresses: list[str] = []
    for info in infos:
        host = str(info[4][0])
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise UnsafeTargetError(f"{parts.hostname} resolves to an unusable address") from None
        if not allow_private and not _is_public(address):
            raise UnsafeTargetError(f"{parts.hostname} resolves to a non-public address")
        if host not in addresses:
            addresses.append(host)
    if not addresses:
        raise UnsafeTargetError(f"cannot resolve {parts.hostname}")
    return addresses
