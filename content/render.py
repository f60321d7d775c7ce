"""Sandboxed Jinja2 rendering of operator-written subjects and bodies.

Templates are user input: they render in a ``SandboxedEnvironment`` (no attribute
access to internals, no imports) with autoescaping in HTML, and a subject that
renders to a CR or LF is refused because it would let a subscriber's data inject
mail headers.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, Undefined
from jinja2.sandbox import SandboxedEnvironment

from content.text import html_to_text, tidy_text
from content.text_template import derived_text_template, flat_globals, is_plain_data
from models import Subscriber

MAX_TEMPLATE_CHARS = 500_000
MAX_RESULT_ITEMS = 100_000


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox, plus a bound on ``*`` and ``**``: ``'a' * 10**9`` would
    otherwise let one template exhaust a worker's memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 100:
            raise TemplateRenderError("exponent too large in template")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_RESULT_ITEMS:
                    raise TemplateRenderError("repetition too large in template")
        return super().call_binop(context, operator, left, right)


_html_env = _BoundedSandbox(autoescape=True, undefined=Undefined)
_text_env = _BoundedSandbox(autoescape=False, undefined=Undefined)
_check_env = _BoundedSandbox(autoescape=False, undefined=StrictUndefined)


class TemplateRenderError(ValueError):
    """A template does not parse or does not render; the message says where."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str | None
    text: str


def subscriber_context(subscriber: Subscriber, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The variables a template sees: ``subscriber.*`` plus any extra (unsubscribe_url, ...)."""
    context: dict[str, Any] = {
        "subscriber": {
            "id": subscriber.id,
            "email": subscriber.email,
            "first_name": subscriber.first_name or "",
            "last_name": subscriber.last_name or "",
            "timezone": subscriber.timezone,
            "attributes": dict(subscriber.attributes or {}),
            "tags": list(subscriber.tags or []),
        }
    }
    if extra:
        context.update(extra)
    return context


def check_template(source: str) -> None:
    """Raise TemplateRenderError when ``source`` is not a valid template."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateRenderError(f"template is longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        _check_env.parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TemplateRenderError(f"{exc.message or exc}{where}") from None


@lru_cache(maxsize=256)
def _compiled(env: SandboxedEnvironment, source: str) -> Template:
    """Compiling costs about 3 ms a template, far more than rendering it, and a step
    sends one template to thousands of subscribers: compile once per worker. The
    bound keeps one-off sources (previews, edits) from growing a worker's memory."""
    return flat_globals(env.from_string(source))


def _render(env: SandboxedEnvironment, source: str | Template, context: dict[str, Any]) -> str:
    try:
        template = source if isinstance(source, Template) else _compiled(env, source)
        return template.render(context)
    except TemplateRenderError:
        raise
    except TemplateError as exc:
        raise TemplateRenderError(str(exc.message or exc)) from None
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError, RecursionError) as exc:
        # Author mistakes that surface only with real data ({{ 1/0 }}, a bad index):
        # the message fails with a reason instead of crashing the send batch.
        raise TemplateRenderError(f"{type(exc).__name__}: {exc}") from None


def derived_text(html: str, rendered_html: str, context: dict[str, Any]) -> str:
    """``html_to_text(rendered_html)``, through the text template derived from
    ``html`` when there is one (a few times cheaper: see content.text_template)."""
    template = derived_text_template(_html_env, _text_env, html)
    if template is not None and is_plain_data(context):
        try:
            return tidy_text(_render(_text_env, template, context))
        except TemplateRenderError:
            pass  # the HTML rendered, so the exact path will too
    return html_to_text(rendered_html)


def render_email(subject: str, html: str | None, text: str | None, context: dict[str, Any]) -> RenderedEmail:
    """Render one email for one subscriber. The text part is derived from the HTML
    when the author wrote none, so every email is multipart."""
    rendered_subject = _render(_text_env, subject, context).strip()
    if "\r" in rendered_subject or "\n" in rendered_subject:
        raise TemplateRenderError("subject renders to a line break, which would inject mail headers")
    rendered_html = _render(_html_env, html, context) if html else None
    if text:
        rendered_text = _render(_text_env, text, context)
    elif html and rendered_html is not None:
        rendered_text = derived_text(html, rendered_html, context)
    else:
        rendered_text = ""  # neither part given: html_to_text("") would say the same
    return RenderedEmail(subject=rendered_subject, html=rendered_html, text=rendered_text)
