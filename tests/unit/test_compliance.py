"""The compliance footer: added when an email has no visible unsubscribe link of its
own, escaped, and skipped only by transactional sequences."""
from __future__ import annotations

import pytest

from content.compliance import add_unsubscribe_footer, has_visible_unsubscribe_link, is_transactional
from content.render import RenderedEmail, render_email

URL = "http://localhost:8000/u/abc.def-123"
ADDRESS = "1 Main St\nSpringfield, IL 62701"


def email(html: str | None, text: str = "Hello") -> RenderedEmail:
    return RenderedEmail(subject="Hi", html=html, text=text)


def test_an_email_without_an_unsubscribe_link_gets_a_footer_with_the_link_and_postal_address():
    out = add_unsubscribe_footer(email("<p>Big sale</p>"), URL, ADDRESS)
    assert out.html.startswith("<p>Big sale</p>")
    assert f'<a href="{URL}">Unsubscribe</a>' in out.html
    assert "1 Main St<br>Springfield, IL 62701" in out.html
    assert out.text == f"Hello\n\n--\nUnsubscribe: {URL}\n1 Main St\nSpringfield, IL 62701\n"


def test_without_a_postal_address_the_footer_has_only_the_link():
    out = add_unsubscribe_footer(email("<p>x</p>"), URL, None)
    assert out.html.endswith(f'<a href="{URL}">Unsubscribe</a></p>')
    assert out.text.endswith(f"Unsubscribe: {URL}\n")


def test_the_footer_goes_inside_the_body_when_there_is_one():
    out = add_unsubscribe_footer(email("<html><body><p>x</p></BODY></html>"), URL, None)
    assert out.html.endswith("Unsubscribe</a></p></BODY></html>")


def test_an_email_with_its_own_visible_unsubscribe_link_is_left_alone():
    rendered = render_email("s", '<p>Bye? <a href="{{ unsubscribe_url }}">leave</a></p>', "Leave: {{ unsubscribe_url }}",
                            {"unsubscribe_url": URL})
    assert add_unsubscribe_footer(rendered, URL, ADDRESS) == rendered


def test_a_link_whose_href_contains_the_unsubscribe_url_counts():
    assert has_visible_unsubscribe_link(f'<a href="{URL}?from=footer"><img src="x.png"></a>', URL)


@pytest.mark.parametrize("html", [
    f'<a href="{URL}"></a>',
    f'<a href="{URL}">   </a>',
    f'<a href="{URL}" style="display: none">unsubscribe</a>',
    f'<a href="{URL}" hidden>unsubscribe</a>',
    f'<div style="visibility:hidden"><p><a href="{URL}">unsubscribe</a></p></div>',
    f'<a href="{URL}"><span style="font-size:0px">unsubscribe</span></a>',
    f'<a href="https://elsewhere.test/">unsubscribe</a> {URL}',
    '<a href="http://localhost:8000/u/someone-elses-token">unsubscribe</a>',
])
def test_an_invisible_or_wrong_unsubscribe_link_does_not_count(html):
    assert not has_visible_unsubscribe_link(html, URL)
    assert f'<a href="{URL}">Unsubscribe</a>' in add_unsubscribe_footer(email(html), URL, None).html


def test_a_link_after_a_hidden_block_that_closed_is_visible():
    assert has_visible_unsubscribe_link(f'<div style="display:none">x<br></div><p><a href="{URL}">out</a></p>', URL)


def test_the_html_and_text_parts_are_judged_separately():
    out = add_unsubscribe_footer(email(f'<a href="{URL}">out</a>', text="no link here"), URL, None)
    assert out.html == f'<a href="{URL}">out</a>'
    assert URL in out.text


def test_a_text_only_email_gets_the_footer_in_its_text():
    out = add_unsubscribe_footer(email(None, "Plain news"), URL, ADDRESS)
    assert out.html is None
    assert out.text.startswith("Plain news\n\n--\nUnsubscribe: ")


def test_the_postal_address_is_escaped_in_html():
    out = add_unsubscribe_footer(email("<p>x</p>"), URL, '<script>alert("x")</script> & Co')
    assert "<script>" not in out.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in out.html


def test_only_an_explicit_transactional_true_opts_out():
    assert is_transactional({"transactional": True})
    for settings in (None, {}, {"transactional": False}, {"transactional": "yes"}, {"transactional": 1}):
        assert not is_transactional(settings)


@pytest.mark.parametrize("html, expected", [
    ("<p>x</p>", "<p>x</p>F"),
    ("<body><p>x</p></body></html>", "<body><p>x</p>F</body></html>"),
    ("<p>x</p></BODY\n >tail</body>", "<p>x</p>F</BODY\n >tail</body>"),  # the first closing tag
    ("<p>x</p></bodyx></body >", "<p>x</p></bodyx>F</body >"),
])
def test_the_footer_goes_before_the_first_closing_body_tag(html, expected):
    from content.compliance import append_html

    assert append_html(html, "F") == expected
