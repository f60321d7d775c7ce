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


def test_it_reports_a_syntax_error_with_its_line():
    with pytest.raises(TemplateRenderError, match="line 2"):
        check_template("ok\n{% if %}")


def test_html_becomes_readable_text_with_links_kept():
    text = html_to_text('<style>p{}</style><h1>Sale</h1><p>See <a href="https://x.test/a">our offer</a></p><ul><li>one</li></ul>')
    assert text == "Sale\n\nSee our offer (https://x.test/a)\n\n- one"
