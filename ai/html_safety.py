"""The model's HTML made safe to keep: an allow-list sanitiser (nh3, the binding to
the Rust crate ammonia) and no links to private addresses.

The model's output is data written by something that read an untrusted brief, so
it is cleaned before it is stored, whatever the prompt asked for: scripts, styles
sheets, forms, frames, event handlers and ``javascript:`` URLs go; inline styles
keep only presentational properties. A link or image whose host is a loopback,
private or link-local address (or ``localhost``) is dropped and noted: mail that
points readers at our own network is never what a marketer meant. Host names are
not resolved here (a draft does no network I/O); the pre-flight flags raw-IP links
that are public. What remains is still only rendered in the template sandbox.
"""
from __future__ import annotations

import ipaddress
from copy import deepcopy
from urllib.parse import urlsplit

import nh3

# Layout and type only: no position, no url() carriers (background), no behaviour.
STYLE_PROPERTIES = frozenset({
    "color", "background-color", "font-family", "font-size", "font-style", "font-weight", "line-height",
    "text-align", "text-decoration", "text-transform", "letter-spacing", "vertical-align", "margin", "margin-top",
    "margin-bottom", "margin-left", "margin-right", "padding", "padding-top", "padding-bottom", "padding-left",
    "padding-right", "border", "border-radius", "border-collapse", "width", "max-width", "height", "max-height",
    "display", "overflow", "mso-hide",
})
_ATTRIBUTES = deepcopy(nh3.ALLOWED_ATTRIBUTES)
_ATTRIBUTES.setdefault("*", set()).update({"style", "align"})
_ATTRIBUTES["a"] = _ATTRIBUTES.get("a", set()) | {"title", "target"}
_URL_ATTRIBUTES = {("a", "href"), ("img", "src"), ("area", "href")}


def private_host(url: str) -> bool:
    """Whether ``url`` names a loopback, private, link-local or otherwise non-public
    address (or localhost) by itself, without resolving anything."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def sanitise_html(html: str) -> tuple[str, list[str]]:
    """(the cleaned HTML, what was removed that a person should know about)."""
    notes: list[str] = []

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if (tag, attribute) in _URL_ATTRIBUTES and private_host(value):
            notes.append(f"removed a link to a private address: {value[:200]}")
            return None
        return value

    cleaned = nh3.clean(html, attributes=_ATTRIBUTES, attribute_filter=keep,
                        filter_style_properties=set(STYLE_PROPERTIES),
                        clean_content_tags={"script", "style"}, link_rel="noopener noreferrer")
    if _dropped_script(html) and not _dropped_script(cleaned):
        notes.append("removed a script")
    return cleaned, notes


def _dropped_script(html: str) -> bool:
    return "<script" in html.lower()
