"""The SSRF guard on webhook URLs: literal addresses only, so no DNS is needed
(check_target resolves, it never connects)."""
from __future__ import annotations

import socket

import pytest

from core.netguard import UnsafeTargetError, check_target

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

NON_PUBLIC = {
    "loopback": "127.0.0.1",
    "loopback elsewhere in 127/8": "127.8.9.10",
    "IPv6 loopback": "[::1]",
    "private 10/8": "10.0.0.1",
    "private 172.16/12": "172.16.5.4",
    "private 192.168/16": "192.168.1.1",
    "cloud metadata (link-local)": "169.254.169.254",
    "IPv6 link-local": "[fe80::1]",
    "IPv6 unique local": "[fd00::1]",
    "multicast": "224.0.0.1",
    "IPv6 multicast": "[ff02::1]",
    "reserved 240/4": "240.0.0.1",
    "broadcast": "255.255.255.255",
    "unspecified": "0.0.0.0",
    "IPv6 unspecified": "[::]",
    "shared address space 100.64/10": "100.64.0.1",
    "loopback as IPv4-mapped IPv6": "[::ffff:127.0.0.1]",
    "metadata as IPv4-mapped IPv6": "[::ffff:169.254.169.254]",
    "loopback inside 6to4": "[2002:7f00:1::]",
    "loopback as a decimal integer": "2130706433",
}


@pytest.mark.parametrize("url", [
    "ftp://93.184.216.34/x", "file:///etc/passwd", "gopher://93.184.216.34/", "javascript:alert(1)",
    "93.184.216.34/hook", "//93.184.216.34/hook", "http:///hook", "",
])
def test_it_refuses_anything_but_http_or_https_with_a_host(url):
    with pytest.raises(UnsafeTargetError, match="http"):
        check_target(url, allow_private=True)


@pytest.mark.parametrize("url", [
    "http://user:pass@93.184.216.34/", "https://user@93.184.216.34/", "http://:pass@93.184.216.34/",
    "http://:@93.184.216.34/",
])
def test_it_refuses_credentials_in_the_url(url):
    with pytest.raises(UnsafeTargetError, match="credentials"):
        check_target(url, allow_private=True)


def test_it_refuses_a_host_that_does_not_resolve(monkeypatch):
    def nxdomain(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    with pytest.raises(UnsafeTargetError, match="cannot resolve"):
        check_target("https://no-such-host.invalid/hook", allow_private=True)


def test_it_refuses_a_host_name_that_cannot_even_be_looked_up():
    # a label over 63 characters fails IDNA encoding before any DNS query
    with pytest.raises(UnsafeTargetError, match="cannot resolve"):
        check_target("https://" + "a" * 64 + ".example/hook", allow_private=True)


@pytest.mark.parametrize("url", ["http://93.184.216.34:99999/", "http://93.184.216.34:port/", "http://[::1/"])
def test_it_refuses_a_malformed_url_as_unsafe_rather_than_raising_something_else(url):
    with pytest.raises(UnsafeTargetError, match="malformed"):
        check_target(url, allow_private=True)


@pytest.mark.parametrize("host", NON_PUBLIC.values(), ids=NON_PUBLIC.keys())
def test_it_refuses_a_non_public_address(host):
    with pytest.raises(UnsafeTargetError, match="non-public"):
        check_target(f"https://{host}:8443/hook")


@pytest.mark.parametrize("host", NON_PUBLIC.values(), ids=NON_PUBLIC.keys())
def test_it_accepts_a_non_public_address_when_an_operator_allows_private_targets(host):
    check_target(f"http://{host}/hook", allow_private=True)


def test_it_refuses_a_name_if_any_address_it_resolves_to_is_private(monkeypatch):
    def split_horizon(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(socket, "getaddrinfo", split_horizon)
    with pytest.raises(UnsafeTargetError, match="non-public"):
        check_target("https://hooks.example.test/x")


@pytest.mark.parametrize("url", [f"https://{PUBLIC_V4}/hook", f"http://{PUBLIC_V4}:8080/hook?x=1",
                                 f"https://[{PUBLIC_V6}]/hook"])
def test_it_accepts_a_public_address_and_returns_what_it_checked(url):
    assert check_target(url) in ([PUBLIC_V4], [PUBLIC_V6])
