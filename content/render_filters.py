"""Jinja's built-in filters and globals, each bounded before it builds its result.

Every filter call is a step of the render's CPU clock. Filters that build a string
from their input (``upper``, ``escape``, ``join``, ``string``, ``tojson`` ...) are
refused when the input's size times what the filter can grow it by would pass the
limits of ``content.render_limits``; those that make lists (``list``, ``batch``,
``slice``, ``sum``) when the items would. ``map``, ``select`` and the like call
these same filters by name, so they are bounded too.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import filters as jf
from jinja2.filters import make_attrgetter
from jinja2.utils import pass_environment, pass_eval_context
from jinja2.utils import generate_lorem_ipsum
from markupsafe import Markup

from content.render_limits import (allow, allow_compared, allow_items, allow_method, allow_percent, allow_str, charge,
                                   joined_size, materialized, str_size, tick)

# Filters that build a string from str(value), and how many times its size the
# result can be: case mappings (ß -> SS, up to 3), escaping ('"' -> &#34;),
# percent-encoding (4 UTF-8 bytes of 3 characters each), links (each word of a
# few characters can become an <a href=...> tag).
_GROWTH = {"string": 1, "striptags": 1, "trim": 1, "wordcount": 1, "safe": 1, "reverse": 1, "lower": 3,
           "upper": 3, "title": 3, "capitalize": 3, "escape": 5, "e": 5, "forceescape": 5, "xmlattr": 6,
           "urlencode": 12, "urlize": 40}


def _same_pass_arg(bounded: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    if hasattr(original, "jinja_pass_arg"):
        bounded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return bounded


def _ticking(original: Callable[..., Any]) -> Callable[..., Any]:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        tick()
        return original(*args, **kwargs)
    return _same_pass_arg(bounded, original)


def _growing(original: Callable[..., Any], times: int) -> Callable[..., Any]:
    """A filter whose result is at most ``times`` the size of ``str(value)``."""
    skip = 1 if hasattr(original, "jinja_pass_arg") else 0

    def bounded(*args: Any, **kwargs: Any) -> Any:
        tick()
        if len(args) > skip:
            allow_str(args[skip], times)
        return charge(original(*args, **kwargs))
    return _same_pass_arg(bounded, original)


def bounded_filters(filters: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """``filters`` (an environment's), each bounded as the module says."""
    out = {name: _growing(func, _GROWTH[name]) if name in _GROWTH else _ticking(func) for name, func in filters.items()}

    def center(value: Any, width: int = 80) -> str:
        tick()
        allow_str(value)
        allow(width if isinstance(width, int) else 0)
        return charge(jf.do_center(value, width))  # type: ignore[no-any-return]

    def indent(value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> str:
        tick()
        allow_str(value)
        text = str(value)
        pad = width if isinstance(width, int) else len(str(width))
        allow(len(text) + (text.count("\n") + 1) * max(pad, 0))
        return charge(jf.do_indent(text, width, first, blank))  # type: ignore[no-any-return]

    @pass_environment
    def truncate(env: Any, value: Any, length: int = 255, killwords: bool = False, end: str = "...",
                 leeway: int | None = None) -> str:
        tick()
        allow(str_size(value) + len(str(end)))
        return charge(jf.do_truncate(env, value, length, killwords, end, leeway))  # type: ignore[no-any-return]

    @pass_environment
    def wordwrap(env: Any, value: Any, width: int = 79, break_long_words: bool = True, wrapstring: str | None = None,
                 break_on_hyphens: bool = True) -> str:
        # textwrap is a Python loop over every line it makes: bound the lines too.
        tick()
        allow_str(value)
        text = str(value)
        lines = len(text) // max(width if isinstance(width, int) else 1, 1) + text.count("\n") + 1
        allow_items(lines)
        allow(len(text) + lines * len(str(wrapstring if wrapstring is not None else env.newline_sequence)))
        wrapped = jf.do_wordwrap(env, text, width, break_long_words, wrapstring, break_on_hyphens)
        return charge(wrapped)  # type: ignore[no-any-return]

    @pass_eval_context
    def replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: Any = None) -> str:
        tick()
        allow_str(value, 5 if eval_ctx.autoescape else 1)
        allow_method(str(value), "replace", (str(old), str(new)) + ((count,) if isinstance(count, int) else ()), {})
        return charge(jf.do_replace(eval_ctx, value, old, new, count))  # type: ignore[no-any-return]

    def format_(value: Any, *args: Any, **kwargs: Any) -> str:
        tick()
        allow_str(value)
        allow_percent(str(value), kwargs or args, escape=isinstance(value, Markup))
        return charge(jf.do_format(value, *args, **kwargs))  # type: ignore[no-any-return]

    @pass_eval_context
    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
        tick()
        items = value if value.__class__ is list and attribute is None else materialized(value)
        if attribute is not None:
            items = list(map(make_attrgetter(eval_ctx.environment, attribute), items))
        allow_items(len(items))
        allow(joined_size(items, len(str(d))) * (5 if eval_ctx.autoescape else 1))
        return charge(jf.sync_do_join(eval_ctx, items, d))  # type: ignore[no-any-return]

    def pprint(value: Any) -> str:
        tick()
        allow_str(value, kind="pretty")
        return charge(jf.do_pprint(value))  # type: ignore[no-any-return]

    @pass_eval_context
    def tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Markup:
        tick()
        allow(str_size(value, kind="json") + (indent or 0) * str_size(value, kind="pretty"))
        return charge(jf.do_tojson(eval_ctx, value, indent))  # type: ignore[no-any-return]

    def list_(value: Any) -> list[Any]:
        tick()
        return charge(materialized(value))

    def batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
        tick()
        if fill_with is not None and isinstance(linecount, int):
            allow_items(linecount)  # the last batch is filled up to linecount
        return jf.do_batch(value, linecount, fill_with)

    def slice_(value: Any, slices: int, fill_with: Any = None) -> Any:
        tick()
        if isinstance(slices, int):
            allow_items(slices)  # as many lists as slices, however few the items
        return jf.sync_do_slice(value, slices, fill_with)

    @pass_environment
    def sum_(env: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        tick()
        items = materialized(iterable)
        if attribute is not None:
            items = list(map(make_attrgetter(env, attribute), items))
        if not isinstance(start, (int, float)):
            # Summing lists (or tuples) concatenates them, each step copying what
            # came before: count the items of the result first.
            allow_items(sum(len(x) for x in [start, *items] if hasattr(x, "__len__")))
        return charge(jf.sync_do_sum(env, items, None, start))

    def comparing(name: str) -> Callable[..., Any]:
        """sort, unique, min, max, groupby, dictsort: their items' sizes first."""
        original = filters[name]
        skip = 1 if hasattr(original, "jinja_pass_arg") else 0

        def bounded(*args: Any, **kwargs: Any) -> Any:
            tick()
            args = list(args)  # type: ignore[assignment]
            value = args[skip]
            if isinstance(value, Mapping):
                allow_compared(list(value))
                allow_compared(list(value.values()))
            elif not isinstance(value, str) and hasattr(value, "__iter__"):
                args[skip] = value = materialized(value)  # type: ignore[index]
                allow_compared(value)
            return original(*args, **kwargs)
        return _same_pass_arg(bounded, original)

    bounded = {"center": center, "indent": indent, "truncate": truncate, "wordwrap": wordwrap, "replace": replace,
               "format": format_, "join": join, "pprint": pprint, "tojson": tojson, "list": list_, "batch": batch,
               "slice": slice_, "sum": sum_}
    bounded.update({name: comparing(name) for name in ("sort", "unique", "min", "max", "groupby", "dictsort")})
    out.update(bounded)
    return out


def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002 - Jinja's names
    """``lipsum``, refused when ``n`` paragraphs of up to ``max`` words (of at most
    14 characters and a separator each) could pass the limit."""
    tick()
    if isinstance(n, int) and isinstance(max, int):
        allow(n * (max * 16 + 16))
    return charge(generate_lorem_ipsum(n, html, min, max))
