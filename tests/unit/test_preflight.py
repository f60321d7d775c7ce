"""Pre-flight content scoring: each heuristic adds its reason; clean mail passes."""
from __future__ import annotations

from content.preflight import FAIL_SCORE, dkim_aligned, score_content

CLEAN_HTML = "<p>Hi Ann, here is what changed in your account this month.</p>" * 5


def test_a_plain_friendly_email_passes_with_no_reasons():
    score = score_content("Your March summary", CLEAN_HTML + '<a href="https://acme.test/x">acme.test/x</a>', None)
    assert score.reasons == [] and score.passed


def test_shouting_subjects_and_spam_phrases_fail():
    score = score_content("ACT NOW!!! FREE MONEY", "<p>100% free, click here, you are a winner</p>", None)
    assert score.score >= FAIL_SCORE and not score.passed
    joined = " ".join(score.reasons)
    assert "capital letters" in joined and "punctuation" in joined and "'free money'" in joined


def test_shorteners_ip_links_and_mismatched_link_text_are_reasons():
    html = (CLEAN_HTML + '<a href="https://bit.ly/abc">go</a><a href="http://192.0.2.7/x">x</a>'
            '<a href="https://evil.test/login">www.bank.test</a>')
    reasons = " ".join(score_content("Hello", html, None).reasons)
    assert "link shortener bit.ly" in reasons and "bare IP" in reasons and "shows www.bank.test" in reasons


def test_an_email_that_is_mostly_images_is_a_reason():
    reasons = score_content("Look", '<img src="a.png"><img src="b.png"><p>Hi</p>', None).reasons
    assert any("image" in r for r in reasons)


def test_the_from_domain_must_align_with_the_dkim_domain():
    assert dkim_aligned("news@mail.acme.test", "acme.test")
    assert dkim_aligned("news@acme.test", "acme.test")
    assert not dkim_aligned("news@other.test", "acme.test")
    assert dkim_aligned("news@other.test", None)


def test_only_a_leading_www_is_ignored_when_comparing_shown_and_real_link_domains():
    body = "<p>" + "Plenty of ordinary text here. " * 20 + "</p>"
    same = score_content("Hello", body + '<a href="https://acme.test/x">www.acme.test</a>', None)
    other = score_content("Hello", body + '<a href="https://evil.test/x">wevil.test</a>', None)
    assert same.reasons == []
    assert any("shows wevil.test" in r for r in other.reasons)
