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


def check_target(url: str, allow_private: bool = False) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTargetError("webhook URL must be http(s) with a host")
    if parts.username or parts.password:
        raise UnsafeTargetError("webhook URL must not carry credentials")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UnsafeTargetError(f"cannot resolve {parts.hostname}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if allow_private:
            continue
        if (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
                or address.is_reserved or address.is_unspecified):
            raise UnsafeTargetError(f"{parts.hostname} resolves to a non-public address")
