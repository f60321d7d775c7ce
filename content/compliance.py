"""Compliance by default: every marketing email carries a visible way out.

CAN-SPAM, the GDPR's ePrivacy rules and the 2024 bulk-sender rules of Gmail and
Yahoo all want a working unsubscribe link in the body (the List-Unsubscribe header
is not enough) and, for CAN-SPAM, the sender's postal address. Authors forget, so
after rendering we look for a visible link to this email's own unsubscribe URL and
append a small footer when there is none. Only sequences marked transactional
(receipts, password resets) may go without.

Pure functions: no I/O, no database, no settings.
"""
from __future__ import annotations

from html import escape
from html.parser import HTMLParser
import re
from typing import Any

from content.render import RenderedEmail

# Elements that never have a closing tag, so they are not kept on the open-element stack.
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HIDING_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])",
                           re.IGNORECASE)


def is_transactional(sequence_settings: dict[str, Any] | None) -> bool:
    """Only an explicit ``transactional: true`` opts a sequence out of the footer."""
    return (sequence_settings or {}).get("transactional") is True


def _hides(attrs: dict[str, str | None]) -> bool:
    return "hidden" in attrs or bool(_HIDING_STYLE.search(attrs.get("style") or ""))


class _UnsubscribeLinkFinder(HTMLParser):
    """Finds an <a> pointing at the unsubscribe URL that a reader can see: it has
    text or an image, and neither it nor an ancestor is hidden."""

    def __init__(self, unsubscribe_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.url = unsubscribe_url
        self.stack: list[tuple[str, bool]] = []  # (tag, hidden here or above)
        self.link_hidden: bool | None = None  # set while inside a matching <a>
        self.found = False

    def _hidden(self) -> bool:
        return bool(self.stack and self.stack[-1][1])

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        hidden = self._hidden() or _hides(values)
        if tag == "a" and self.url in (values.get("href") or ""):
            self.link_hidden = hidden
        elif tag == "img" and self.link_hidden is False and not hidden:
            self.found = True
        if tag not in _VOID:
            self.stack.append((tag, hidden))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img" and self.link_hidden is False and not (self._hidden() or _hides(dict(attrs))):
            self.found = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self.link_hidden = None
        # Pop to the matching open tag; stray end tags in sloppy HTML are ignored.
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                break

    def handle_data(self, data: str) -> None:
        if self.link_hidden is False and data.strip() and not self._hidden():
            self.found = True


def has_visible_unsubscribe_link(html: str, unsubscribe_url: str) -> bool:
    if unsubscribe_url not in html:  # the common case, without the cost of parsing
        return False
    finder = _UnsubscribeLinkFinder(unsubscribe_url)
    finder.feed(html)
    finder.close()
    return finder.found


def footer_html(unsubscribe_url: str, postal_address: str | None) -> str:
    lines = [f'<a href="{escape(unsubscribe_url)}">Unsubscribe</a>']
    if postal_address and postal_address.strip():
        lines.append("<br>".join(escape(line.strip()) for line in postal_address.strip().splitlines()))
    body = "<br>".join(lines)
    return f'<p style="margin-top:24px;font-size:12px;color:#666666">{body}</p>'


def footer_text(unsubscribe_url: str, postal_address: str | None) -> str:
    lines = ["--", f"Unsubscribe: {unsubscribe_url}"]
    if postal_address and postal_address.strip():
        lines.extend(line.strip() for line in postal_address.strip().splitlines())
    return "\n".join(lines)


def append_html(html: str, footer: str) -> str:
    """``footer`` just before ``</body>``, or at the end when there is none."""
    closing = _BODY_END.search(html)
    if closing:
        return html[:closing.start()] + footer + html[closing.start():]
    return html + footer


def add_unsubscribe_footer(email: RenderedEmail, unsubscribe_url: str, postal_address: str | None) -> RenderedEmail:
    """The email with a footer added to each part that lacks its own unsubscribe link.

    The HTML part needs a visible <a> to this email's unsubscribe URL; the text part
    needs the URL anywhere. Each part is judged on its own, so an author's link in
    the HTML does not excuse a hand-written text part that has none.
    """
    html = email.html
    if html is not None and not has_visible_unsubscribe_link(html, unsubscribe_url):
        html = append_html(html, footer_html(unsubscribe_url, postal_address))
    text = email.text
    if unsubscribe_url not in text:
        text = f"{text.rstrip()}\n\n{footer_text(unsubscribe_url, postal_address)}\n"
    # Not dataclasses.replace, which costs more than the rest of this check.
    return RenderedEmail(subject=email.subject, html=html, text=text)
