"""The compliance footer: added when an email has no visible unsubscribe link of its
own, escaped, and skipped only by transactional sequences."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import content.compliance
from content.compliance import (add_unsubscribe_footer, append_html, footer_html, has_visible_unsubscribe_link,
                                is_transactional)
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


def test_a_link_to_the_unsubscribe_url_with_a_query_or_an_escaped_ampersand_counts():
    assert has_visible_unsubscribe_link(f'<a href="{URL}?from=footer"><img src="x.png" alt="Unsubscribe"></a>', URL)
    assert has_visible_unsubscribe_link(f'<a href="{URL}?a=1&amp;b=2#top">unsubscribe</a>', URL)
    assert has_visible_unsubscribe_link(f'<a href=" {URL}\n">unsubscribe</a>', URL)  # spaces a browser drops


@pytest.mark.parametrize("html", [
    f'<a href="{URL}"></a>',
    f'<a href="{URL}">   </a>',
    f'<a href="{URL}" style="display: none">unsubscribe</a>',
    f'<a href="{URL}" hidden>unsubscribe</a>',
    f'<div style="visibility:hidden"><p><a href="{URL}">unsubscribe</a></p></div>',
    f'<a href="{URL}"><span style="font-size:0px">unsubscribe</span></a>',
    f'<a href="https://elsewhere.test/">unsubscribe</a> {URL}',
    '<a href="http://localhost:8000/u/someone-elses-token">unsubscribe</a>',
    # Text a reader cannot see: zero-width or blank characters only, an image without alt text.
    f'<a href="{URL}">&#8203;</a>',
    f'<a href="{URL}">\u200b&nbsp;&zwnj;&#xFEFF;</a>',
    f'<a href="{URL}"><img src="x.png"></a>',
    f'<a href="{URL}"><img src="x.png" alt=" "></a>',
    # Styles that hide as surely as display:none.
    f'<a href="{URL}" style="opacity:0">unsubscribe</a>',
    f'<p style="color:#999; Opacity: .0 !important"><a href="{URL}">unsubscribe</a></p>',
    f'<div style="max-height:0;overflow:hidden"><a href="{URL}">unsubscribe</a></div>',
    f'<td style="height: 0px; overflow: hidden"><a href="{URL}">unsubscribe</a></td>',
    f'<a href="{URL}" style="mso-hide:all">unsubscribe</a>',
    # Elements whose content is never shown, and a comment the author did not close.
    f'<title><a href="{URL}">unsubscribe</a></title>',
    f'<template><a href="{URL}">unsubscribe</a></template>',
    f'<textarea><a href="{URL}">unsubscribe</a></textarea>',
    f'<p>Sale</p><!-- old footer: <p><a href="{URL}">unsubscribe</a></p>',
    # The URL only as part of another address.
    f'<a href="https://other.example/?next={URL}">unsubscribe</a>',
    f'<a href="{URL}4">unsubscribe</a>',  # a longer token that starts with this one
])
def test_an_invisible_or_wrong_unsubscribe_link_does_not_count(html):
    assert not has_visible_unsubscribe_link(html, URL)
    assert f'<a href="{URL}">Unsubscribe</a>' in add_unsubscribe_footer(email(html), URL, None).html


@pytest.mark.parametrize("html", [
    f'<a href="{URL}" aria-hidden="true">unsubscribe</a>',  # hidden from screen readers only
    f'<a href="{URL}">&#8203;Unsubscribe</a>',
    f'<a href="{URL}" style="opacity:0.5;font-size:10px;line-height:0">unsubscribe</a>',
    f'<div style="max-height:0"><a href="{URL}">unsubscribe</a></div>',  # it overflows, visibly
    f'<a href="{URL}"><img src="x.png" alt="Unsubscribe"></a>',
])
def test_a_link_styled_but_not_hidden_counts(html):
    assert has_visible_unsubscribe_link(html, URL)


def test_a_link_after_a_hidden_block_that_closed_is_visible():
    assert has_visible_unsubscribe_link(f'<div style="display:none">x<br></div><p><a href="{URL}">out</a></p>', URL)


def test_the_html_and_text_parts_are_judged_separately():
    out = add_unsubscribe_footer(email(f'<a href="{URL}">out</a>', text="no link here"), URL, None)
    assert out.html == f'<a href="{URL}">out</a>'
    assert URL in out.text


@pytest.mark.parametrize("text", [
    "Leave: https://other.example/?next=" + URL,
    f"Leave: {URL}4",
    f"Leave: https://other.example/go/{URL}",
])
def test_a_text_part_whose_url_is_part_of_another_address_gets_the_footer(text):
    out = add_unsubscribe_footer(email(f'<a href="{URL}">out</a>', text=text), URL, None)
    assert out.text.endswith(f"\n\n--\nUnsubscribe: {URL}\n")


@pytest.mark.parametrize("text", [f"Opt out: {URL}.", f"Opt out:{URL}", f"Opt out ({URL}?src=text)", f"{URL}\nThanks", f"<{URL}>"])
def test_a_text_part_with_the_url_on_its_own_is_left_alone(text):
    assert add_unsubscribe_footer(email(f'<a href="{URL}">out</a>', text=text), URL, None).text == text


def test_a_text_part_derived_from_html_that_only_passes_the_url_on_gets_the_footer_in_both_parts():
    rendered = render_email("s", '<p><a href="https://other.example/?next={{ unsubscribe_url }}">leave</a></p>', None,
                            {"unsubscribe_url": URL})
    assert f"?next={URL}" in rendered.text
    out = add_unsubscribe_footer(rendered, URL, None)
    assert f'<a href="{URL}">Unsubscribe</a>' in out.html and f"Unsubscribe: {URL}" in out.text


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
    for sequence_settings in (None, {}, {"transactional": False}, {"transactional": "yes"}, {"transactional": 1}):
        assert not is_transactional(sequence_settings)


@pytest.mark.parametrize("html, expected", [
    ("<p>x</p>", "<p>x</p>F"),
    ("<body><p>x</p></body></html>", "<body><p>x</p>F</body></html>"),
    ("<p>x</p></BODY\n >tail</body>", "<p>x</p>F</BODY\n >tail</body>"),  # the first closing tag
    ("<p>x</p></bodyx></body >", "<p>x</p></bodyx>F</body >"),
])
def test_the_footer_goes_before_the_first_closing_body_tag(html, expected):
    from content.compliance import append_html

    assert append_html(html, "F") == expected


FOOTER = footer_html(URL, None)


@pytest.mark.parametrize("html, expected", [
    # A preheader whose </div> the author forgot: the footer would be display:none too.
    ('<html><body><div style="display:none">Spring preview<p>Sale</p></body></html>',
     f'<html><body><div style="display:none">Spring preview<p>Sale</p></div>{FOOTER}</body></html>'),
    ('<div style="max-height:0;overflow:hidden">Spring preview<p><b>Sale',
     f'<div style="max-height:0;overflow:hidden">Spring preview<p><b>Sale</b></p></div>{FOOTER}'),
    # Elements whose content is text up to their end tag, or never shown.
    ('<html><head><style>p{color:red}</head><body><p>Sale</p></body></html>',
     f'<html><head><style>p{{color:red}}</head><body><p>Sale</p></style>{FOOTER}</body></html>'),
    ('<html><head><title>Spring</head><body><p>Sale</p></body></html>',
     f'<html><head><title>Spring</head><body><p>Sale</p></title>{FOOTER}</body></html>'),
    ('<p>Sale</p><script>var seen = 1;', f'<p>Sale</p><script>var seen = 1;</script>{FOOTER}'),
    ('<p>Sale</p><template><div>later</body>', f'<p>Sale</p><template><div>later</div></template>{FOOTER}</body>'),
    # A comment the author did not close hides everything after it in a browser.
    ('<p>Sale</p><!-- note to self </body></html>', f'<p>Sale</p><!-- note to self -->{FOOTER}</body></html>'),
])
def test_the_footer_is_kept_out_of_what_the_author_left_open(html, expected):
    assert not has_visible_unsubscribe_link(append_html(html, FOOTER), URL)  # where it went before
    out = add_unsubscribe_footer(email(html), URL, None)
    assert out.html == expected
    assert has_visible_unsubscribe_link(out.html, URL)


def test_a_footer_that_closing_cannot_show_goes_at_the_start_of_the_body():
    # The first </body> is inside an attribute: a footer put there would be part of the tag.
    html = '<body><p>Sale</p><div style="display:none" title="</body>"></div></body>'
    assert add_unsubscribe_footer(email(html), URL, None).html == f'<body>{FOOTER}{html[len("<body>"):]}'


NEWSLETTER = ('<!DOCTYPE html><html><head><title>Spring</title><style>.mobile-hide{display:none}</style>'
              '<!--[if mso]><style>table{border-collapse:collapse}</style><![endif]--></head><body>'
              '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">Spring preview &#8203;</div>'
              '<div hidden>Web version only</div><table style="border:0;padding:0"><tr>'
              '<td style="font-size:0;line-height:0;height:20px">&nbsp;</td>'
              '<td style="text-decoration:none"><p>Sale! <a href="https://shop.test/">shop</a></p></td></tr></table>'
              '</body></html>')


def test_a_well_formed_newsletter_gets_its_footer_before_body_end_without_being_parsed(monkeypatch):
    # Parsing a newsletter costs ten times the rest of the check: the common case must not.
    def no_parsing(*args: object) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(content.compliance, "_UnsubscribeLinkFinder", no_parsing)
    assert add_unsubscribe_footer(email(NEWSLETTER), URL, None).html == append_html(NEWSLETTER, FOOTER)


FRAGMENTS = ['<div>', '</div>', '<p>', '</p>', '<b>', '</b>', '<table><tr><td>', '</td></tr></table>', 'Sale', '<br/>',
             '<div style="display:none">', '<div hidden>', '<DIV HIDDEN>', '<div class="x"hidden>', '<span style="font-size:0">',
             '<td style="height:0;overflow:hidden">', '<div style="opacity : 0">', '<div title="a>b" hidden>', '<div/>',
             '<img style="display:none" alt="">', '<style>', '</style>', '<STYLE>', '<style/>', '<script>', '</script>',
             '<title>', '</title>', '<template>', '</template>', '<textarea>', '</textarea>', '<noscript>', '<!--', '-->',
             '<!-->', 'hidden', 'display:none', '<a href="https://shop.test/">', '</a>', f'<a href="{URL}" hidden>x</a>',
             '<!-- </body> -->', '<script>"</body>"</script>',
             # markup cut off or broken: a tag, a quote, a comment, a marked section
             '<a ', '<p', '<!---', '<!--->', '<![', '<', "'", '"', '<div style="', '<body>', '</body>']


@settings(max_examples=300, deadline=None, derandomize=True, database=None)  # the same examples in every run
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=10), st.sampled_from(["</body></html>", ""]))
def test_whatever_the_author_leaves_open_the_footer_is_visible(fragments, end):
    out = add_unsubscribe_footer(email("".join(fragments) + end), URL, None)
    assert has_visible_unsubscribe_link(out.html, URL)
