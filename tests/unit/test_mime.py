"""The MIME message written from a skeleton: what the email package's own parser
reads back from it, line limits, encodings, refused header injection, and the
EmailMessage view the HTTP adapters use."""
from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timezone

import pytest

from delivery.mime import BuiltMessage, Envelope, HeaderInjectionError, MessageBuildError, build_message

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
UNSUBSCRIBE = "https://t.example/u/" + "a" * 60


def build(**overrides: object) -> BuiltMessage:
    fields = {"from_email": "alice@news.example", "from_name": "Alice Example", "to_email": "bob@example.org",
              "subject": "Hello Bob", "html": "<p>Hi Bob</p>", "text": "Hi Bob", "unsubscribe_url": UNSUBSCRIBE,
              "unsubscribe_mailto": "mailto:alice@news.example?subject=unsubscribe", "message_key": "42:7:a"}
    fields.update(overrides)
    return build_message(Envelope(**fields), NOW)  # type: ignore[arg-type]


def parsed(message: BuiltMessage) -> email.message.EmailMessage:
    """What a receiving mail system reads: the bytes, through the stdlib parser."""
    return email.message_from_bytes(message.raw, policy=email.policy.default)  # type: ignore[return-value]


def test_it_writes_text_then_html_in_a_multipart_alternative_with_the_bulk_sender_headers():
    got = parsed(build())
    assert got.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in got.iter_parts()] == ["text/plain", "text/html"]
    assert got["Subject"] == "Hello Bob" and got["From"] == "Alice Example <alice@news.example>"
    assert got["To"] == "bob@example.org" and got["Date"] == "Mon, 02 Mar 2026 09:30:00 +0000"
    assert got["List-Unsubscribe"] == f"<mailto:alice@news.example?subject=unsubscribe>, <{UNSUBSCRIBE}>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got["X-Eseq-Message"] == "42:7:a"
    assert re.fullmatch(r"<eseq\.[0-9a-f]{32}@news\.example>", got["Message-ID"])
    assert got["MIME-Version"] == "1.0"
    assert got.defects == [] and all(p.defects == [] for p in got.iter_parts())


# RFC 5322 3.6.4: msg-id is "<" dot-atom-text "@" dot-atom-text ">" (or a literal
# on the right), atoms of atext joined by single dots.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_MSG_ID = re.compile(rf"<{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*>")


@pytest.mark.parametrize("variant", ["Café", "Spring sale", "a>b", "me@there", "", "v1.5", "Праздник 🎉"])
def test_any_variant_name_gives_a_valid_message_id_and_its_key_reads_back_exactly(variant):
    # The outbox key as sequencing.handlers writes it: enrollment:step:variant:visit.
    key = f"1:2:{variant}:0"
    message = build(message_key=key)
    got = parsed(message)
    assert _MSG_ID.fullmatch(got["Message-ID"]), got["Message-ID"]
    assert got["Message-ID"].defects == () and got["Message-ID"] == message.message_id
    assert got["X-Eseq-Message"] == key and message["X-Eseq-Message"] == key
    assert message.raw.isascii() and not message.smtputf8
    head = message.raw.partition(b"\r\n\r\n")[0].split(b"\r\n")
    assert [line for line in head if len(line) > 78] == [f" <{UNSUBSCRIBE}>".encode()]


def test_the_same_key_always_gives_the_same_message_id_and_another_key_another():
    # A message resent in doubt must be recognisable downstream as the same one.
    ids = {key: build(message_key=key).message_id for key in ("1:2::0", "1:2::1", "1:2:a:0", "1:2:Café:0")}
    assert len(set(ids.values())) == 4
    assert all(build(message_key=key).message_id == ids[key] for key in ids)
    assert build(message_key="1:2::0", to_email="carol@example.org", subject="Other").message_id == ids["1:2::0"]


def test_non_ascii_subject_and_sender_name_are_encoded_words_that_read_back_exactly():
    subject = "Grüße aus Köln — " + "ünïcödé " * 12
    got = parsed(build(subject=subject.strip(), from_name="Zoë Ünal"))
    assert got["Subject"] == subject.strip()
    assert got["From"].addresses[0].display_name == "Zoë Ünal"
    assert b"=?utf-8?b?" in build(subject=subject).raw.split(b"\r\n\r\n")[0]


@pytest.mark.parametrize("name", ['Smith, John "JJ"', "Dr. Alice", "=?utf-8?q?not_ours?="])
def test_a_sender_name_with_specials_is_quoted_or_encoded_never_taken_as_syntax(name):
    got = parsed(build(from_name=name))
    assert got["From"].addresses[0].display_name == name
    assert got["From"].addresses[0].addr_spec == "alice@news.example"


def test_every_line_is_crlf_terminated_and_within_78_columns_but_an_unbreakable_url():
    long_text = "word " * 200 + "\n" + "x" * 300 + "\nLast line with trailing spaces   \n"
    message = build(subject=("A subject that is long enough to need folding " * 4).strip(), text=long_text,
                    html="<p>" + "é" * 500 + "</p>")
    lines = message.raw.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    assert [line for line in lines if len(line) > 78] == [f" <{UNSUBSCRIBE}>".encode()]
    got = parsed(message)
    assert got["Subject"] == ("A subject that is long enough to need folding " * 4).strip()
    assert got.get_body(("plain",)).get_content().replace("\r\n", "\n") == long_text


@pytest.mark.parametrize("text, encoding", [("Plain short lines\nof ASCII", "7bit"),
                                            ("One line far longer than seventy-eight characters " * 3, "quoted-printable"),
                                            ("Mostly Latin, with one é", "quoted-printable"),
                                            ("Почти всё по-русски, кроме этого" * 5, "base64")])
def test_bodies_get_the_smallest_transfer_encoding_that_keeps_them_7bit(text, encoding):
    message = build(text=text, html=None)
    part = next(parsed(message).iter_parts())
    assert part["Content-Transfer-Encoding"] == encoding
    assert part.get_content().replace("\r\n", "\n").rstrip("\n") == text
    assert message.raw.isascii()


@pytest.mark.parametrize("field", ["subject", "from_name", "to_email", "from_email", "message_key", "unsubscribe_url"])
def test_a_line_break_in_any_header_value_is_refused(field):
    with pytest.raises(HeaderInjectionError):
        build(**{field: "x@y.test\r\nBcc: victim@example.org"})


@pytest.mark.parametrize("address", ["bob@example.org, eve@example.org", "bo\x00b@example.org", "bob@exam\x7fple.org"])
def test_an_address_that_is_not_one_is_refused(address):
    with pytest.raises(MessageBuildError):  # a control character would be written into the header raw
        build(to_email=address)


def test_a_non_ascii_address_asks_the_transport_for_smtputf8():
    message = build(to_email="zoë@exämple.de")
    assert message.smtputf8 and not build().smtputf8
    assert "zoë@exämple.de" in message.raw.decode("utf-8")


def test_http_adapters_read_the_same_message_through_the_email_message_api():
    message = build(subject="Grüße", from_name="Zoë")
    assert isinstance(message, email.message.EmailMessage)
    assert message["Subject"] == "Grüße" and message["X-Eseq-Message"] == "42:7:a"
    assert message.get_body(("plain",)).get_content() == "Hi Bob\n"
    assert message.get_body(("html",)).get_content() == "<p>Hi Bob</p>\n"
    assert message["Message-ID"] == message.message_id
    assert message.as_bytes(policy=message.policy.clone(linesep="\r\n")) == message.raw
    assert message.as_bytes(policy=email.policy.SMTP) == message.raw


def test_a_built_message_is_final_so_its_bytes_and_its_headers_cannot_disagree():
    message = build()
    with pytest.raises(TypeError):
        message["Subject"] = "changed"
    with pytest.raises(TypeError):
        del message["Subject"]
    assert message["Subject"] == "Hello Bob"
    message.prepend_header(b"X-First: 1")
    assert message.keys()[0] == "X-First" and message.raw.startswith(b"X-First: 1\r\n")


def _body_as_before(content: str) -> tuple[str, str]:
    """The transfer encoding as first written: b2a_qp over the whole body."""
    import base64
    import binascii

    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if not content.endswith("\n"):
        content += "\n"
    if content.isascii() and "\x00" not in content and max(map(len, content.split("\n"))) <= 78:
        return "7bit", content.replace("\n", "\r\n")
    data = content.replace("\n", "\r\n").encode("utf-8")
    qp = binascii.b2a_qp(data, istext=True)
    if len(qp) > len(data) * 4 // 3 * 78 // 76 + 4:
        return "base64", base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
    return "quoted-printable", qp.decode("ascii")


def test_bodies_are_encoded_line_by_line_exactly_as_b2a_qp_encodes_the_whole():
    import random

    from delivery.mime import _body

    rng = random.Random(11)
    pieces = ["a", "word ", " ", "\t", "=", ".", "—", "é", "😀", "\n", "\r\n", "\r", "\n.", ".\n", " \n", "\t\n",
              "x" * 70, "A" * 74, "=" * 3, "\x00", "\x01", "\x7f", "\u2028", "_", "=_eseq_", "\n" * 3]
    seen = set()
    for _ in range(6000):
        content = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        got = _body(content)
        assert got == _body_as_before(content), repr(content)
        assert _body(content) == got  # and again, from the per-line cache
        seen.add(got[0])
    assert seen == {"7bit", "quoted-printable", "base64"}


@pytest.mark.parametrize("subject", ["Hello Bob", "", " leading", "trailing ", "two  spaces", "a\ttab", "=?utf-8?q?x?=",
                                     "x" * 69, "x" * 70, "word " * 14 + "w", "Zoë", "\x7f", "a" * 200, "ok!#$%&'*+"])
def test_a_short_plain_subject_is_written_as_the_folding_writes_it(subject):
    from delivery.mime import _fold, _subject_header, _text_tokens

    assert _subject_header(subject) == _fold("Subject", _text_tokens(subject, len("Subject: ")))
