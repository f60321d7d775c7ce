"""Compliance by default: every marketing email carries a visible way out.

CAN-SPAM, the GDPR's ePrivacy rules and the 2024 bulk-sender rules of Gmail and
Yahoo all want a working unsubscribe link in the body (the List-Unsubscribe header
is not enough) and, for CAN-SPAM, the sender's postal address. Authors forget, so
after rendering we look for a visible link to this email's own unsubscribe URL and
append a small footer when there is none. Only sequences marked transactional
(receipts, password resets) may go without.

Visibility is judged from the markup alone (inline styles, the ``hidden``
attribute, elements whose content is never shown); rules in a <style> sheet are
not evaluated.

Pure functions: no I/O, no database, no settings.
"""
from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from html import escape
from html.parser import HTMLParser
import itertools
import re
from typing import Any

from content.html_input import followable, parseable
from content.render import RenderedEmail

# Elements that never have a closing tag, so they are not kept on the open-element stack.
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Elements whose content is text up to their end tag, never markup (the HTML spec's
# raw text and RCDATA elements, and noscript where scripts run), and elements whose
# content a reader never sees: those and <template>.
_RAW_TEXT = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript")
_INERT = frozenset(_RAW_TEXT + ("template",))
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_BODY_START = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_ZERO = r"[-+]?\.?0(?![.\d]*[1-9])"  # a CSS zero: 0, 0px, .0, 0% (not 0.5em)
_HIDING_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|mso-hide\s*:\s*all"
                           rf"|(?<![\w-])(?:font-size|opacity)\s*:\s*{_ZERO}", re.IGNORECASE)
_NO_SIZE = re.compile(rf"(?<![\w-])(?:max-)?(?:height|width)\s*:\s*{_ZERO}", re.IGNORECASE)
_OVERFLOW_HIDDEN = re.compile(r"overflow(?:-[xy])?\s*:\s*(?:hidden|clip)", re.IGNORECASE)
_READABLE = re.compile(r"[^\W_]")  # a letter or digit: not only spaces, zero-width or punctuation
_SPACE = re.compile(r"\s")
# What continues an address in text (RFC 3986, less the ":'()*" that prose puts around one).
_URL_CHARACTERS = "-._~/?#[]@!$&+,;=%"

# Cheap signs, found without parsing, that something before the footer could hide it.
# Each search starts at a "<" or ":" and fails fast on the first few characters after
# it, which keeps it at C speed (a pattern starting with a letter under IGNORECASE
# costs ten times more); the property before a colon is checked behind it, so the
# many "padding:0" and "border:none" of a newsletter cost next to nothing.
_HIDING_PROPERTIES = ("display", "visibility", "mso-hide", "font-size", "opacity", "height", "width")
_STYLE_MARK = re.compile(r":(?:(?<=[yeth]:)|(?<=[yeth]\s:))"
                         rf"(?=\s*(?:none|hidden|collapse|all|{_ZERO}))(?:"
                         + "|".join(rf"(?<={name}:)|(?<={name}\s:)" for name in _HIDING_PROPERTIES) + ")",
                         re.IGNORECASE)
_INERT_TAG = re.compile(r"<(?=[stinx])(s(?:cript|tyle)|t(?:itle|emplate|extarea)|iframe|no(?:embed|frames|script)|xmp)"
                        r"(?=[\s/>])", re.IGNORECASE)
_TAG_NAME = re.compile(r"[a-zA-Z][^\s/>]*")
# A tag that runs into another "<" before its ">": rare in well-formed HTML (a
# title="a<b"), and the sign of a tag cut off or a quote left open, either of
# which can make the tags after it part of it.
_TAG_RUNS_ON = re.compile(r"<[a-zA-Z/!?][^<>]*<")


def is_transactional(sequence_settings: dict[str, Any] | None) -> bool:
    """Only an explicit ``transactional: true`` opts a sequence out of the footer."""
    return (sequence_settings or {}).get("transactional") is True


def _hides(tag: str, attrs: dict[str, str | None]) -> bool:
    """Whether this element keeps its content from the reader (``aria-hidden`` does not)."""
    if tag in _INERT or "hidden" in attrs:
        return True
    style = attrs.get("style")
    if not style:
        return False
    return bool(_HIDING_STYLE.search(style) or (_NO_SIZE.search(style) and _OVERFLOW_HIDDEN.search(style)))


def _is_unsubscribe_url(candidate: str, url: str) -> bool:
    """``url`` itself, or with a query or fragment (the same page): an address that
    merely carries it, as in ``?next=<url>``, leads elsewhere."""
    candidate = followable(candidate).strip()
    return candidate.startswith(url) and candidate[len(url):len(url) + 1] in ("", "?", "#")


class _UnsubscribeLinkFinder(HTMLParser):
    """Finds an <a> to the unsubscribe URL that a reader can see: it has text with a
    letter or digit, or an image with alt text, and neither it nor an ancestor is hidden."""

    CDATA_CONTENT_ELEMENTS = _RAW_TEXT  # HTMLParser's own are only script and style

    def __init__(self, unsubscribe_url: str) -> None:
        super().__init__(convert_charrefs=True)  # attribute values arrive unescaped too
        self.url = unsubscribe_url
        self.stack: list[tuple[str, bool]] = []  # (tag, hidden here or above)
        self.link_hidden: bool | None = None  # set while inside a matching <a>
        self.found = False

    def _hidden(self) -> bool:
        return bool(self.stack and self.stack[-1][1])

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        hidden = self._hidden() or _hides(tag, values)
        if tag == "a":  # a new link ends any open one, as in browsers
            self.link_hidden = hidden if _is_unsubscribe_url(values.get("href") or "", self.url) else None
        elif tag == "img" and self.link_hidden is False and not hidden and _READABLE.search(values.get("alt") or ""):
            self.found = True  # an image without alt text is blank where images are off
        if tag not in _VOID:
            self.stack.append((tag, hidden))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)  # browsers ignore the slash: <div/> stays open
        if tag in _RAW_TEXT:
            self.set_cdata_mode(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self.link_hidden = None
        # Pop to the matching open tag; stray end tags in sloppy HTML are ignored.
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                break

    def handle_data(self, data: str) -> None:
        if self.link_hidden is False and not self._hidden() and _READABLE.search(data):
            self.found = True


def _in_open_comment(html: str) -> bool:
    return html.rfind("<!--") > html.rfind("-->")


def has_visible_unsubscribe_link(html: str, unsubscribe_url: str) -> bool:
    """Whether ``html`` has a link to this email's unsubscribe page that a reader sees."""
    if unsubscribe_url not in html:  # the common case, without the cost of parsing
        return False
    if _in_open_comment(html):  # browsers hide all that follows; the parser would show it
        html = html[:html.rfind("<!--")]
    finder = _UnsubscribeLinkFinder(unsubscribe_url)
    finder.feed(parseable(html))
    finder.close()
    return finder.found


def has_unsubscribe_url_text(text: str, unsubscribe_url: str) -> bool:
    """Whether plain text shows the URL as an address of its own: not glued to
    another one before it (``?next=<url>``), and at most a query, a fragment or
    punctuation after it."""
    at = text.find(unsubscribe_url)
    while at != -1:
        before = text[at - 1] if at else " "
        end = at + len(unsubscribe_url)
        space = _SPACE.search(text, end)
        tail = text[end:space.start() if space else len(text)].rstrip(".,;:!?)]>*\"'")
        if not (before.isalnum() or before in _URL_CHARACTERS) and tail[:1] in ("", "?", "#"):
            return True
        at = text.find(unsubscribe_url, end)
    return False


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


@lru_cache(maxsize=64)
def _tag_pattern(name: str) -> re.Pattern[str]:
    """``name``'s start and end tags, and the comments and raw text to pass over (a tag
    there is only text)."""
    raw_text = "|".join(_RAW_TEXT)
    return re.compile(rf"<!--.*?-->|<({raw_text})(?=[\s/>]).*?</\1(?=[\s/>])|<(/?){re.escape(name)}(?=[\s/>])",
                      re.IGNORECASE | re.DOTALL)


def _closed(html: str, name: str, start: int, end: int) -> bool:
    """Whether the ``name`` element opened just before ``start`` is closed by ``end``."""
    depth = 1
    for tag in _tag_pattern(name).finditer(html, start, end):
        if tag.group(2) is None:
            continue  # a comment or raw text
        depth += -1 if tag.group(2) else 1
        if not depth:
            return True
    return False


def _hidden_attributes(html: str, end: int) -> Iterator[int]:
    """Where a ``hidden`` attribute may start before ``end`` (found with str.find:
    searching for a word that starts with a letter is slow in ``re``)."""
    for stem in ("idden", "IDDEN"):
        at = html.find(stem, 1, end)
        while at != -1:
            before, after = html[at - 2:at - 1] or "x", html[at + 5:at + 6] or ">"
            starts_attribute = before.isspace() or before in "/\"'"
            if html[at - 1] in "hH" and starts_attribute and not (after.isalnum() or after in "-_"):
                yield at - 1
            at = html.find(stem, at + 5, end)


def _may_hide(html: str, at: int) -> bool:
    """Whether something open at ``at`` might hide what is put there, judged without
    parsing (a parse costs ten times the rest of the footer check). Cautious: True
    only means the footer is then checked by parsing. A hiding style or attribute
    is charged to the nearest tag before it, which is its own when it is one.
    Character references are not decoded here: an author who writes
    ``display:&#110;one`` means to hide, like one who uses a class (see above)."""
    if html.rfind("<!--", 0, at) > html.rfind("-->", 0, at) or html.rfind("<", 0, at) > html.rfind(">", 0, at):
        return True
    if _TAG_RUNS_ON.search(html, 0, at):  # a tag cut off, or a quote left open, takes in tags after it
        return True
    for inert in _INERT_TAG.finditer(html, 0, at):
        if not _closed(html, inert.group(1).lower(), inert.end(), at):
            return True
    checked: set[int] = set()
    styles = (style.start() for style in _STYLE_MARK.finditer(html, 0, at))
    for mark in itertools.chain(styles, _hidden_attributes(html, at)):
        tag = html.rfind("<", 0, mark)
        if tag in checked or tag == -1 or html.startswith(("</", "<!"), tag):
            continue  # the same element again, or text that styles nothing
        checked.add(tag)
        name = _TAG_NAME.match(html, tag + 1)
        if name is None:
            return True
        element = name.group().lower()
        if element not in _VOID and not _closed(html, element, mark, at):
            return True
    return False


def _closing_tags(html: str) -> str:
    """What ends an open comment and the hiding elements still open at the end of ``html``."""
    finder = _UnsubscribeLinkFinder("")
    finder.feed(parseable(html))
    hiding = next((depth for depth, (_, hidden) in enumerate(finder.stack) if hidden), len(finder.stack))
    tags = "".join(f"</{tag}>" for tag, _ in reversed(finder.stack[hiding:]))
    return ("-->" if _in_open_comment(html) else "") + tags


def insert_footer(html: str, footer: str, unsubscribe_url: str) -> str:
    """``footer`` before ``</body>`` (or at the end), where a reader sees it.

    What the author left open there that would hide it (a display:none preheader,
    a <style>, a comment) is closed first, and the result confirmed with
    ``has_visible_unsubscribe_link``; when closing is not enough, the footer goes at
    the start of the body, where nothing is open yet."""
    closing = _BODY_END.search(html)
    at = closing.start() if closing else len(html)
    placed = html[:at] + footer + html[at:]
    if not _may_hide(html, at) or has_visible_unsubscribe_link(placed, unsubscribe_url):
        return placed
    placed = html[:at] + _closing_tags(html[:at]) + footer + html[at:]
    if has_visible_unsubscribe_link(placed, unsubscribe_url):
        return placed
    # Nothing closes it (a tag cut off, say): the start of the body has nothing open,
    # unless the author's markup is broken before it too; the very start never has.
    body = _BODY_START.search(html)
    if body is not None:
        placed = html[:body.end()] + footer + html[body.end():]
        if has_visible_unsubscribe_link(placed, unsubscribe_url):
            return placed
    return footer + html


def add_unsubscribe_footer(email: RenderedEmail, unsubscribe_url: str, postal_address: str | None) -> RenderedEmail:
    """The email with a footer added to each part that lacks its own unsubscribe link.

    The HTML part needs a visible <a> to this email's unsubscribe URL; the text part
    needs the URL standing on its own. Each part is judged on its own, so an
    author's link in the HTML does not excuse a hand-written text part that has none.
    Called after rendering, so a template's ``{{ unsubscribe_url }}`` is the URL by now.
    """
    html = email.html
    if html is not None and not has_visible_unsubscribe_link(html, unsubscribe_url):
        html = insert_footer(html, footer_html(unsubscribe_url, postal_address), unsubscribe_url)
    text = email.text
    if not has_unsubscribe_url_text(text, unsubscribe_url):
        text = f"{text.rstrip()}\n\n{footer_text(unsubscribe_url, postal_address)}\n"
    # Not dataclasses.replace, which costs more than the rest of this check.
    return RenderedEmail(subject=email.subject, html=html, text=text)
