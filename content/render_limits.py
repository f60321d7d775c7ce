"""What one render of an operator's template may build, checked before it is built.

A template is tenant input run on a shared web or send worker. Its CPU is read
between steps (``tick``), but one step is a single Python or C call that cannot be
interrupted: ``lipsum(1000000)``, ``range(100000)|join('x' * 10000)`` or the
``str()`` of a list holding one large string three thousand times each ran for
seconds and built hundreds of megabytes before any check saw them. So every step
that can build a large value is bounded before it runs:

- one value (a string, or a list's items) may hold at most ``MAX_VALUE_CHARS``;
- all the values one render builds together at most ``MAX_PRODUCED_CHARS``
  (a loop building many values each under the first bound, or a list of them);
- an integer at most ``MAX_INT_BITS`` bits.

Where the size of a result depends on values already built (``str(list)``, a
join, a format), ``str_size`` gives an upper bound without building it, and gives
up as soon as that bound passes the limit, so estimating costs at most what the
limit allows. ``content.render`` applies these at every producer a sandboxed
template reaches: operators, ``~``, output, filters, globals and method calls.
"""
from __future__ import annotations

import re
import string
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

from jinja2.runtime import Undefined
from jinja2.utils import Namespace
from markupsafe import Markup

MAX_TEMPLATE_CHARS = 500_000
MAX_RESULT_ITEMS = 100_000
# What one render may output, and what one value may hold: far above any email,
# far below what would hurt a worker (or the web process rendering a preview).
MAX_RENDERED_CHARS = MAX_VALUE_CHARS = 2_000_000
# All the values one render builds, counted in characters (or items of a list):
# ten times the output, so building is never what stops an email that fits.
MAX_PRODUCED_CHARS = 10 * MAX_RENDERED_CHARS
# Python itself refuses to print an int above 4,300 digits (about 14,300 bits);
# this keeps the arithmetic before that point fast (a product of two such ints
# takes well under a millisecond).
MAX_INT_BITS = 100_000
# The CPU one render may take. Sizes alone do not bound time: two nested loops
# over 100,000 items each, or a macro calling itself twice a level, produce
# nothing and would hold a send thread (and the GIL it shares) for hours.
MAX_RENDER_CPU_SECONDS = 1.0
# Reading a thread's CPU time is a system call (about 3 µs here), so the clock is
# read every so many steps (loop turns, calls, filters, operators), not at each.
CHECK_EVERY = 64
# This thread's render: its CPU deadline (None between renders) and what it has
# built (0 between renders, so a value Jinja folds while compiling is held to the
# one-value limit only).
_state = threading.local()
# Steps of all threads together: a lost increment only delays a check a step, and
# a shared int is several times cheaper to count than a thread-local one.
_steps = 0
_SIZED = frozenset({str, bytes, list, tuple, dict, Markup})
_FORMAT_NUMBERS = re.compile(r"\d+")
# The width and precision of each printf-style field ("%-20.5s", "%(name)*d").
_PERCENT_WIDTHS = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")


class TemplateRenderError(ValueError):
    """A template does not parse or does not render; the message says where."""


def start() -> None:
    """A render begins on this thread: its CPU deadline and building budget."""
    _state.at, _state.produced = time.thread_time() + MAX_RENDER_CPU_SECONDS, 0


def stop() -> None:
    _state.at, _state.produced = None, 0


def check_clock() -> None:
    """Past the render's share of CPU (this thread's own time, whatever the
    others do), stop."""
    deadline = getattr(_state, "at", None)
    if deadline is not None and time.thread_time() > deadline:
        raise TemplateRenderError(f"template took more than {MAX_RENDER_CPU_SECONDS:g} s of CPU to render")


def tick() -> None:
    """One step of a render: the clock is read every ``CHECK_EVERY`` of them."""
    global _steps
    _steps += 1
    if not _steps % CHECK_EVERY:
        check_clock()


def allow(size: int) -> None:
    """Refuse, before it is built, a value of up to ``size`` characters (or items)
    that would be too large on its own or would take the render past its budget."""
    if size > MAX_VALUE_CHARS:
        raise TemplateRenderError(f"a value in the template would exceed {MAX_VALUE_CHARS} characters "
                                  "(too large)")
    if size + getattr(_state, "produced", 0) > MAX_PRODUCED_CHARS:
        raise TemplateRenderError(f"the template would build more than {MAX_PRODUCED_CHARS} characters "
                                  "in all (too large)")


def charge(value: Any) -> Any:
    """Count a value just built (at most what ``allow`` let through) against the
    render's budget, and hand it on."""
    if value.__class__ in _SIZED:
        try:
            _state.produced += len(value)
        except AttributeError:
            pass  # this thread has not rendered yet: a value folded while compiling
    return value


def allow_items(count: int) -> None:
    if count > MAX_RESULT_ITEMS:
        raise TemplateRenderError(f"a list in the template would exceed {MAX_RESULT_ITEMS} items (too large)")
    allow(count)


def allow_int(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateRenderError(f"a number in the template would exceed {MAX_INT_BITS} bits (too large)")


# --- sizes of values not yet built -------------------------------------------------

def _quoted_size(text: str, kind: str) -> int:
    """An upper bound on ``len(repr(text))`` (kind "repr") or ``len(json.dumps(text))``."""
    if kind == "json":
        # \uXXXX for anything outside printable ASCII (12 for an astral character);
        # Jinja's htmlsafe_json_dumps escapes < > & ' the same way.
        if text.isascii() and text.isprintable():
            return len(text) + 2 + 5 * sum(text.count(c) for c in "<>&'\"\\")
        return 12 * len(text) + 2
    if text.isprintable():
        return len(text) + 2 + text.count("\\") + text.count("'")
    return (4 if text.isascii() else 10) * len(text) + 2


def str_size(value: Any, limit: int = MAX_VALUE_CHARS, kind: str = "str") -> int:
    """An upper bound on ``len(str(value))`` (``repr`` when kind is "repr",
    ``json.dumps`` for "json", ``pprint.pformat`` for "pretty"), or a number above
    ``limit`` as soon as the bound passes it: containers are walked without being
    printed, a thousand references to one string counted a thousand times, and
    the walk stops at the limit, so it costs at most that many steps."""
    cls = value.__class__
    if cls is str:
        return len(value) if kind == "str" else _quoted_size(value, kind)
    if cls is int:
        return value.bit_length() // 3 + 2
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            quoted = kind != "str" or depth > 0
            total += _quoted_size(item, "json" if kind == "json" else "repr") if quoted else len(item)
            if quoted and type(item) is not str:
                total += len(type(item).__name__) + 2  # Markup('...')
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2  # decimal digits (log10(2) < 1/3) and a sign
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, Undefined):
            total += 0
        elif isinstance(item, (bytes, bytearray)):
            total += 4 * len(item) + 14  # b'\xNN' escapes, bytearray(...)
        elif isinstance(item, (Mapping, Namespace)):
            attrs = item if isinstance(item, Mapping) else item._Namespace__attrs  # type: ignore[attr-defined]
            pairs = attrs.items()
            total += 16 + (depth + 1 if kind == "pretty" else 0)
            for key, val in pairs:
                total += 4 + (depth + 2 if kind == "pretty" else 0)
                stack.append((key, depth + 1))
                stack.append((val, depth + 1))
                if total > limit:
                    return total
        elif isinstance(item, (list, tuple, set, frozenset)) or type(item).__name__.startswith("dict_"):
            total += 16 + (depth + 1 if kind == "pretty" else 0)  # brackets, a set's or view's name
            for member in item:
                total += 2 + (depth + 2 if kind == "pretty" else 0)
                stack.append((member, depth + 1))
                if total > limit:
                    return total
        else:
            # Everything else a template reaches prints as a short fixed repr: a
            # range, a generator, a macro, a loop, a method.
            total += 200
        if total > limit:
            return total
    return total


def joined_size(items: Sequence[Any], between: int = 0) -> int:
    """An upper bound on the length of the ``str()`` of ``items`` joined with
    ``between`` characters between each two, or a number above ``MAX_VALUE_CHARS``
    as soon as the bound passes it."""
    size = between * max(len(items) - 1, 0)
    for item in items:
        size += len(item) if item.__class__ is str else str_size(item)
        if size > MAX_VALUE_CHARS:
            break
    return size


def allow_str(value: Any, times: int = 1, kind: str = "str") -> None:
    """Refuse ``str(value)`` (or its repr or JSON), grown up to ``times`` over by
    what is done with it, before it is built."""
    if type(value) is str and kind == "str":
        return allow(len(value) * times)
    allow(str_size(value, MAX_VALUE_CHARS // times + 1, kind) * times)


def materialized(items: Iterable[Any]) -> list[Any]:
    """The items of an iterable as a list, refused past ``MAX_RESULT_ITEMS``
    without taking more than that many from it."""
    if isinstance(items, (list, tuple)):
        listed = list(items)
    else:
        listed = list(islice(items, MAX_RESULT_ITEMS + 1))
    allow_items(len(listed))
    return listed


# --- string formatting --------------------------------------------------------------

def _width(spec: str, args: Iterable[Any]) -> int:
    """The padding a format spec may ask for; a width given by an argument
    ("%*s", "{:{w}}") is the largest number among the arguments."""
    numbers = [int(n) for n in _FORMAT_NUMBERS.findall(spec)]
    if "*" in spec or "{" in spec:
        numbers += [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    return max(numbers, default=0)


def allow_percent(template: str, args: Any, escape: bool = False) -> None:
    """Refuse ``template % args`` past the limit before it is built. Each of at
    most ``template.count('%')`` fields prints one argument (a mapping's largest
    value, for "%(name)s", as often as it is named) padded to at most the largest
    width or precision in the template (or among the arguments, for "%*s")."""
    fields = template.count("%")
    if not fields:
        return
    if type(args) is not tuple and isinstance(args, Mapping):
        values: Any = args.values()
        size = fields * max((str_size(v, MAX_VALUE_CHARS, "repr") for v in values), default=0)
    else:
        values = args if type(args) is tuple else (args,)
        size = sum(str_size(v, MAX_VALUE_CHARS, "repr") for v in values)
    if size <= MAX_VALUE_CHARS:
        widths = [int(w) for pair in _PERCENT_WIDTHS.findall(template) for w in pair if w and w != "*"]
        if "*" in template:
            widths += [a for a in values if isinstance(a, int)]
        size += len(template) + fields * max(widths, default=0)
    allow(size * (5 if escape else 1))


def allow_str_format(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], escape: bool = False) -> None:
    """The same for ``str.format``: a field may name any argument, as often as
    it likes, so each field is bounded by the largest argument."""
    values = [*args, *kwargs.values()]
    largest = max((str_size(v, MAX_VALUE_CHARS, "repr") for v in values), default=0)
    size = 0
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # the call itself raises the same error, building nothing
    for literal, field, spec, _ in fields:
        size += len(literal)
        if field is not None:
            size += largest + _width(spec or "", values)
            if size > MAX_VALUE_CHARS:
                break
    allow(size * (5 if escape else 1))


# --- method calls ---------------------------------------------------------------------

_STRING_GROWTH = {"upper": 3, "lower": 3, "title": 3, "capitalize": 3, "casefold": 3, "swapcase": 3,
                  "encode": 10, "hex": 3}


def allow_method(owner: Any, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a method call on a str, bytes, int, list or dict whose result (or
    the object it grows) would be too large, before the call runs."""
    if isinstance(owner, (str, bytes, bytearray)):
        n = len(owner)
        first = args[0] if args else None
        if name in ("center", "ljust", "rjust", "zfill"):
            allow(max(n, first if isinstance(first, int) else 0))
        elif name == "expandtabs":
            tabsize = first if isinstance(first, int) else kwargs.get("tabsize", 8)
            allow(n + owner.count("\t" if isinstance(owner, str) else b"\t") * max(tabsize, 0))
        elif name == "replace" and len(args) >= 2 and isinstance(args[1], type(args[0])):
            old, new = args[0], args[1]
            try:
                hits = owner.count(old) if old else n + 1
            except TypeError:
                return
            count = args[2] if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0 else hits
            allow(n + min(hits, count) * max(len(new) - len(old), 0))
        elif name == "join" and args:
            raise_if_join_too_large(owner, args[0])
        elif name == "translate" and isinstance(first, Mapping):
            longest = max((len(v) for v in first.values() if isinstance(v, (str, bytes))), default=1)
            allow(n * max(longest, 1))
        elif name in _STRING_GROWTH:
            allow(n * _STRING_GROWTH[name] + 16)
        elif name in ("split", "rsplit", "splitlines", "partition", "rpartition"):
            allow(n)
    elif isinstance(owner, int) and name == "to_bytes":
        length = first_arg(args, kwargs, "length", 1)
        if isinstance(length, int):
            allow(length)
    elif isinstance(owner, list) and name in ("extend", "append", "insert"):
        added = len(args[0]) if name == "extend" and args and hasattr(args[0], "__len__") else 1
        allow_items(len(owner) + added)
        allow(added)
    elif isinstance(owner, (dict, set)) and name in ("update", "setdefault", "add"):
        added = (len(args[0]) if args and hasattr(args[0], "__len__") else 1) + len(kwargs)
        allow_items(len(owner) + added)
        allow(added)


def first_arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], name: str, default: Any) -> Any:
    return args[0] if args else kwargs.get(name, default)


def raise_if_join_too_large(separator: Any, items: Any) -> None:
    """``separator.join(items)`` for a list or tuple (anything else, a generator or
    a dict, is listed by the caller first): the items' sizes and a separator
    between each two."""
    if not isinstance(items, (list, tuple)):
        return
    allow_items(len(items))
    size = len(separator) * max(len(items) - 1, 0)
    for item in items:
        size += len(item) if isinstance(item, (str, bytes)) else str_size(item, MAX_VALUE_CHARS)
        if size > MAX_VALUE_CHARS:
            break
    allow(size)


# --- comparisons ----------------------------------------------------------------------

def allow_compared(items: list[Any]) -> None:
    """Refuse sorting (or finding the least, the distinct, the groups of) items
    whose sizes add up past the budget: one comparison of two long strings with
    a common prefix reads both, so ``[s, t] * 50000|sort`` for two 2M-character
    strings would run for a minute in one call. Under the bound a sort reads at
    most log2(n) times the budget."""
    total = 0
    for item in items:
        total += len(item) if item.__class__ is str else str_size(item, MAX_PRODUCED_CHARS)
        if total > MAX_PRODUCED_CHARS:
            raise TemplateRenderError(f"the items compared would exceed {MAX_PRODUCED_CHARS} characters "
                                      "(too large)")


def allow_search(needle: Any, haystack: Any) -> None:
    """``needle in haystack`` for a list or tuple compares the needle with each
    item, reading up to the needle's length each time: bounded as a sort is."""
    if isinstance(haystack, (list, tuple)) and isinstance(needle, (str, bytes, list, tuple)):
        if len(haystack) * len(needle) > MAX_PRODUCED_CHARS:
            raise TemplateRenderError(f"searching the list would compare more than {MAX_PRODUCED_CHARS} "
                                      "characters (too large)")

