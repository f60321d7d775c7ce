"""Pre-flight content checks: what mailbox providers' filters are likely to punish,
scored before a sequence may go live.

Heuristics, each with its reason and points: an all-caps subject, piled-up
punctuation or currency signs, spam-trigger phrases, HTML that is mostly images,
link shorteners and raw-IP links, link text showing one domain while pointing at
another. When SpamAssassin's ``spamc`` is installed and spamd answers, its score
for the email as it would be sent is added. An email
scoring ``FAIL_SCORE`` or more fails; a sequence with a failing email cannot be
activated without an explicit override.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from content.text import html_to_text

FAIL_SCORE = 5.0
SPAM_PHRASES = (
    "100% free", "act now", "apply now", "cash bonus", "click here", "double your", "earn money", "free money",
    "guaranteed", "no credit check", "risk-free", "risk free", "winner", "you have been selected", "urgent",
    "limited time", "once in a lifetime", "buy now", "lowest price", "no catch", "miracle", "viagra",
)
SHORTENERS = ("bit.ly", "tinyurl.com", "goo.gl", "t.co", "ow.ly", "is.gd", "buff.ly", "rebrand.ly", "cutt.ly")
_LINK = re.compile(r"""<a\b[^>]*?href\s*=\s*(["'])(.*?)\1[^>]*>(.*?)</a\s*>""", re.IGNORECASE | re.DOTALL)
_IMG = re.compile(r"<img\b", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")
_DOMAIN_IN_TEXT = re.compile(r"\b((?:[a-z0-9-]+\.)+[a-z]{2,})\b", re.IGNORECASE)


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


def _subject(score: ContentScore, subject: str) -> None:
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 5 and sum(c.isupper() for c in letters) / len(letters) > 0.7:
        score.add(2, "subject is mostly capital letters")
    if re.search(r"[!?]{2,}|[$€£]{2,}", subject):
        score.add(1, "subject piles up punctuation or currency signs")
    if not subject.strip():
        score.add(3, "subject is empty")


def _phrases(score: ContentScore, subject: str, body_text: str) -> None:
    haystack = f"{subject}\n{body_text}".lower()
    found = [p for p in SPAM_PHRASES if p in haystack]
    for phrase in found[:4]:
        score.add(1, f"spam-trigger phrase '{phrase}'")


def _links(score: ContentScore, html: str) -> None:
    for _quote, href, label in _LINK.findall(html):
        host = (urlsplit(href.strip()).hostname or "").lower()
        if not host:
            continue
        if host in SHORTENERS or any(host.endswith("." + s) for s in SHORTENERS):
            score.add(2, f"link shortener {host}")
        elif re.fullmatch(r"[\d.]+|\[[0-9a-f:]+\]", host):
            score.add(2, f"link to a bare IP address {host}")
        shown = _DOMAIN_IN_TEXT.search(_TAGS.sub("", label))
        if shown and shown.group(1).lower().removeprefix("www.") not in host:
            score.add(1, f"link text shows {shown.group(1)} but goes to {host}")


def _images(score: ContentScore, html: str, body_text: str) -> None:
    images = len(_IMG.findall(html))
    if images and len(body_text) < 200 * images:
        score.add(2, f"{images} image(s) with only {len(body_text)} characters of text")


def score_content(subject: str, html: str | None, text: str | None) -> ContentScore:
    """Score one email's rendered (or raw template) subject and bodies."""
    score = ContentScore()
    body_text = text or html_to_text(html or "")
    _subject(score, subject)
    _phrases(score, subject, body_text)
    if html:
        _links(score, html)
        _images(score, html, body_text)
    return score


@dataclass(frozen=True)
class Spamd:
    """Where ``spamc`` finds SpamAssassin's daemon: ESEQ_SPAMD_HOST/ESEQ_SPAMD_PORT,
    or spamc's own configuration (localhost:783) when no host is set."""

    host: str | None = None
    port: int | None = None
    timeout: float = 10.0

    def score(self, raw: bytes) -> float | None:
        """SpamAssassin's score for ``raw`` (a whole message); None when spamc is not
        installed or spamd did not answer. ``-x`` matters: without it spamc that
        cannot reach spamd prints "0/0" and exits 0, which would read as a clean
        score from a check that never ran."""
        if shutil.which("spamc") is None:
            return None
        where = ["-d", self.host] + (["-p", str(self.port)] if self.port else []) if self.host else []
        try:
            done = subprocess.run(["spamc", "-x", "-c", *where], input=raw, capture_output=True, timeout=self.timeout)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode not in (0, 1):  # 0: ham, 1: spam; anything else is spamc's own failure
            return None
        try:
            return float(done.stdout.decode().strip().split("/")[0])
        except ValueError:
            return None


def dkim_aligned(from_email: str, dkim_domain: str | None) -> bool:
    """DMARC relaxed alignment: the From domain equals the DKIM domain or is below it."""
    if not dkim_domain:
        return True
    domain = from_email.rsplit("@", 1)[-1].lower().rstrip(".")
    signing = dkim_domain.lower().rstrip(".")
    return domain == signing or domain.endswith("." + signing) or signing.endswith("." + domain)
