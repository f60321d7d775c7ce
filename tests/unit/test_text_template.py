"""The derived text template gives exactly the text that parsing each rendered HTML
gives, for every subscriber; where it could not, it declines."""
from __future__ import annotations

import random
import re
from html import unescape

import pytest

from content.render import _html_env, _render, _text_env, render_email
from content.text import html_to_text, tidy_text
from content.text_template import derive_text_source, derived_text_template

NAMES = ["Ann", "", "Tom & Jerry", "<b>Bold</b>", 'Say "hi"', "O'Brien", "Zoë 😀 Ünïcode", "&amp;", "&am",
         "p;", "&#x3C;script&#x3E;", "  spaced\tout \n name  ", "a\r\nb", "{{ 7*7 }}", "{% if %}", "http://x.test/a",
         "&", ";", "#", "=", "&lt", "\u00a0nbsp", "<", ">", "</a>", "-->", "<!--"]
TAGS = [[], ["vip"], ["a&b", "<c>", "d\"e"]]

# Each should be derived: personalised text, links with variables in href and
# label, loops and conditions around whole elements, style/script/head content.
DERIVED = [
    "<p>Hello {{ subscriber.first_name }}</p>",
    "<h1>Hi {{ subscriber.first_name|default('there') }}!</h1><p>Plan: {{ subscriber.attributes.plan }}</p>",
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
    '<p><a href="https://x.test/?id={{ subscriber.id }}&amp;n={{ subscriber.first_name }}">go</a></p>',
    '<a href="{{ subscriber.first_name }}">{{ subscriber.first_name }}</a>',  # label == href only for some
    "<a href='https://x.test/{{ subscriber.last_name }}'>  {{ subscriber.first_name }}  <b>now</b><br></a> after",
    '<a href="https://x.test/a">{{ subscriber.first_name }}</a> and <a href="https://x.test/b">static</a>',
    "<ul>{% for t in subscriber.tags %}<li>{{ t }}</li>{% endfor %}</ul>",
    "<ul>{% for t in subscriber.tags %}<li>{{ loop.index }}. {{ t|upper }}</li>{% else %}<p>none</p>{% endfor %}</ul>",
    "{% if subscriber.first_name %}<p>Dear {{ subscriber.first_name }},</p>{% else %}<p>Hello,</p>{% endif %}<p>x</p>",
    "{% set greeting = 'Hi ' ~ subscriber.first_name %}<div>{{ greeting }}</div><div>{{ greeting|length }}</div>",
    "<style>p { color: {{ subscriber.attributes.color }} }</style><p>{{ subscriber.first_name }}</p>",
    "<head><title>{{ subscriber.first_name }}</title></head><body><p>{{ subscriber.first_name }}</p></body>",
    "<script>var n = '{{ subscriber.first_name }}';</script><p>after</p>",
    '<img src="https://x.test/{{ subscriber.id }}.png" alt="{{ subscriber.first_name }}"><p>A &amp; B &copy; {{ subscriber.first_name }}</p>',
    "<p>Fish &amp; chips, {{ subscriber.first_name }}; &lt;3 &#169; &nbsp;{{ subscriber.last_name }}&nbsp;</p>",
    "<table><tr><td>{{ subscriber.first_name }}</td><td>{{ subscriber.tags|join(', ') }}</td></tr></table>",
    "<p>{{ '<b>literal</b>' }} {{ \"it's\" }} {{ 3 * 4 }} {{ subscriber.missing }} {{ none }}</p>",
    "<p>{# a comment {{ not rendered }} #}Hi {{ subscriber.first_name }}</p>{# <a href='x'> #}",
    "  <p>\n   {{- subscriber.first_name -}}  \n </p>  {%- if true %} <br/> {% endif -%} end",
    "<p>{ {{ subscriber.first_name }} }</p><p>&#123;&#123; x &#125;&#125;</p><p>&#13;cr&#13;&#10;</p>",
    "<p>{{ subscriber.first_name|replace('&', 'and')|truncate(8) }}</p><hr><p>{{ subscriber.tags|first }}</p>",
    "<p>Hi {{ subscriber.first_name }}</p>\r\n<p>Line two</p>\n",
    "Plain text without tags, {{ subscriber.first_name }}.\n\n\n\nFour newlines above.",
    "<p>{{ subscriber.first_name if subscriber.first_name else 'friend' }} &mdash; {{ subscriber.attributes|length }}</p>",
    "<a href=\"{{ unsubscribe_url }}\"></a><a>no href {{ subscriber.first_name }}</a>",
    "{% for i in range(3) %}<p>{{ i }} {{ subscriber.first_name }}</p>{% endfor %}",
]

# Each must decline: a construct could change how the HTML parses, or could
# render markup that the text template would not.
DECLINED = [
    "<p>{{ subscriber.first_name|safe }}</p>",
    "<p>{{ subscriber.first_name|e }}</p>",
    "<p>{{ subscriber.first_name|urlize }}</p>",
    "{% macro m() %}<b>x</b>{% endmacro %}<p>{{ m() }}</p>",
    "{% set block %}<b>x</b>{% endset %}<p>{{ block }}</p>",
    "{% raw %}<p>{{ x }}</p>{% endraw %}",
    "{% if subscriber.first_name %}<a href='https://x.test'>{% endif %}text</a>",
    '<a href="https://x.test">{% if subscriber.first_name %}Hi{% endif %}</a>',
    "<p {{ subscriber.attributes.attr }}>x</p>",
    "<p class={{ subscriber.first_name }}>x</p>",
    "<{{ subscriber.attributes.tag }}>x</b>",
    "<h{{ subscriber.id }}>x</h1>",
    "</p {{ subscriber.first_name }}>",
    "<!-- {{ subscriber.first_name }} --><p>x</p>",
    "<p>AT&{{ subscriber.first_name }}</p>",
    "<p>&am{{ subscriber.first_name }}</p>",
    "<p>&#1{{ subscriber.id }};</p>",
    "<style>{% if subscriber.first_name %}</style>{% endif %}<p>x</p>",
    "<p>{{ lipsum() }}</p>",
    "<p>{{ subscriber.first_name|xmlattr }}</p>",
    "{% filter upper %}<p>x</p>{% endfilter %}",
    "{% include 'x' %}",
    "<p>\ue000 private use</p>",
    "<p>{{ _eseq_link('a', 'b') }}</p>",
    "<p>{{ subscriber.tags|map('safe')|join }}</p>",
    "{% if %}",  # does not parse: the render reports it
]


def context(first_name: str, tags: list[str], last_name: str = "Smith") -> dict:
    return {"subscriber": {"id": 7, "email": "ann@example.test", "first_name": first_name, "last_name": last_name,
                           "timezone": None, "attributes": {"plan": first_name, "color": first_name},
                           "tags": tags},
            "unsubscribe_url": "https://mail.example.test/u/abc.def?x=1&y=" + first_name}


def reference(html: str, ctx: dict) -> str:
    return html_to_text(_render(_html_env, html, ctx))


def through_derived(html: str, ctx: dict) -> str:
    """The text as the derived template alone gives it: not through ``derived_text``,
    whose fallback to the parse would make a comparison with ``reference`` pass
    whatever the derived template did."""
    template = derived_text_template(_html_env, _text_env, html)
    assert template is not None, html
    return tidy_text(_render(_text_env, template, ctx))


@pytest.mark.parametrize("html", DERIVED)
def test_templates_that_only_carry_text_are_derived_and_match_the_parse_for_every_subscriber(html):
    for name in NAMES:
        for tags in TAGS:
            ctx = context(name, tags, last_name=name[::-1])
            assert through_derived(html, ctx) == reference(html, ctx), (name, tags)


@pytest.mark.parametrize("html", DECLINED)
def test_templates_that_could_change_the_parse_are_not_derived(html):
    assert derive_text_source(_html_env, html) is None


def test_render_email_uses_the_derived_text_and_gives_what_it_gave_before(monkeypatch):
    html = '<h1>Hi {{ subscriber.first_name }}</h1><p><a href="{{ unsubscribe_url }}">out</a></p>'
    ctx = context("Tom & <Jerry>", [])
    expected = reference(html, ctx)

    def no_parse(_html: str) -> str:
        raise AssertionError("took the per-email parse")

    monkeypatch.setattr("content.render.html_to_text", no_parse)
    out = render_email("s", html, None, ctx)
    monkeypatch.undo()
    assert out.text == expected == "Hi Tom & <Jerry>\n\nout (https://mail.example.test/u/abc.def?x=1&y=Tom & <Jerry>)"


def test_a_context_holding_markup_takes_the_per_email_path():
    from markupsafe import Markup

    html = "<p>{{ subscriber.first_name }}</p>"
    ctx = context("x", [])
    ctx["subscriber"]["first_name"] = Markup("<li>item")
    assert render_email("s", html, None, ctx).text == reference(html, ctx) == "- item"


# Random templates from pieces that each might or might not be safe: whenever the
# derivation accepts one, it must agree with the parse.
PIECES = ["<p>", "</p>", "<br>", "<li>", "<a href='https://x.test/{{ subscriber.first_name }}'>",
          '<a href="{{ unsubscribe_url }}">', "</a>", "<style>", "</style>", "<head>", "</head>", "<b>", "</b>",
          "{{ subscriber.first_name }}", "{{ subscriber.last_name|upper }}", "{% if subscriber.first_name %}",
          "{% else %}", "{% endif %}", "{% for t in subscriber.tags %}", "{% endfor %}", "{{ t }}", "&amp;", "&",
          "&am", "p;", "<", ">", "text", " ", "\n", "\t", "&nbsp;", "<!--", "-->", "<img alt='{{ subscriber.id }}'>",
          '"', "'", "=", "{# c #}", "<div", " class='{{ subscriber.first_name }}'", "</div>", "&#", "x3C;", "-"]


def test_random_templates_are_derived_only_when_exact():
    rng = random.Random(20240607)
    derived = 0
    for _ in range(1500):
        html = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 14)))
        try:
            _html_env.parse(html)
        except Exception:
            continue
        if derived_text_template(_html_env, _text_env, html) is None:
            continue
        derived += 1
        for name in rng.sample(NAMES, 6):
            ctx = context(name, rng.choice(TAGS), last_name=rng.choice(NAMES))
            assert through_derived(html, ctx) == reference(html, ctx), (html, name)
    assert derived > 300  # the check above ran on many templates, not a handful


def _tidy_before(text: str) -> str:
    """The normalisation as first written; tidy_text must give the same."""
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def test_tidy_text_collapses_whitespace_as_before():
    rng = random.Random(7)
    alphabet = [" ", "  ", "\t", "\r", "\n", "\n\n\n", "\f", "\v", "a", "b", "&amp;", "\u00a0"]
    for _ in range(3000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert tidy_text(raw) == _tidy_before(unescape(raw)), repr(raw)
