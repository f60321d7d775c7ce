"""Rendering user templates: sandboxed, escaped, bounded, and failing with a reason."""
from __future__ import annotations

import pytest

from content.render import TemplateRenderError, check_template, render_email
from content.text import html_to_text

CTX = {"subscriber": {"first_name": "Ann", "attributes": {"plan": "pro"}}}


def test_it_personalises_subject_and_bodies_and_escapes_html():
    out = render_email("Hi {{ subscriber.first_name }}", "<p>{{ subscriber.attributes.plan }} {{ '<b>' }}</p>", None, CTX)
    assert out.subject == "Hi Ann"
    assert out.html == "<p>pro &lt;b&gt;</p>"
    assert out.text == "pro <b>"


def test_it_refuses_a_subject_that_renders_a_line_break():
    with pytest.raises(TemplateRenderError):
        render_email("Hi{{ '\\r\\nBcc: x@y.test' }}", None, "x", CTX)


@pytest.mark.parametrize("source", ["{{ ''.__class__.__mro__ }}", "{{ 1/0 }}", "{{ 'a' * 1000000000 }}",
                                    "{{ 10 ** 100000 }}", "{{ range(10000000) | list }}"])
def test_hostile_or_broken_templates_fail_with_a_render_error(source):
    with pytest.raises(TemplateRenderError):
        render_email("s", None, source, CTX)


@pytest.mark.parametrize("source", [
    "{{ '%2000000000s'|format('x') }}", "{{ 'x'|center(2000000000) }}", "{{ '{:>2000000000}'.format('x') }}",
    "{{ 'x'.center(2000000000) }}", "{{ 'x'.ljust(2000000000) }}",
    "{% set s = 'x' * 100000 %}{% for i in range(100) %}{{ s }}{% endfor %}",  # 10 MB, a piece at a time
    "{% set s = 'x' * 100000 %}{{ s|replace('x', 'y' * 100000) }}",  # 10 GB, refused before it is built
    "{% set s = 'x' * 100000 %}{{ s.replace('', 'y' * 100) }}",
    "{% set s = 'x' * 10000 %}{{ (s ~ '\n' ~ s)|indent(2000000000) }}",
    "{{ ('y' * 100000).join(range(100000)|map('string')|list) }}",
    "{% set s = 'x' * 100000 %}{% for c in s %}{% set t = s|list %}{% endfor %}",  # 100,000 lists of 100,000
])
def test_a_template_that_would_render_gigabytes_is_refused_before_it_does(source):
    with pytest.raises(TemplateRenderError, match="too large|exceed"):
        render_email("s", None, source, CTX)


def test_padding_replacing_and_formatting_of_ordinary_sizes_still_render():
    source = ("{{ '%5s'|format('x') }}|{{ 'x'|center(9) }}|{{ '{:>6}'.format('x') }}|{{ 'ab'|replace('a', 'c') }}|"
              "{{ 'a\nb'|indent(2) }}|{{ ', '.join(['a', 'b']) }}")
    assert render_email("s", None, source, CTX).text == "    x|    x    |     x|cb|a\n  b|a, b"


def test_it_reports_a_syntax_error_with_its_line():
    with pytest.raises(TemplateRenderError, match="line 2"):
        check_template("ok\n{% if %}")


def test_html_becomes_readable_text_with_links_kept():
    text = html_to_text('<style>p{}</style><h1>Sale</h1><p>See <a href="https://x.test/a">our offer</a></p><ul><li>one</li></ul>')
    assert text == "Sale\n\nSee our offer (https://x.test/a)\n\n- one"


@pytest.mark.parametrize("source", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",  # no output at all
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",  # no loop
])
def test_a_template_that_would_run_for_hours_stops_at_its_cpu_budget_and_the_next_renders(source):
    with pytest.raises(TemplateRenderError, match="s of CPU"):
        render_email("s", None, source, CTX)
    looped = "{% for x in [1, 2, 3] %}{{ loop.index }}/{{ loop.length }} {% else %}none{% endfor %}"
    assert render_email("s", None, looped + "{% for x in [] %}a{% else %}empty{% endfor %}", CTX).text == "1/3 2/3 3/3 empty"
