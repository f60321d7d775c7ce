"""The pre-flight check of a sequence: every email step (and variant, and the
template it uses) scored by content.preflight, plus sender-domain alignment with
the DKIM domain. Activation refuses a sequence that fails unless overridden.

SpamAssassin reads each distinct email once, and all its calls share one time
budget (content.preflight.SpamAssassinRuns): a check runs inside a web request.
An email it did not score carries a notice saying why; notices add no points."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from content.preflight import FAIL_SCORE, SpamAssassinRuns, Spamd, dkim_aligned, score_content
from content.render import TemplateRenderError, render_email, subscriber_context
from content.text import html_to_text
from delivery.dkim import account_key
from delivery.mime import Envelope, MessageBuildError, build_message
from models import Account, Sequence, Subscriber, Template
from models.base import utcnow


@dataclass
class Preflight:
    emails: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # each blocks activation
    notices: list[str] = field(default_factory=list)  # worth knowing, blocking nothing

    @property
    def score(self) -> float:
        return max((e["score"] for e in self.emails), default=0.0)

    @property
    def passed(self) -> bool:
        return not self.problems and all(e["passed"] for e in self.emails)

    def failing(self) -> dict[str, list[str]]:
        """Each failing email's reasons by its place in the sequence (``steps.2``,
        ``steps.2.variants.B``), as a 422 names them."""
        return {f"steps.{e['position']}" + (f".variants.{e['variant']}" if e["variant"] else ""): e["reasons"]
                for e in self.emails if not e["passed"]}

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "score": self.score, "fail_score": FAIL_SCORE, "emails": self.emails,
                "problems": self.problems, "notices": self.notices}


def _versions(config: dict[str, Any], template: Template | None) -> list[tuple[str | None, dict[str, Any]]]:
    base = {"subject": template.subject, "html": template.html, "text": template.text} if template else {}
    base.update({k: v for k, v in config.items() if k in ("subject", "html", "text") and v})
    versions: list[tuple[str | None, dict[str, Any]]] = [(None, base)]
    for variant in config.get("variants") or []:
        versions.append((variant.get("name"), {**base, **{k: v for k, v in variant.items()
                                                          if k in ("subject", "html", "text") and v}}))
    return versions


# The reader SpamAssassin's sample rendering is for (never stored).
SAMPLE_READER = Subscriber(id=0, email="reader@example.com", first_name="Alex", last_name="Reader", attributes={},
                           tags=[])


def _as_sent(content: dict[str, Any], from_email: str | None, from_name: str | None) -> bytes:
    """The email as a reader would get it (rendered for a sample reader, with the
    headers and both parts the send path writes), so SpamAssassin scores what goes
    out rather than points for headers a bare draft lacks. Content that does not
    render is scored as written."""
    unsubscribe = "https://unsubscribe.example.com/u/preflight"
    try:
        rendered = render_email(content.get("subject") or "", content.get("html"), content.get("text"),
                                subscriber_context(SAMPLE_READER, {"unsubscribe_url": unsubscribe}))
        subject, html, text = rendered.subject, rendered.html, rendered.text
    except TemplateRenderError:
        subject, html = " ".join((content.get("subject") or "").split()), content.get("html")
        text = content.get("text") or (html_to_text(html) if html else " ")
    sender = from_email or "preflight@example.com"
    try:
        built = build_message(Envelope(from_email=sender, from_name=from_name, to_email="reader@example.com",
                                       subject=subject, html=html, text=text, unsubscribe_url=unsubscribe,
                                       unsubscribe_mailto=f"mailto:{sender}?subject=unsubscribe",
                                       message_key="preflight"), utcnow())
    except MessageBuildError:
        return f"Subject: {subject}\r\n\r\n{text}".encode("utf-8", errors="replace")
    return built.raw


def _score_email(position: int, variant: str | None, content: dict[str, Any], spamassassin: SpamAssassinRuns,
                 account: Account | None) -> dict[str, Any]:
    """One version's entry in the report: its score, reasons, and notices (what
    was not checked, and why)."""
    subject, html, text = content.get("subject") or "", content.get("html"), content.get("text")
    score = score_content(subject, html, text)
    verdict = spamassassin.verdict((subject, html, text), lambda: _as_sent(
        content, account.from_email if account else None, account.from_name if account else None))
    if verdict.score is not None and verdict.score > 0:
        score.add(round(verdict.score, 1), "SpamAssassin score")
    return {"position": position, "variant": variant, "score": round(score.score, 1), "passed": score.passed,
            "reasons": score.reasons, "notices": [verdict.note] if verdict.note else []}


def check_sequence(session: Session, sequence: Sequence, dkim_domain: str | None,
                   spamd: Spamd = Spamd(), spamassassin: SpamAssassinRuns | None = None,
                   template_id: int | None = None) -> Preflight:
    """``dkim_domain`` is the platform key's; an account with its own key is checked
    against that key's domain instead. ``spamassassin`` (by default ``spamd`` under
    the standard budget, starting now) runs SpamAssassin for the whole check.
    ``template_id``: score only the emails built on that template (what replacing
    it changes), not every email again."""
    report = Preflight()
    spamassassin = spamassassin or SpamAssassinRuns(spamd)
    account = session.get(Account, sequence.account_id)
    template_ids = {s.config.get("template_id") for s in sequence.steps if s.type == "email"} - {None}
    templates = {t.id: t for t in session.scalars(select(Template).where(
        Template.id.in_(template_ids), Template.account_id == sequence.account_id))}
    for step in sequence.steps:
        if step.type != "email" or template_id not in (None, step.config.get("template_id")):
            continue
        for variant, content in _versions(step.config, templates.get(step.config.get("template_id"))):
            report.emails.append(_score_email(step.position, variant, content, spamassassin, account))
    _check_sender(report, account, dkim_domain)
    return report


def check_email(session: Session, account_id: int, config: dict[str, Any], dkim_domain: str | None,
                spamd: Spamd = Spamd()) -> Preflight:
    """The same check for one email outside a sequence (a broadcast): ``config`` as an
    email step's (subject, html, text, template_id, variants), at position 0."""
    report = Preflight()
    spamassassin = SpamAssassinRuns(spamd)
    account = session.get(Account, account_id)
    template = session.scalar(select(Template).where(Template.id == config.get("template_id"),
                                                     Template.account_id == account_id)) \
        if config.get("template_id") else None
    for variant, content in _versions(config, template):
        report.emails.append(_score_email(0, variant, content, spamassassin, account))
    _check_sender(report, account, dkim_domain)
    return report


def _check_sender(report: Preflight, account: Account | None, dkim_domain: str | None) -> None:
    """Sender-domain alignment with the DKIM domain that will sign the account's mail."""
    own_key = account_key(account)
    if own_key is not None:
        dkim_domain = own_key.domain  # the account's own key signs its mail, for its domain
    if account is not None and not dkim_aligned(account.from_email, dkim_domain):
        report.problems.append(f"From domain of {account.from_email} does not align with the DKIM domain {dkim_domain}")
    if dkim_domain is None:
        report.notices.append(UNSIGNED)


# Not a problem: an account sending only through SendGrid, Postmark or Mailgun is
# signed by them, for the domain set up there, which this check cannot see.
UNSIGNED = ("No DKIM key signs this account's mail here (PUT /api/v1/account/dkim, or DKIM_* for the platform): "
            "over SMTP and SES it goes out unsigned, which Gmail and Yahoo refuse from bulk senders; "
            "SendGrid, Postmark and Mailgun sign with the domain set up with them.")
