"""Sandboxed Jinja2 rendering of operator-written subjects and bodies.

Templates are user input: they render in a ``SandboxedEnvironment`` (no attribute
access to internals, no imports) with autoescaping in HTML, and a subject that
renders to a CR or LF is refused because it would let a subscriber's data inject
mail headers.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, Undefined, nodes
from jinja2.sandbox import SandboxedEnvironment

from content.text import html_to_text, tidy_text
from content.text_template import derived_text_template, flat_globals, is_plain_data
from models import Subscriber

MAX_TEMPLATE_CHARS = 500_000
MAX_RESULT_ITEMS = 100_000
# What one render may produce: far above any email, far below what would hurt a
# worker (or the web process rendering a preview).
MAX_RENDERED_CHARS = 2_000_000
# The CPU one render may take. Sizes alone do not bound time: two nested loops
# over 100,000 items each, or a macro calling itself twice a level, produce
# nothing and would hold a send thread (and the GIL it shares) for hours.
MAX_RENDER_CPU_SECONDS = 1.0
# Reading a thread's CPU time is a system call (about 3 µs here), so the clock is
# read every so many loop turns and calls, not at each.
_CHECK_EVERY = 64
_deadline = threading.local()
# Widths a format spec may ask for ("%20000000s", "{:>20000000}").
_FORMAT_NUMBERS = re.compile(r"\d+")
_PERCENT_SPEC = re.compile(r"%[-#0 +]*[\d.*]*[a-zA-Z%]")


def _too_large(size: int) -> None:
    if size > MAX_RENDERED_CHARS:
        raise TemplateRenderError(f"template output would exceed {MAX_RENDERED_CHARS} characters")


def _check_clock() -> None:
    """Past the render's share of CPU (this thread's own time, whatever the
    others do), stop."""
    deadline = getattr(_deadline, "at", None)
    if deadline is not None and time.thread_time() > deadline:
        raise TemplateRenderError(f"template took more than {MAX_RENDER_CPU_SECONDS:g} s of CPU to render")


def _paced(items: Iterable[Any]) -> Iterator[Any]:
    """What every loop of a template iterates: its items, with the clock read every
    so many turns. A counter per loop is enough: an inner loop checks on its own
    turns, so at most that many turns of any loop run past the deadline."""
    for turn, item in enumerate(items, 1):
        if not turn % _CHECK_EVERY:
            _check_clock()
        yield item


def _count_call() -> None:
    _deadline.calls = calls = getattr(_deadline, "calls", 0) + 1
    if not calls % _CHECK_EVERY:
        _check_clock()


def _check_format(specs: list[str]) -> None:
    for spec in specs:
        if any(int(n) > MAX_RESULT_ITEMS for n in _FORMAT_NUMBERS.findall(spec)):
            raise TemplateRenderError("format width too large in template")


def _sized_str_call(text: str, name: str, args: tuple[Any, ...]) -> None:
    """Refuse a str method call whose result would be huge, before it is built."""
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        _too_large(args[0])
    elif name == "expandtabs":
        _too_large(len(text) * (args[0] if args and isinstance(args[0], int) else 8))
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        hits = text.count(args[0]) if args[0] else len(text) + 1
        _too_large(len(text) + hits * max(len(args[1]) - len(args[0]), 0))
    elif name == "join" and args and isinstance(args[0], (list, tuple)):
        _too_large(len(text) * len(args[0]) + sum(len(str(item)) for item in args[0]))


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox, bounded: ``'a' * 10**9``, a padding of twenty million, or a
    replace that multiplies a string would otherwise let one template exhaust a
    worker's memory. What a render produces in all is capped in ``_render``."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # The built-in filters that pad or multiply, checked before they build.
        center, indent, replace, fmt = (self.filters[n] for n in ("center", "indent", "replace", "format"))

        def bounded_center(value: Any, width: int = 80) -> str:
            _too_large(width if isinstance(width, int) else 0)
            return center(value, width)  # type: ignore[no-any-return]

        def bounded_indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> str:
            text = str(value)
            _too_large(len(text) + (text.count("\n") + 1) * (width if isinstance(width, int) else len(str(width))))
            return indent(value, width, *args, **kwargs)  # type: ignore[no-any-return]

        def bounded_replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: Any = None) -> str:
            _sized_str_call(str(value), "replace", (str(old), str(new)))
            return replace(eval_ctx, value, old, new, count)  # type: ignore[no-any-return]

        def bounded_format(value: Any, *args: Any, **kwargs: Any) -> str:
            _check_format(_PERCENT_SPEC.findall(str(value)))
            return fmt(value, *args, **kwargs)  # type: ignore[no-any-return]

        bounded_replace.jinja_pass_arg = replace.jinja_pass_arg  # type: ignore[attr-defined]
        self.filters.update(center=bounded_center, indent=bounded_indent, replace=bounded_replace,
                            format=bounded_format, _eseq_paced=_paced)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Every loop iterates through _paced, so the render's CPU is checked at each
        # turn, however empty the loop's body.
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_eseq_paced", [], [], None, None, lineno=loop.lineno)
        return tree

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 100:
            raise TemplateRenderError("exponent too large in template")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_RESULT_ITEMS:
                    raise TemplateRenderError("repetition too large in template")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        _count_call()  # a macro calling itself runs no loop
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            _sized_str_call(owner, getattr(__obj, "__name__", ""), args)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        # Jinja hands str.format through here: check the widths its fields ask for.
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and isinstance(getattr(value, "__self__", None), str):
            fields = re.findall(r"\{([^{}]*)\}", value.__self__)
            _check_format([field.split(":", 1)[1] for field in fields if ":" in field])
        return wrapped


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
    _deadline.at, _deadline.calls = time.thread_time() + MAX_RENDER_CPU_SECONDS, 0
    try:
        template = source if isinstance(source, Template) else _compiled(env, source)
        parts, size = [], 0
        for part in template.generate(context):  # stops a loop that would render gigabytes
            size += len(part)
            _too_large(size)
            parts.append(part)
        return "".join(parts)
    except TemplateRenderError:
        raise
    except TemplateError as exc:
        raise TemplateRenderError(str(exc.message or exc)) from None
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError, RecursionError) as exc:
        # Author mistakes that surface only with real data ({{ 1/0 }}, a bad index):
        # the message fails with a reason instead of crashing the send batch.
        raise TemplateRenderError(f"{type(exc).__name__}: {exc}") from None
    finally:
        _deadline.at = None


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
