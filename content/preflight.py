"""Pre-flight content checks: what mailbox providers' filters are likely to punish,
scored before a sequence may go live.

Heuristics, each with its reason and points: an all-caps subject, piled-up
punctuation or currency signs, spam-trigger phrases (in the subject, the text part
or the HTML's own text), HTML that is mostly images, link shorteners, raw-IP and
malformed links, link text showing one domain while pointing at another. When
SpamAssassin's ``spamc`` is installed and spamd answers, its score for the email as
it would be sent is added; when it cannot run, a notice says why. An email scoring
``FAIL_SCORE`` or more fails; a sequence with a failing email cannot be activated
without an explicit override.

Any account can save any HTML and have it checked inside a web request, so the
HTML is read in one linear pass (``scan_html``): no backtracking regular
expression, and not ``html.parser`` either, which is quadratic on unclosed tags on
the Pythons this runs on (CPython gh-135462).
"""
from __future__ import annotations

import math
import re
import shutil
import subprocess
import time
import unicodedata
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import lru_cache
from html import unescape
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

from content.html_input import followable

FAIL_SCORE = 5.0
SPAM_PHRASES = (
    "100% free", "act now", "apply now", "cash bonus", "click here", "double your", "earn money", "free money",
    "guaranteed", "no credit check", "risk-free", "risk free", "winner", "you have been selected", "urgent",
    "limited time", "once in a lifetime", "buy now", "lowest price", "no catch", "miracle", "viagra",
)
SHORTENERS = ("bit.ly", "tinyurl.com", "goo.gl", "t.co", "ow.ly", "is.gd", "buff.ly", "rebrand.ly", "cutt.ly")
# Seconds all of one check's spamc calls may take: the check runs inside a web
# request that gunicorn kills at 60 s, and spamc may wait its own timeout per call.
SPAMC_BUDGET = 15.0

# Each pattern is one character class (or a literal) matched from a known position,
# so it has nothing to backtrack into.
_SPACES = re.compile(r"[\t\n\f\r ]*")
_GAP = re.compile(r"[\t\n\f\r /]*")  # between attributes; the "/" of <br/> is skipped
_TAG_NAME = re.compile(r"[^\t\n\f\r />]*")
_ATTR_NAME = re.compile(r"[^\t\n\f\r />][^\t\n\f\r />=]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
_RAW_TEXT_END = {name: re.compile(f"</{name}", re.IGNORECASE) for name in ("script", "style", "title")}
_DOTTED = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*", re.IGNORECASE | re.ASCII)
_BREAKS = frozenset({"p", "div", "br", "tr", "td", "th", "li", "ul", "ol", "table", "section", "hr", "blockquote",
                     "h1", "h2", "h3", "h4", "h5", "h6"})
_FULL_STOPS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})  # dots to IDNA


@dataclass
class ContentScore:
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)

    def add(self, points: float, reason: str) -> None:
        self.score += points
        self.reasons.append(f"{reason} (+{points:g})")

    @property
    def passed(self) -> bool:
        return self.score < FAIL_SCORE


@dataclass
class Page:
    """What the checks read from an HTML body: its visible text (spaces collapsed),
    its links as (href, link text), and how many images it shows."""

    text: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)
    images: int = 0


def _attributes(html: str, pos: int) -> tuple[dict[str, str], int] | None:
    """The attributes of the tag whose name ends at ``pos``, quoted or not, and the
    position after its ">"; None when the document ends inside the tag."""
    attrs: dict[str, str] = {}
    while True:
        pos = _GAP.match(html, pos).end()  # type: ignore[union-attr]
        if pos >= len(html):
            return None
        if html[pos] == ">":
            return attrs, pos + 1
        end = _ATTR_NAME.match(html, pos).end()  # type: ignore[union-attr]
        name, pos = html[pos:end].lower(), _SPACES.match(html, end).end()  # type: ignore[union-attr]
        value = ""
        if html.startswith("=", pos):
            pos = _SPACES.match(html, pos + 1).end()  # type: ignore[union-attr]
            if html[pos:pos + 1] in ("'", '"'):
                close = html.find(html[pos], pos + 1)
                if close < 0:
                    return None
                value, pos = html[pos + 1:close], close + 1
            else:
                end = _UNQUOTED.match(html, pos).end()  # type: ignore[union-attr]
                value, pos = html[pos:end], end
        attrs.setdefault(name, unescape(value))


class _Scanner:
    """One left-to-right pass over HTML. Each step moves forward, and each search
    either finds its end or ends the scan (an unclosed quote, comment or tag takes
    the rest of the document, as in a browser), so the cost is linear."""

    def __init__(self, html: str) -> None:
        self.html = html
        self.page = Page()
        self.text: list[str] = []
        self.href: str | None = None  # of the <a> we are inside, if any
        self.label: list[str] = []

    def run(self) -> Page:
        html, pos = self.html, 0
        while pos < len(html):
            lt = html.find("<", pos)
            self._data(html[pos:] if lt < 0 else html[pos:lt])
            pos = len(html) if lt < 0 else self._markup(lt)
        self._close_link()
        self.page.text = " ".join("".join(self.text).split())
        return self.page

    def _markup(self, lt: int) -> int:
        """Reads the markup starting at ``lt`` (a "<"); returns the position after it."""
        html, after = self.html, lt + 1
        following = html[after:after + 1]
        if following.isascii() and following.isalpha():
            return self._start_tag(after)
        if following == "/":
            return self._end_tag(after + 1)
        if html.startswith("!--", after):
            end = html.find("-->", after + 1)  # from "<!-" so that "<!-->" is an empty comment
            return len(html) if end < 0 else end + 3
        if following in ("!", "?"):
            return self._skip_past(">", after)
        self._data("<")
        return after

    def _start_tag(self, pos: int) -> int:
        end = _TAG_NAME.match(self.html, pos).end()  # type: ignore[union-attr]
        name, parsed = self.html[pos:end].lower(), _attributes(self.html, end)
        if parsed is None:
            return len(self.html)
        attrs, pos = parsed
        if name == "a":  # an <a> inside an <a> closes the first, as browsers do
            self._close_link()
            self.href = attrs.get("href")
        elif name == "img":
            self.page.images += 1
        if name in _BREAKS:
            self.text.append(" ")
        if name in _RAW_TEXT_END:  # script, style, title: text no reader sees
            closing = _RAW_TEXT_END[name].search(self.html, pos)
            return len(self.html) if closing is None else closing.start()
        return pos

    def _end_tag(self, pos: int) -> int:
        following = self.html[pos:pos + 1]
        if not (following.isascii() and following.isalpha()):
            return self._skip_past(">", pos)
        end = _TAG_NAME.match(self.html, pos).end()  # type: ignore[union-attr]
        name, parsed = self.html[pos:end].lower(), _attributes(self.html, end)
        if name == "a":
            self._close_link()
        elif name in _BREAKS:
            self.text.append(" ")
        return len(self.html) if parsed is None else parsed[1]

    def _skip_past(self, marker: str, pos: int) -> int:
        found = self.html.find(marker, pos)
        return len(self.html) if found < 0 else found + len(marker)

    def _data(self, raw: str) -> None:
        if raw:
            text = unescape(raw)
            self.text.append(text)
            if self.href is not None:
                self.label.append(text)

    def _close_link(self) -> None:
        if self.href is not None:
            self.page.links.append((self.href, " ".join("".join(self.label).split())))
        self.href, self.label = None, []


def scan_html(html: str) -> Page:
    """``html``'s visible text, links and images, in time linear in its length."""
    return _Scanner(html).run()


def link_host(href: str) -> str | None:
    """The host a browser would visit for ``href``, lower-case, without a trailing
    dot (``bit.ly.`` is bit.ly) and with IDNA's other full stops read as dots; ""
    for links without one (mailto:, relative), None for a URL that does not parse.
    Tabs and newlines are dropped and backslashes read as slashes, as browsers do."""
    url = followable(href).strip().replace("\\", "/")
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # "http://[x": an unclosed IPv6 bracket, a bad port, ...
        return None
    return unicodedata.normalize("NFKC", host).translate(_FULL_STOPS).lower().rstrip(".")


def shown_domain(label: str) -> str | None:
    """The first domain name written in a link's text (``www.bank.test``): dotted
    words whose last word is two letters or more."""
    for token in _DOTTED.findall(label):
        words = token.split(".")
        last = max((i for i, word in enumerate(words) if i and len(word) >= 2 and word.isalpha()), default=0)
        if last:
            return ".".join(words[:last + 1]).lstrip("-")
    return None


def _subject(score: ContentScore, subject: str) -> None:
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 5 and sum(c.isupper() for c in letters) / len(letters) > 0.7:
        score.add(2, "subject is mostly capital letters")
    if re.search(r"[!?]{2,}|[$€£]{2,}", subject):
        score.add(1, "subject piles up punctuation or currency signs")
    if not subject.strip():
        score.add(3, "subject is empty")


def _phrases(score: ContentScore, *texts: str) -> None:
    """A phrase counts once, found in any of ``texts`` (each read on its own)."""
    haystacks = [" ".join(text.split()).lower() for text in texts if text]
    found = [p for p in SPAM_PHRASES if any(p in haystack for haystack in haystacks)]
    for phrase in found[:4]:
        score.add(1, f"spam-trigger phrase '{phrase}'")


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _links(score: ContentScore, links: list[tuple[str, str]]) -> None:
    for href, label in links:
        host = link_host(href)
        if host is None:
            score.add(1, f"malformed link {_clip(href.strip())}")
            continue
        if not host:
            continue
        if host in SHORTENERS or any(host.endswith("." + s) for s in SHORTENERS):
            score.add(2, f"link shortener {host}")
        elif re.fullmatch(r"[0-9.]+", host) or ":" in host:  # only an IPv6 literal has a ":" in its host
            score.add(2, f"link to a bare IP address {host}")
        shown = shown_domain(label)
        if shown and shown.lower().removeprefix("www.") not in host:
            score.add(1, f"link text shows {shown} but goes to {host}")


def _images(score: ContentScore, page: Page) -> None:
    if page.images and len(page.text) < 200 * page.images:
        score.add(2, f"{page.images} image(s) with only {len(page.text)} characters of text")


def score_content(subject: str, html: str | None, text: str | None) -> ContentScore:
    """Score one email's rendered (or raw template) subject and bodies. The HTML is
    judged on its own text even when a text part is given: readers see the HTML,
    so a clean text part must not hide it."""
    score = ContentScore()
    page = scan_html(html or "")
    _subject(score, subject)
    _phrases(score, subject, text or "", page.text)
    if html:
        _links(score, page.links)
        _images(score, page)
    return score


@dataclass(frozen=True)
class SpamVerdict:
    """SpamAssassin's score for one email, or (``note``) why there is none."""

    score: float | None = None
    note: str | None = None


NOT_INSTALLED = SpamVerdict(note="SpamAssassin not run: spamc not installed")


@dataclass(frozen=True)
class Spamd:
    """Where ``spamc`` finds SpamAssassin's daemon: ESEQ_SPAMD_HOST/ESEQ_SPAMD_PORT,
    or spamc's own configuration (localhost:783) when no host is set."""

    host: str | None = None
    port: int | None = None
    timeout: float = 10.0

    def installed(self) -> bool:
        return shutil.which("spamc") is not None

    def run(self, raw: bytes, timeout: float | None = None) -> SpamVerdict:
        """SpamAssassin's verdict on ``raw`` (a whole message), within ``timeout``
        seconds (``self.timeout`` by default). ``-x`` matters: without it spamc that
        cannot reach spamd prints "0/0" and exits 0, which would read as a clean
        score from a check that never ran."""
        if not self.installed():
            return NOT_INSTALLED
        seconds = self.timeout if timeout is None else timeout
        where = ["-d", self.host] + (["-p", str(self.port)] if self.port else []) if self.host else []
        try:
            # One connection attempt: spamc's default three, a second apart, made every
            # check wait two seconds per email whenever spamd was not running.
            done = subprocess.run(["spamc", "-x", "-c", "--connect-retries", "1", *where], input=raw,
                                  capture_output=True, timeout=seconds)
        except subprocess.TimeoutExpired:
            return SpamVerdict(note=f"SpamAssassin not run: spamd did not answer within {round(seconds, 1):g} s")
        except (OSError, subprocess.SubprocessError) as exc:
            return SpamVerdict(note=f"SpamAssassin not run: spamc failed ({type(exc).__name__})")
        if done.returncode not in (0, 1):  # 0: ham, 1: spam; anything else is spamc's own failure
            return SpamVerdict(note=f"SpamAssassin not run: spamc exited with status {done.returncode}")
        try:
            value = float(done.stdout.decode().strip().split("/")[0])
        except (ValueError, UnicodeDecodeError):
            value = math.nan
        if not math.isfinite(value):
            return SpamVerdict(note="SpamAssassin not run: spamc gave no score")
        return SpamVerdict(score=value)

    def score(self, raw: bytes) -> float | None:
        """SpamAssassin's score for ``raw``; None when spamc is not installed or
        spamd did not answer (``run`` says which)."""
        return self.run(raw).score


class SpamAssassinRuns:
    """One check's calls to spamd: each distinct email once, and all of them within
    ``budget`` seconds from the start of the check; what is left after that gets a
    notice instead of a score."""

    def __init__(self, spamd: Spamd, budget: float = SPAMC_BUDGET,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spamd, self.budget, self.clock = spamd, budget, clock
        self.deadline = clock() + budget
        self.verdicts: dict[Hashable, SpamVerdict] = {}
        self.installed: bool | None = None

    def verdict(self, key: Hashable, build: Callable[[], bytes]) -> SpamVerdict:
        """The verdict on the email ``key`` names; ``build`` makes its raw message,
        only when spamd is to read it."""
        if key not in self.verdicts:
            self.verdicts[key] = self._run(build)
        return self.verdicts[key]

    def _run(self, build: Callable[[], bytes]) -> SpamVerdict:
        if self.installed is None:
            self.installed = self.spamd.installed()
        if not self.installed:
            return NOT_INSTALLED
        if self.clock() < self.deadline:
            raw = build()
            left = self.deadline - self.clock()  # building (rendering) counts too
            if left > 0:
                return self.spamd.run(raw, min(self.spamd.timeout, left))
        return SpamVerdict(note=f"SpamAssassin not run: the check's {self.budget:g} s for SpamAssassin ran out")


def dkim_aligned(from_email: str, dkim_domain: str | None) -> bool:
    """DMARC relaxed alignment (RFC 7489 3.1.1): the From domain and the DKIM domain
    have the same organizational domain, by the Public Suffix List, so
    news.example.com and mail.example.com align and a.co.uk and b.co.uk do not.
    A name the list cannot place (a single label) must match exactly."""
    if not dkim_domain:
        return True
    domain = from_email.rsplit("@", 1)[-1].lower().rstrip(".")
    signing = dkim_domain.lower().rstrip(".")
    if domain == signing:
        return True
    organization = _organizational_domain(domain)
    return organization is not None and organization == _organizational_domain(signing)


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # parses the bundled list once (about 0.1 s)


def _organizational_domain(domain: str) -> str | None:
    return _suffixes().privatesuffix(domain)
