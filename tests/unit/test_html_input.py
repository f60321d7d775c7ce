"""HTML still open at its end is closed before html.parser reads it: on this
Python the parser is quadratic in such input (CVE-2025-6069), and a ``<![``
without a name makes it raise."""
from __future__ import annotations

import pytest

from content.html_input import parseable
from content.render import render_email
from content.text import html_to_text


@pytest.mark.parametrize("tail", ["<a " * 100_000, "<!--" * 100_000, "<a b='" * 100_000])
def test_markup_left_open_at_the_end_is_read_in_linear_time(tail):
    # Sized so the parser as it was would take about ten minutes (unclosed tags:
    # 4,000 took 1 s, 8,000 4 s, 16,000 16 s); no timing is asserted, the test
    # simply finishes.
    assert html_to_text("<p>Hello there</p>" + tail).startswith("Hello there")


def test_a_marked_section_html_parser_does_not_know_is_text_not_an_error():
    assert "<![ oops" in html_to_text("<p>a</p><![ oops ]]> <p>b</p>")
    assert "<![hidden" in html_to_text("<p>a</p><![hidden]> <p>b</p>")
    assert html_to_text("<![if !mso]><p>shown</p><![endif]>") == "shown"


@pytest.mark.parametrize("html", [
    "<p>3 &lt; 5 and <b>bold</b></p>",
    "<!--[if mso]><table><![endif]--><p>x</p>",
    "<div><!-- a --><p>y</p><!-- b --></div>",
])
def test_well_formed_html_is_left_as_it_is(html):
    assert parseable(html) == html


def test_what_is_left_open_means_what_html5_says():
    assert parseable("<p>a</p><!-- never closed <p>b</p>") == "<p>a</p><!-- never closed <p>b</p>-->"
    assert parseable("<p>a</p> 1 < 2 <b") == "<p>a</p> 1 &lt; 2 &lt;b"
    assert html_to_text("<p>a</p> 1 < 2 <b") == "a\n1 < 2 <b"
    assert html_to_text("<!--><p>shown</p><!---><p>too</p>") == "shown\n\ntoo"


def test_a_template_open_at_its_end_renders_with_its_text_part():
    rendered = render_email("Hi", "<p>Hello {{ subscriber.first_name }}</p>" + "<a " * 50_000, None,
                            {"subscriber": {"first_name": "Ada"}})
    assert rendered.text.startswith("Hello Ada")
