"""The derived text part as a template of its own, made once per HTML source.

When an author writes no text part, each email's text is ``html_to_text`` of its
rendered HTML: an ``HTMLParser`` pass costing about 0.5 ms an email, several times
the Jinja render itself. The parse depends on the template, not the subscriber, so
here it runs once per source: every Jinja construct is swapped for a placeholder,
the marked source goes through the same extractor, and the placeholders in its
output become the constructs again. The result is a text template; rendering it
(no autoescape) and passing the result through ``tidy_text`` gives exactly what
``html_to_text(render(html))`` gives, for every subscriber.

That holds when a construct's output cannot change how the HTML parses, and the
derivation declines (``None``: the caller keeps the per-email path) otherwise:

- Every expression is built from names, constants, operators and filters that
  return plain values, so under autoescape ``{{ x }}`` writes ``escape(str(x))``:
  no ``<``, quotes or bare ``&``. Markup sources are refused: ``|safe``,
  ``|e``, ``|urlize``, macros, ``caller``, block ``set``, ``{% raw %}``, includes,
  any call but ``range``. (The context must hold plain data too; ``render_email``
  checks that per email, as ``subscriber_context`` always gives.)
- ``{{ }}`` sits in text, in a link's label, or inside a quoted attribute value;
  never in a tag or attribute name, an unquoted value, a comment or a declaration.
- ``{% %}`` statements (if/for/set) sit in text outside any link, ``<head>``,
  ``<title>``, ``<style>`` or ``<script>``: the parser is in the same state at all
  of them, so however a render repeats or skips the pieces between, each piece
  parses as it did in the marked source.
- No placeholder follows ``<`` (an output could open a tag) or an unfinished
  character reference (``&am``, ``&#1``: an output could complete it).

Given those, the entity decoding the parser applies to text and attribute values
splits at every placeholder (``unescape(a + escape(v) + b) == unescape(a) + v +
unescape(b)``), which is what makes the two renders equal; a link whose label or
URL holds a variable is rebuilt per email by ``link_text``, the function the
extractor uses. ``tests/unit/test_text_template.py`` compares the two paths.
"""
from __future__ import annotations

import re
from functools import lru_cache
import html.parser
from typing import Any

from jinja2 import Template, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment

from content.html_input import parseable
from content.text import _TextExtractor, link_text

# Private-use characters: an HTML parser treats them as text, and a source that
# already holds one is not derived.
_VAR, _STMT, _LINK, _END = "\ue000", "\ue001", "\ue002", "\ue003"
_PLACEHOLDER = re.compile(f"([{_VAR}{_STMT}{_LINK}])(\\d+){_END}")
_MARKERS = re.compile(f"[{_VAR}{_STMT}{_LINK}{_END}]")
# A placeholder right after "<" or "</", or inside a character reference that has
# not ended (an output could complete "&am" + "p;" or "&#1" + "23;").
_UNSAFE_BEFORE = re.compile(f"(?:<|&(?:#[0-9A-Za-z]*|[A-Za-z0-9]*))[{_VAR}{_STMT}]")
_QUOTED = re.compile(r"""(['"]).*\1\Z""", re.DOTALL)
# The parser's own start-tag regexes, so a tag is split here exactly as it splits
# it; on a Python whose parser lacks them, a variable inside a tag declines.
_TAG_NAME = getattr(html.parser, "tagfind_tolerant", None)
_ATTRIBUTE = getattr(html.parser, "attrfind_tolerant", None)

_NODES = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.For, nodes.Assign, nodes.Name,
          nodes.Const, nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Filter, nodes.Test, nodes.Compare,
          nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos, nodes.CondExpr, nodes.Concat,
          nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow, nodes.List,
          nodes.Tuple, nodes.Dict, nodes.Pair, nodes.Keyword, nodes.Call)
# Filters whose result is the same plain value with autoescape on or off.
_FILTERS = frozenset({"default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate", "int", "float",
                      "round", "abs", "length", "count", "first", "last", "join", "list", "sort", "reverse",
                      "replace", "string", "wordcount",
                      "_eseq_paced",  # the sandbox's own, on every loop: the items as they are (content.render)
                      "_eseq_concat",  # and on every `~`: Jinja's own join of the operands, sized first
                      "_eseq_in", "_eseq_notin"})  # and every `in`: a bool
_NAMES_REFUSED = frozenset({"self", "caller", "super", "varargs", "kwargs", "lipsum", "cycler", "joiner",
                            "namespace", "dict"})


def _plain_expressions(tree: nodes.Node) -> bool:
    """Every node is one whose value cannot be Markup (see the module docstring)."""
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _NODES):
            return False
        if isinstance(node, nodes.Filter) and node.name not in _FILTERS:
            return False
        if isinstance(node, nodes.Name) and (node.name in _NAMES_REFUSED or node.name.startswith("_eseq")):
            return False
        if isinstance(node, nodes.For) and node.recursive:
            return False
        if isinstance(node, nodes.Call) and not (isinstance(node.node, nodes.Name) and node.node.name == "range"
                                                 and node.dyn_args is None and node.dyn_kwargs is None):
            return False
    return True


class _Deriver(_TextExtractor):
    """The extractor run over the marked source, noting where each placeholder
    lands; ``ok`` turns false at the first one in a place the module refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[int] = set()
        self.links: list[tuple[str, str]] = []
        self.ok = True

    def _note(self, text: str, statements_allowed: bool) -> None:
        for kind, index in _PLACEHOLDER.findall(text):
            if kind != _VAR and not (kind == _STMT and statements_allowed):
                self.ok = False
            self.seen.add(int(index))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or ""
        if _MARKERS.search(raw):
            self._check_tag(raw)
        super().handle_starttag(tag, attrs)

    def _check_tag(self, raw: str) -> None:
        """Variables only inside quoted attribute values, split as ``parse_starttag`` splits."""
        match = _TAG_NAME.match(raw, 1) if _TAG_NAME and _ATTRIBUTE else None
        if match is None or _MARKERS.search(match.group(1)):
            self.ok = False
            return
        position, covered = match.end(), 0
        while position < len(raw):
            attr = _ATTRIBUTE.match(raw, position)  # type: ignore[union-attr]
            if not attr:
                break
            name, _, value = attr.group(1, 2, 3)
            if _MARKERS.search(name) or (value and _MARKERS.search(value) and not _QUOTED.match(value)):
                self.ok = False
            if value:
                self._note(value, statements_allowed=False)
                covered += len(_PLACEHOLDER.findall(value))
            position = attr.end()
        if covered != len(_PLACEHOLDER.findall(raw)):
            self.ok = False

    def handle_data(self, data: str) -> None:
        self._note(data, statements_allowed=not self._skip and self._href is None)
        super().handle_data(data)

    def end_link(self, label: str, href: str) -> None:
        if _MARKERS.search(label) or _MARKERS.search(href):
            self.parts.append(f"{_LINK}{len(self.links)}{_END}")
            self.links.append((label, href))
        else:
            super().end_link(label, href)


def _literal(text: str) -> str:
    """Text as template source that renders to itself: braces could open a Jinja
    construct, and the lexer would turn a CR into a newline."""
    return re.sub(r"[{\r]", lambda m: "{{ %r }}" % m.group(), text)


def _template_source(marked: str, constructs: list[str], links: list[tuple[str, str]]) -> str:
    out: list[str] = []
    pieces = _PLACEHOLDER.split(marked)
    for i in range(0, len(pieces), 3):
        out.append(_literal(pieces[i]))
        if i + 1 < len(pieces):
            kind, index = pieces[i + 1], int(pieces[i + 2])
            if kind == _LINK:
                label, href = links[index]
                out.append("{% set _eseq_label %}" + _template_source(label, constructs, links)
                           + "{% endset %}{% set _eseq_href %}" + _template_source(href, constructs, links)
                           + "{% endset %}{{ _eseq_link(_eseq_label, _eseq_href) }}")
            elif kind == _VAR:
                out.append("{{" + constructs[index] + "}}")
            else:
                out.append("{%" + constructs[index] + "%}")
    return "".join(out)


def derive_text_source(env: SandboxedEnvironment, source: str) -> str | None:
    """The text template for HTML template ``source``, or None where it would not be exact."""
    if _MARKERS.search(source) or "_eseq" in source:
        return None
    try:
        if not _plain_expressions(env.parse(source)):
            return None
        tokens = list(env.lex(source))
    except TemplateError:
        return None
    marked: list[str] = []
    constructs: list[str] = []
    kinds: dict[int, str] = {}
    inner: list[str] | None = None
    for _, token, value in tokens:
        if token == "data" and inner is None:
            marked.append(value)
        elif token in ("variable_begin", "block_begin"):
            inner = []
        elif token in ("variable_end", "block_end"):
            kind = _VAR if token == "variable_end" else _STMT
            kinds[len(constructs)] = kind
            marked.append(f"{kind}{len(constructs)}{_END}")
            constructs.append("".join(inner or []))
            inner = None
        elif inner is not None:
            inner.append(value)
        elif token not in ("comment_begin", "comment", "comment_end"):
            return None  # raw blocks, line statements: not derived
    marked_source = "".join(marked)
    if _UNSAFE_BEFORE.search(marked_source):
        return None
    deriver = _Deriver()
    deriver.feed(parseable(marked_source))
    deriver.close()
    if not deriver.ok or deriver.seen != set(kinds):
        return None
    return _template_source("".join(deriver.parts), constructs, deriver.links)


def _eseq_link(label: Any, href: Any) -> str:
    return link_text(str(label), str(href))


@lru_cache(maxsize=256)
def derived_text_template(html_env: SandboxedEnvironment, text_env: SandboxedEnvironment,
                          source: str) -> Template | None:
    """Compiled once per source and worker, like ``content.render._compiled``.
    ``text_env`` renders it: the same sandbox as the HTML, without autoescape."""
    derived = derive_text_source(html_env, source)
    if derived is None:
        return None
    try:
        template = text_env.from_string(derived, globals={"_eseq_link": _eseq_link})
    except TemplateError:
        return None
    return flat_globals(template)


def flat_globals(template: Template) -> Template:
    """Jinja keeps a template's globals as a ChainMap over the environment's and
    iterates it twice per render (about 15 µs, a third of rendering a subject);
    ours never change after start-up, so one plain dict says the same."""
    template.globals = dict(template.globals)
    return template


def is_plain_data(value: Any) -> bool:
    """JSON-like data only: the derived template's equivalence assumes no value
    renders as Markup, and a str subclass could."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return True
    if kind is dict:
        return all(type(k) is str and is_plain_data(v) for k, v in value.items())
    if kind is list or kind is tuple:
        return all(is_plain_data(v) for v in value)
    return False
