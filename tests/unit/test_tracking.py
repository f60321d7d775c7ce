"""Signed links: the fast signer writes exactly the tokens of the serializer it
stands in for (itsdangerous's, trying zlib only from 160 bytes of JSON), plain
itsdangerous reads them and we read its tokens, and tampering is still refused."""
from __future__ import annotations

import pytest
from itsdangerous import URLSafeSerializer

from delivery.tracking import Link, TokenError, Tracker, _LinkSerializer

SECRET = "test-secret-key-0123456789abcdef"
TRACKER = Tracker(SECRET, "https://mail.example.test")

PAYLOADS = [
    0, 1, 42, 2**31, 10**15, -7,
    [1, 3], [2**31, 10**15], [4, 1, "https://shop.example.test/spring?utm=mail&x=1"],
    [5, 99, "https://example.test/ünïcode/路径?q=ä€😀"], [6, 10, "https://example.test/" + "a" * 120],
    [True, 1], [1, True, "x"], [1, 2, 3],
    [1, "https://shop.example.test/spring?utm=mail&x=1"],
    [99, "https://example.test/ünïcode/路径?q=ä€😀"],
    [7, 'https://example.test/"quoted"/\\back\\slash'],
    [8, "https://example.test/\x00\x01\t\n\u2028\u2029</script>"],
    [9, ""],
    [10, "https://example.test/" + "a" * 130],  # just under 160 bytes of JSON
    [11, "https://example.test/" + "a" * 200],  # long: itsdangerous may compress
    [12, "https://example.test/" + "ab/" * 300],  # compresses well
    True, None, "text", {"a": 1}, [1, 2, 3], 1.5,  # shapes links do not use: the general path
]


def reference(purpose: str) -> URLSafeSerializer:
    """How tokens were made before the fast signer: the serializer itself. (From
    160 bytes the signer hands payloads to it, so those cases only check that.)"""
    return _LinkSerializer(SECRET, salt=f"eseq-{purpose}")


@pytest.mark.parametrize("purpose", ["open", "click", "unsubscribe"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_tokens_are_byte_identical_to_the_serializers(purpose, payload):
    assert TRACKER.sign(purpose, payload) == reference(purpose).dumps(payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_plain_itsdangerous_reads_our_tokens_and_we_read_its(payload):
    plain = URLSafeSerializer(SECRET, salt="eseq-click")
    assert plain.loads(TRACKER.sign("click", payload)) == payload
    assert TRACKER.verify("click", plain.dumps(payload)) == payload  # compressed or not


def test_a_token_for_one_purpose_does_not_verify_for_another():
    with pytest.raises(TokenError):
        TRACKER.verify("unsubscribe", TRACKER.sign("open", 5))


def test_a_token_under_another_secret_does_not_verify():
    other = Tracker("another-secret", TRACKER.base_url)
    with pytest.raises(TokenError):
        TRACKER.verify("open", other.sign("open", 5))


@pytest.mark.parametrize("payload", [5, [5, "https://example.test/a"]])
def test_any_changed_character_fails_verification(payload):
    token = TRACKER.sign("click", payload)
    for i, char in enumerate(token):
        for swap in {"A", "b", "-", "_", "."} - {char}:
            tampered = token[:i] + swap + token[i + 1:]
            with pytest.raises(TokenError):
                TRACKER.verify("click", tampered)


def test_links_name_the_message_and_destination():
    click = TRACKER.click_url(1, 3, "https://example.test/x")
    assert click.startswith("https://mail.example.test/t/c/")
    assert TRACKER.click_link(click.rsplit("/", 1)[1]) == (Link(3, 1), "https://example.test/x")
    assert TRACKER.open_link(TRACKER.open_url(1, 3)[len("https://mail.example.test/t/o/"):-4]) == Link(3, 1)
    assert TRACKER.unsubscribe_link(TRACKER.unsubscribe_url(1, 3).rsplit("/", 1)[1]) == Link(3, 1)


def test_rewrite_tracks_http_links_in_any_case_and_leaves_the_rest():
    html = ('<p><A class="x" HREF = "https://a.test/1">a</A> <a href=\'http://b.test/2\'>b</a> '
            '<a href="mailto:x@y.test">m</a> <a href="#top">t</a> '
            f'<a href="{TRACKER.unsubscribe_url(1, 3)}">u</a> <abbr href="https://c.test/">c</abbr></p></BODY >')
    out = TRACKER.rewrite_html(html, 1, 3)
    first = TRACKER.click_url(1, 3, "https://a.test/1")
    second = TRACKER.click_url(1, 3, "http://b.test/2")
    assert f'<A class="x" HREF = "{first}">a</A>' in out
    assert f"<a href='{second}'>b</a>" in out
    assert '<a href="mailto:x@y.test">m</a> <a href="#top">t</a>' in out
    assert f'<a href="{TRACKER.unsubscribe_url(1, 3)}">u</a>' in out
    assert '<abbr href="https://c.test/">c</abbr>' in out
    assert out.endswith(f'<img src="{TRACKER.open_url(1, 3)}" width="1" height="1" alt="" style="display:none"></BODY >')


def test_the_tracked_link_leads_where_the_readers_browser_would_have_gone():
    # Entities decoded (an editor writes "&amp;"), tabs and line breaks dropped,
    # and a data-href before the real href is not taken for the link.
    html = ('<a href="https://shop.test/?a=1&amp;b=2">q</a> '
            '<a href="https://shop.test/long\n/path\t">w</a> '
            '<a data-href="https://decoy.test/" href="https://real.test/">d</a>')
    out = TRACKER.rewrite_html(html, 1, 3)
    assert TRACKER.click_url(1, 3, "https://shop.test/?a=1&b=2") in out
    assert TRACKER.click_url(1, 3, "https://shop.test/long/path") in out
    assert f'<a data-href="https://decoy.test/" href="{TRACKER.click_url(1, 3, "https://real.test/")}">d</a>' in out


def test_links_signed_before_they_named_the_account_verify_without_one():
    assert TRACKER.open_link(TRACKER.sign("open", 3)) == Link(3, None)
    assert TRACKER.unsubscribe_link(TRACKER.sign("unsubscribe", 3)) == Link(3, None)
    assert TRACKER.click_link(TRACKER.sign("click", [3, "https://a.test/"])) == (Link(3, None), "https://a.test/")


@pytest.mark.parametrize("purpose", ["open", "click", "unsubscribe"])
@pytest.mark.parametrize("payload", [[1, 2, 3], ["1", 2], [True, 2], [0, 2], [1, -2], 0, -3, "3", None, [1, 2, 3, "x"]])
def test_a_signed_payload_of_another_shape_is_a_token_error_not_a_crash(purpose, payload):
    read = {"open": TRACKER.open_link, "click": TRACKER.click_link, "unsubscribe": TRACKER.unsubscribe_link}[purpose]
    with pytest.raises(TokenError):
        read(TRACKER.sign(purpose, payload))


def test_a_mailbox_address_names_the_account_and_the_message_and_older_ones_the_message():
    tracker = Tracker(SECRET, "https://mail.example.test", "unsub.example.test")
    address = tracker.unsubscribe_mailto(7, 2**40, "s@x.test").removeprefix("mailto:").split("?")[0]
    assert len(address.split("@")[0]) <= 64
    assert tracker.mailbox_message(address) == Link(2**40, 7)
    old_mac = tracker._mailbox_mac("5")
    assert tracker.mailbox_message(f"unsub-5-{old_mac}@unsub.example.test") == Link(5, None)
    assert tracker.mailbox_message(f"unsub-1-5-{old_mac}@unsub.example.test") is None
