"""HTML to readable plain text for the text/plain part, with links kept as
``label (url)`` so a text-only reader can still follow them.

``html_to_text`` is the reference conversion: parse, then ``tidy_text``. Sending
does not run it per email when it can avoid it (``content.text_template`` derives
a text template from the HTML template once); both end in ``tidy_text`` and
``link_text`` here, so the two cannot drift apart.
"""
from __future__ import annotations

from html import unescape
from html.parser import HTMLParser

from content.html_input import parseable

_BLOCK = {"p", "div", "br", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "li", "table", "section", "hr"}
_SKIP = {"style", "script", "head", "title"}

# The odd whitespace that counts as a space (newlines are handled on their own).
_OTHER_SPACES = str.maketrans({"\t": " ", "\r": " ", "\f": " ", "\v": " "})


def link_text(label: str, href: str) -> str:
    """A link as text: ``label (href)``, or the bare URL when the label says nothing more."""
    label = label.strip()
    return f"{label} ({href})" if label and label != href else href


def tidy_text(raw: str) -> str:
    """Entities decoded, runs of spaces collapsed, no space beside a newline, at
    most one blank line in a row.

    The rules are those of ``[ \t\r\f\v]+`` -> " ", `` *\n *`` -> "\n",
    ``\n{3,}`` -> "\n\n", written with str methods: on text holding any non-Latin-1
    character the regular expressions cost about 30 ns a character, nearly half a
    derived-text render (tests/unit/test_text_template.py checks both agree).
    """
    text = unescape(raw)
    if "\t" in text or "\r" in text or "\f" in text or "\v" in text:
        text = text.translate(_OTHER_SPACES)
    while "  " in text:
        text = text.replace("  ", " ")
    # Spaces are single now, so at most one sits on each side of a newline.
    text = text.replace(" \n", "\n").replace("\n ", "\n")
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag == "a":
            self._href = dict(attrs).get("href")
            self._link_text = []
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP and self._skip:
            self._skip -= 1
        elif tag == "a" and self._href is not None:
            self.end_link("".join(self._link_text), self._href)
            self._href = None
        elif tag in _BLOCK:
            self.parts.append("\n")

    def end_link(self, label: str, href: str) -> None:
        self.parts.append(link_text(label, href))

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._href is not None:
            self._link_text.append(data)
        else:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(parseable(html))
    parser.close()
    return tidy_text("".join(parser.parts))
