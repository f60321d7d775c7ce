"""Sandboxed Jinja2 rendering of operator-written subjects and bodies.

Templates are user input: they render in a ``SandboxedEnvironment`` (no attribute
access to internals, no imports) with autoescaping in HTML, and a subject that
renders to a CR or LF is refused because it would let a subscriber's data inject
mail headers. A render is bounded in what it builds and in the CPU it takes: one
template must not exhaust the web or send worker it shares with other tenants
(``content.render_limits`` says how).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, Undefined, nodes
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from content import render_limits as limits
from content.render_filters import bounded_filters, lipsum
from content.render_limits import (MAX_RENDER_CPU_SECONDS, MAX_RENDERED_CHARS, MAX_RESULT_ITEMS,  # noqa: F401
                                   MAX_TEMPLATE_CHARS, TemplateRenderError)
from content.text import html_to_text, tidy_text
from content.text_template import derived_text_template, flat_globals, is_plain_data
from models import Subscriber

def _paced(items: Iterable[Any]) -> Iterator[Any]:
    """What every loop of a template iterates: its items, with the clock read every
    so many turns. A counter per loop is enough: an inner loop checks on its own
    turns, so at most that many turns of any loop run past the deadline."""
    for turn, item in enumerate(items, 1):
        if not turn % limits.CHECK_EVERY:
            limits.check_clock()
        yield item


@pass_eval_context
def _concat(eval_ctx: Any, *values: Any) -> str:
    """``a ~ b``: Jinja's own join of the operands, sized first (a ``{% set s = s ~ s
    %}`` doubles a string at each line, with no loop or call between)."""
    limits.tick()
    escapes = eval_ctx.autoescape and any(hasattr(v, "__html__") for v in values)
    limits.allow(limits.joined_size(values) * (5 if escapes else 1))
    return limits.charge((markup_join if eval_ctx.autoescape else str_join)(values))  # type: ignore[no-any-return]


def _in(needle: Any, haystack: Any) -> bool:
    """``needle in haystack``, once the search is sized."""
    limits.tick()
    limits.allow_search(needle, haystack)
    return needle in haystack


def _not_in(needle: Any, haystack: Any) -> bool:
    return not _in(needle, haystack)


def _bounded_concat(parts: Iterable[str]) -> str:
    """What a macro, ``caller()``, a block ``set`` or a ``filter`` block returns: its
    output, counted as it comes rather than joined and measured after."""
    pieces, size = [], 0
    for part in parts:
        size += len(part)
        if size > limits.MAX_VALUE_CHARS:
            limits.allow(size)
        pieces.append(part)
    limits.allow(size)
    return limits.charge("".join(pieces))  # type: ignore[no-any-return]


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` value before Jinja prints it: ``str()`` of a list holding a
    large string many times is sized first (a str is already built)."""
    if value.__class__ is not str:
        limits.allow_str(value)
    return value


class _Bounded(NodeTransformer):
    """Every loop iterates through ``_paced``, every ``~`` goes through ``_concat``
    and every ``in`` through ``_in``, so each is bounded however
    the template is written."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_eseq_paced", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        # "x in list" is one C call comparing x with every item: sized first.
        node = self.generic_visit(node)
        if len(node.ops) == 1 and node.ops[0].op in ("in", "notin"):
            return nodes.Filter(node.expr, f"_eseq_{node.ops[0].op}", [node.ops[0].expr], [], None, None,
                                lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        first, *rest = node.nodes
        return nodes.Filter(first, "_eseq_concat", rest, [], None, None, lineno=node.lineno)


# What ``getattr`` finds on a plain dict (its type's methods and dunders; a dict
# instance has no attributes of its own).
_DICT_ATTRIBUTES = frozenset(dir(dict))


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox, bounded: each step that can build a large value (an operator,
    ``~``, a filter, a global, a method call, printing a value) is refused before
    it builds past the limits of ``content.render_limits``, and each is a step of
    the render's CPU clock."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.concat = _bounded_concat  # type: ignore[assignment]
        self.filters = bounded_filters(self.filters)
        self.filters.update(_eseq_paced=_paced, _eseq_concat=_concat, _eseq_in=_in,
                            _eseq_notin=_not_in)
        self.globals["lipsum"] = lipsum

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return _Bounded().visit(super()._parse(source, name, filename))  # type: ignore[no-any-return]

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``subscriber.first_name``: on a plain dict whose type has no attribute of
        that name, the sandbox's own lookup always fails ``getattr`` (an exception
        raised and caught, a third of each lookup's cost, a dozen lookups an email)
        and then reads the key; this reads the key straight away, with the same
        result. Anything else (``items``, a str, a subclass) goes the usual way."""
        if obj.__class__ is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limits.tick()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(n, int):
                    if isinstance(seq, (str, bytes)):
                        limits.allow(len(seq) * n)
                    elif isinstance(seq, (list, tuple)):
                        limits.allow_items(len(seq) * n)
            if isinstance(left, int) and isinstance(right, int):
                limits.allow_int(left.bit_length() + right.bit_length())
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0:
                limits.allow_int(max(left.bit_length(), 1) * right)
        elif operator == "+":
            if isinstance(left, (str, bytes)) and isinstance(right, (str, bytes)):
                escapes = hasattr(left, "__html__") or hasattr(right, "__html__")
                limits.allow((len(left) + len(right)) * (5 if escapes else 1))
            elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
                limits.allow_items(len(left) + len(right))
        elif operator == "%" and isinstance(left, (str, bytes)):
            template = left if isinstance(left, str) else left.decode("latin-1")  # b"%a" % [...] prints it too
            limits.allow_percent(template, right, escape=isinstance(left, Markup))
        return limits.charge(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        limits.tick()  # a macro calling itself runs no loop
        owner = getattr(__obj, "__self__", None)
        if owner is not None:
            name = getattr(__obj, "__name__", "")
            if args and (name == "join" and not isinstance(args[0], (list, tuple))
                         or name in ("extend", "update") and not hasattr(args[0], "__len__")):
                # What the size checks cannot read (a generator; for a join also a
                # dict, set or view): its items, counted, as a list that reads the same.
                args = (limits.materialized(args[0]), *args[1:])
            limits.allow_method(owner, name, args, kwargs)
            if isinstance(owner, (str, bytes)):
                return limits.charge(super().call(__context, __obj, *args, **kwargs))
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        # Jinja hands str.format (and format_map) through here: size the result first.
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template, is_map = value.__self__, value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            fields = args[0] if is_map and len(args) == 1 and not kwargs else kwargs
            limits.allow_str_format(template, () if is_map else args, fields, escape=isinstance(template, Markup))
            return limits.charge(wrapped(*args, **kwargs))  # type: ignore[no-any-return]
        return bounded


_html_env = _BoundedSandbox(autoescape=True, undefined=Undefined)
_text_env = _BoundedSandbox(autoescape=False, undefined=Undefined)
_check_env = _BoundedSandbox(autoescape=False, undefined=StrictUndefined)


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
    limits.start()
    try:
        template = source if isinstance(source, Template) else _compiled(env, source)
        parts, size = [], 0
        for part in template.generate(context):  # stops a loop that would render gigabytes
            size += len(part)
            if size > MAX_RENDERED_CHARS:
                raise TemplateRenderError(f"template output would exceed {MAX_RENDERED_CHARS} characters")
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
        limits.stop()


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
