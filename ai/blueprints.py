"""Drafting without an AI server: a sequence filled from a built-in blueprint
(welcome, onboarding, abandoned cart, win-back, post-purchase, webinar) chosen by
the brief's goal, so ``make run`` drafts with no model configured.

What a blueprint is: a proven shape (how many emails, in what order, how far
apart, what each is for, an exit goal where one fits) with plain, pre-flight-safe
English copy around the brief's product, audience, tone and sender. What it is
not: written for this product. It knows nothing the brief does not say, so its
copy is generic and its links point to the brief's ``url`` (or to
``https://example.com/``, a placeholder to replace); a person edits it before
activating, as with any draft.

Blueprints are English. A brief in another ``language`` still gets English copy
(the draft's description says so): only the model writes other languages.

Everything taken from the brief is data, never template code: it is escaped for
HTML and its ``{`` written so Jinja prints it (``{{ "{" }}``, ``&#123;`` in HTML),
so ``{{ 7*7 }}`` in a product name reaches the reader as written and a
``<script>`` as text. Personalization uses only fields every subscriber has
(``first_name``, with a fallback for those without one) and attributes the
account really has (``attribute_names``).
"""
from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote, urlsplit

from ai.blueprint_library import BLUEPRINTS, EXTRAS, WELCOME, Beat, Blueprint

__all__ = ["BLUEPRINTS", "Blueprint", "blueprint_for", "draft_sequence"]

MIN_EMAILS, MAX_EMAILS, DEFAULT_EMAILS = 3, 10, 5
PLACEHOLDER_URL = "https://example.com/"
FALLBACK = WELCOME  # a goal naming no blueprint: a welcome series assumes least about the reader
# Ties between blueprints go to the more specific one.
SPECIFICITY = ("abandoned_cart", "webinar", "win_back", "post_purchase", "onboarding", "welcome")
FIRST_NAME = '{{ subscriber.first_name | default("there", true) }}'
COMPANY_ATTRIBUTES = ("company", "company_name", "organization", "organisation", "business")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TONES = {  # tone: (words in the brief's tone that choose it, greeting, sign-off)
    "professional": (("professional", "formal", "business", "corporate", "serious", "expert"), "Hello",
                     "Best regards"),
    "playful": (("playful", "fun", "funny", "witty", "cheeky", "humorous", "quirky", "bold", "energetic"), "Hey",
                "High fives"),
    "friendly": ((), "Hi", "Cheers"),
}
PREHEADER_STYLE = "display:none;max-height:0;overflow:hidden;mso-hide:all"
BUTTON_STYLE = ("display:inline-block;padding:12px 20px;background:#2563eb;color:#ffffff;"
                "text-decoration:none;border-radius:6px")


def _words(text: str) -> str:
    """Lower-case words separated by single spaces and padded, for whole-word matching."""
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "


def blueprint_for(goal: str) -> Blueprint:
    """The blueprint whose keywords the goal mentions most (whole words, so "event"
    is not found in "prevent"); ties go to the more specific blueprint, and a goal
    that mentions none gets the welcome series."""
    text = _words(goal or "")
    scores = {key: sum(_words(k) in text for k in b.keywords) for key, b in BLUEPRINTS.items()}
    best = max(SPECIFICITY, key=lambda key: (scores[key], -SPECIFICITY.index(key)))
    return BLUEPRINTS[best] if scores[best] else FALLBACK


def _clean(value: Any, limit: int, default: str) -> str:
    """One line of the brief's text: control characters and runs of space collapsed."""
    text = " ".join("".join(c if c.isprintable() else " " for c in str(value or "")).split())
    return text[:limit].strip() or default


def _inert_text(text: str) -> str:
    """Text Jinja prints as written, in a subject or text part."""
    return text.replace("{", '{{ "{" }}')


def _inert_html(text: str) -> str:
    """Text an HTML part shows as written: escaped for HTML, its braces as entities."""
    return html.escape(text, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def _url(value: Any) -> str:
    """The brief's link when it is an http(s) URL with a host, else the placeholder."""
    text = str(value or "").strip()
    try:
        parts = urlsplit(text)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and len(text) <= 2000
    except ValueError:
        ok = False
    if not ok or any(c.isspace() or not c.isprintable() for c in text):
        return PLACEHOLDER_URL
    return quote(text, safe=":/?#[]@!$&'()*+,;=%-._~")  # braces, quotes and <> percent-encoded


def _email_count(value: Any) -> int:
    try:
        count = int(value)
    except (TypeError, ValueError):
        return DEFAULT_EMAILS
    return min(max(count, MIN_EMAILS), MAX_EMAILS)


def _beats(blueprint: Blueprint, count: int) -> list[Beat]:
    """``count`` emails: the most important beats in their order, or all of them
    with value emails added before the last."""
    if count <= len(blueprint.beats):
        return [blueprint.beats[i] for i in sorted(blueprint.keep[:count])]
    extras = list(EXTRAS[:count - len(blueprint.beats)])
    return [*blueprint.beats[:-1], *extras, blueprint.beats[-1]]


def _tone(value: Any) -> tuple[str, str]:
    words = _words(str(value or ""))
    for words_for, greeting, signoff in TONES.values():
        if any(f" {w} " in words for w in words_for):
            return greeting, signoff
    _, greeting, signoff = TONES["friendly"]
    return greeting, signoff


def _company(attribute_names: list[str]) -> str | None:
    """The account's attribute naming the subscriber's company, if it has one."""
    names = {n.lower(): n for n in attribute_names if isinstance(n, str) and IDENTIFIER.match(n)}
    return next((names[c] for c in COMPANY_ATTRIBUTES if c in names), None)


class _Fill:
    """The brief's values, each in two inert forms: for text parts and subjects,
    and for HTML."""

    def __init__(self, brief: dict[str, Any], attribute_names: list[str]) -> None:
        self.product = _clean(brief.get("product"), 80, "our product")
        self.audience = _clean(brief.get("audience"), 120, "people like you")
        self.sender = _clean(brief.get("sender_name"), 80, "The team")
        self.url = _url(brief.get("url"))
        self.greeting, self.signoff = _tone(brief.get("tone"))
        company = _company(attribute_names)
        self.for_company = (f' at {{{{ subscriber.attributes.{company} | default("your company", true) }}}}'
                            if company else "")

    def values(self, for_html: bool) -> dict[str, str]:
        inert = _inert_html if for_html else _inert_text
        return {"product": inert(self.product), "audience": inert(self.audience), "sender": inert(self.sender),
                "first": FIRST_NAME, "for_company": self.for_company}


def _email_step(beat: Beat, fill: _Fill) -> dict[str, Any]:
    text_values, html_values = fill.values(for_html=False), fill.values(for_html=True)

    def as_html(copy: str) -> str:
        return html.escape(copy, quote=False).format(**html_values)

    greeting = f"{fill.greeting} {{first}},"
    html_parts = [f'<div style="{PREHEADER_STYLE}" aria-hidden="true">{as_html(beat.preheader)}</div>',
                  f"<p>{as_html(greeting)}</p>", *(f"<p>{as_html(p)}</p>" for p in beat.paragraphs)]
    text_parts = [greeting.format(**text_values), *(p.format(**text_values) for p in beat.paragraphs)]
    if beat.cta:
        url = html.escape(fill.url, quote=True)
        html_parts.append(f'<p><a href="{url}" style="{BUTTON_STYLE}">{as_html(beat.cta)}</a></p>')
        text_parts.append(f"{beat.cta.format(**text_values)}: {fill.url}")
    html_parts.append(f"<p>{as_html(fill.signoff)},<br>{html_values['sender']}</p>")
    text_parts.append(f"{fill.signoff},\n{text_values['sender']}")
    return {"type": "email", "subject": beat.subject.format(**text_values), "html": "\n".join(html_parts),
            "text": "\n\n".join(text_parts) + "\n"}


def _description(blueprint: Blueprint, fill: _Fill, brief: dict[str, Any]) -> str:
    notes = [f"Drafted from the built-in '{blueprint.title}' blueprint, not by a model: {blueprint.what}",
             "Each email's preheader is the hidden first element of its HTML."]
    language = _clean(brief.get("language"), 20, "en")
    if not language.lower().startswith("en"):
        notes.append(f"Written in English although the brief asked for '{language}': only the model writes "
                     "other languages.")
    if fill.url == PLACEHOLDER_URL:
        notes.append(f"Its links go to {PLACEHOLDER_URL}, a placeholder: replace them with your own pages.")
    if blueprint.exit_event:
        notes.append(f"Enrollments end when the subscriber's '{blueprint.exit_event}' event arrives, which also "
                     "counts as the sequence's conversion: send that event, or change the settings.")
    return " ".join(notes)


def draft_sequence(brief: dict[str, Any], attribute_names: list[str]) -> dict[str, Any]:
    """What ``POST /api/v1/email-sequences`` accepts (name, description, steps,
    settings when the blueprint has an exit goal), drafted from the blueprint the
    brief's ``goal`` chooses. ``brief["emails"]`` is clamped to 3-10 (5 when
    missing); missing text falls back to neutral words."""
    blueprint = blueprint_for(str(brief.get("goal") or ""))
    fill = _Fill(brief, attribute_names)
    steps: list[dict[str, Any]] = []
    for beat in _beats(blueprint, _email_count(brief.get("emails"))):
        if beat.wait:
            steps.append({"type": "delay", **beat.wait})
        steps.append(_email_step(beat, fill))
    draft: dict[str, Any] = {"name": f"{blueprint.title}: {fill.product}"[:200],
                             "description": _description(blueprint, fill, brief), "steps": steps}
    if blueprint.exit_event:
        draft["settings"] = {"exit_events": [blueprint.exit_event],
                             "goal": {"event": blueprint.exit_event, "within_days": 7}}
    return draft
