"""HTML made safe to hand to ``html.parser``, and URLs as browsers follow them.

On the Pythons this platform runs on (3.11 before 3.11.13, 3.12 before 3.12.11),
``html.parser`` takes time quadratic in the input on constructs still open at the
end of the document (CVE-2025-6069): unclosed ``<a `` took 1 s for 4,000, 4 s
for 8,000 and 16 s for 16,000 here, so the 500 kB a template may hold would take
a send worker about half an hour. And a ``<![`` not followed by a keyword it knows
raises AssertionError. HTML5 settles what those constructs mean (an unterminated
tag at the end is dropped, an unterminated comment runs to the end), so closing
them first changes what a reader sees very little, and parsing becomes linear. Every module here that parses HTML goes through ``parseable``.

Browsers drop tabs and line breaks anywhere in a URL before following it (WHATWG
URL); whatever compares, rewrites or redirects to a link does the same through
``followable``.
"""
from __future__ import annotations

import re

# The marked sections html.parser knows (_markupbase); any other "<![" raises.
_BAD_MARKED_SECTION = re.compile(r"<!\[(?!(?:temp|cdata|ignore|include|rcdata|if|else|endif)(?![-_.a-zA-Z0-9]))",
                                 re.IGNORECASE)
# "<!-->" and "<!--->" are whole (empty) comments in HTML5; html.parser would read
# on to the next "-->".
_ABRUPT_COMMENT = re.compile(r"<!---?>")
_URL_DROPPED = str.maketrans("", "", "\t\n\r")


def followable(url: str) -> str:
    """``url`` without the tabs and line breaks a browser drops before following it
    (and that no redirect header may carry)."""
    if "\t" in url or "\n" in url or "\r" in url:  # rare: a deleting translate costs ten times these checks
        return url.translate(_URL_DROPPED)
    return url


def parseable(html: str) -> str:
    """``html`` with an unterminated comment closed at the end, markup after the
    last ``>`` (which nothing can close) written as text, marked sections without
    a keyword html.parser knows written as text, and HTML5's abruptly closed comments closed."""
    start = html.find("<!--")
    if start != -1:
        html = _ABRUPT_COMMENT.sub("<!---->", html)
    while start != -1:
        end = html.find("-->", start + 4)
        if end == -1:
            html += "-->"
            break
        start = html.find("<!--", end + 3)
    last = html.rfind(">")
    if "<" in html[last + 1:]:
        html = html[:last + 1] + html[last + 1:].replace("<", "&lt;")
    return _BAD_MARKED_SECTION.sub("&lt;![", html)
