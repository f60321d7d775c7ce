"""Building the MIME message for one outbox row.

Multipart/alternative (text first, HTML last, as RFC 2046 orders preference), a
Message-ID in our own domain derived from the outbox key, and the List-Unsubscribe
pair that Gmail and Yahoo require of bulk senders since 2024 (RFC 2369 plus RFC
8058 one-click).

The bytes are written from a fixed skeleton rather than through
``email.message.EmailMessage``, which costs about 1.5 ms to build and 0.5 ms to
serialize each message: more than rendering, tracking and the SMTP hand-off
together. Only the values are encoded per message: RFC 2047 words for non-ASCII
header text, 7bit bodies when the text is short-lined ASCII, otherwise
quoted-printable or base64, whichever is smaller. The output is 7-bit clean
(unless an address needs SMTPUTF8), with CRLF line ends and header lines folded
at 78 columns. ``tests/unit/test_mime.py`` checks it against the email package's
own parser.

The result is still an ``EmailMessage`` (``BuiltMessage``), so the HTTP adapters
read its headers and parts through the usual API; the tree they read is parsed
from the bytes the first time they ask, and the SMTP path never pays for it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import random
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

MAX_LINE = 78  # RFC 5322's "SHOULD"; 998 is the hard limit
_ENCODED_WORD_ROOM = 76  # RFC 2047: a line holding encoded words stays within 76
_WORD_OVERHEAD = len("=?utf-8?b??=")
# Display names made only of these need no quoting (RFC 5322 atext and spaces).
_BARE_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_TOKEN = re.compile(r"[ \t]*[^ \t]+")
_PLAIN_HEADER_TEXT = re.compile(r"[\x20-\x7e]*")
_ADDRESS = re.compile(r"[^\s\x00-\x1f\x7f<>(),;:\"\\\[\]]+@[^\s\x00-\x1f\x7f<>(),;:\"\\\[\]@]+")  # no control characters
_KEY_HEADER = "X-Eseq-Message"


class MessageBuildError(ValueError):
    """The envelope cannot be written as a message; the text says why."""


class HeaderInjectionError(MessageBuildError):
    """A header value contains CR or LF."""


@dataclass(frozen=True)
class Envelope:
    from_email: str
    from_name: str | None
    to_email: str
    subject: str
    html: str | None
    text: str
    unsubscribe_url: str
    unsubscribe_mailto: str | None
    message_key: str
    transactional: bool = False  # from a sequence marked transactional: providers with streams route it apart


class BuiltMessage(EmailMessage):
    """An ``EmailMessage`` whose bytes (``raw``) were written directly; transports
    that take bytes send them as they are.

    Readers of the ``EmailMessage`` API get a tree parsed from ``raw`` on first
    use. A built message is final: editing the tree would leave ``raw`` saying
    something else, so item assignment and deletion are refused; DKIM adds its
    header through ``prepend_header``, which keeps the two in step.
    """

    _OWN = ("policy", "raw", "message_id", "smtputf8", "transactional")

    def __init__(self, raw: bytes, message_id: str, smtputf8: bool = False, transactional: bool = False) -> None:
        # Not EmailMessage.__init__: the attributes it sets come from parsing ``raw``.
        self.policy = email_policy.SMTPUTF8 if smtputf8 else email_policy.SMTP
        self.raw = raw
        self.message_id = message_id
        self.smtputf8 = smtputf8  # an address is not ASCII: the server must offer SMTPUTF8
        self.transactional = transactional

    def __getattr__(self, name: str) -> Any:
        # Reached only for attributes not set in __init__: the parsed tree's.
        if name.startswith("__") or "raw" not in self.__dict__:
            raise AttributeError(name)
        # Parsed with LF line ends, so the parts' text reads as it was written
        # ("Hi\n"); the policy's CRLF still applies when the tree is serialized.
        parsed = BytesParser(policy=self.policy).parsebytes(self.raw.replace(b"\r\n", b"\n"))
        for key, value in vars(parsed).items():
            self.__dict__.setdefault(key, value)
        return object.__getattribute__(self, name)

    def __setitem__(self, name: str, value: Any) -> None:
        raise TypeError("a built message is final; build another (delivery.mime.build_message)")

    def __delitem__(self, name: str) -> None:
        raise TypeError("a built message is final; build another (delivery.mime.build_message)")

    def as_bytes(self, unixfrom: bool = False, policy: Any = None) -> bytes:
        if unixfrom or (policy is not None and policy.linesep != "\r\n"):
            return super().as_bytes(unixfrom, policy)
        return self.raw

    def prepend_header(self, field: bytes) -> None:
        """Put a complete header field (``Name: value``, folded with CRLF) first."""
        if not field.endswith(b"\r\n"):
            field += b"\r\n"
        self.raw = field + self.raw
        for key in [k for k in self.__dict__ if k not in self._OWN]:
            del self.__dict__[key]  # parsed from the old bytes: parse again when asked


def _clean(value: str, name: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(f"{name} contains a line break")
    return value


def is_writable_address(value: str) -> bool:
    """Whether ``build_message`` can write ``value`` as a mail address: the API
    checks senders with this one rule, so an address it takes never fails every
    email built from it later."""
    return _ADDRESS.fullmatch(value) is not None


def _address(value: str, name: str) -> str:
    _clean(value, name)
    if not is_writable_address(value):
        raise MessageBuildError(f"{name} {value!r} cannot be written as a mail address")
    return value


def message_id_for(key: str, domain: str) -> str:
    """The Message-ID of the outbox row ``key``: the same key always gives the same
    id, so a copy resent in doubt is recognisably the same message downstream.

    A digest, not the key itself: a variant name may hold non-ASCII, spaces, "@" or
    ">", and no variant leaves "::" in the key, none of which a dot-atom (RFC 5322
    3.6.4) may hold. The key travels readable in X-Eseq-Message."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]  # 128 bits
    return f"<eseq.{digest}@{domain}>"


def _key_header(key: str) -> str:
    """X-Eseq-Message: the key as it is when it is plain ASCII text (inbound
    matches providers' echo of it against the outbox row), else as RFC 2047
    encoded words, which the email package (and so the HTTP adapters' metadata)
    reads back exactly."""
    if key.isascii() and key.isprintable() and "=?" not in key and key[:1] != " ":
        return f"{_KEY_HEADER}: {key}\r\n"
    return _fold(_KEY_HEADER, _encoded_words(key, len(_KEY_HEADER) + 2))


def _fold(name: str, tokens: list[str]) -> str:
    """``Name: tokens`` with a line break before any token that would pass 78
    columns; every token but the first starts with whitespace, so unfolding
    restores the value exactly."""
    out = [name, ":", "" if tokens and tokens[0][:1] in (" ", "\t") else " "]
    column = len(name) + 2
    for i, token in enumerate(tokens):
        if i and column + len(token) > MAX_LINE:
            out.append("\r\n")
            column = 0
        out.append(token)
        column += len(token)
    out.append("\r\n")
    return "".join(out)


def _encoded_words(value: str, first_column: int) -> list[str]:
    """RFC 2047 B-encoded words, each within 75 characters and on a line of at
    most 76, never splitting a character across two words."""
    words: list[str] = []
    room = (_ENCODED_WORD_ROOM - first_column - _WORD_OVERHEAD) // 4 * 3
    chunk = bytearray()
    for char in value:
        encoded = char.encode("utf-8")
        if chunk and len(chunk) + len(encoded) > room:
            words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode()}?=")
            chunk = bytearray()
            room = (_ENCODED_WORD_ROOM - 1 - _WORD_OVERHEAD) // 4 * 3
        chunk += encoded
    if chunk or not words:
        words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode()}?=")
    return [words[0]] + [" " + w for w in words[1:]]


def _subject_header(subject: str) -> str:
    # What _fold would write for a short printable subject, without tokenising it.
    if (len(subject) <= MAX_LINE - len("Subject: ") and subject.isascii() and subject.isprintable()
            and "=?" not in subject and subject[:1] not in ("", " ") and subject[-1:] != " "):
        return f"Subject: {subject}\r\n"
    return _fold("Subject", _text_tokens(subject, len("Subject: ")))


def _text_tokens(value: str, first_column: int) -> list[str]:
    """Unstructured header text (Subject, a display name) as foldable tokens:
    plain words when it is printable ASCII, encoded words otherwise."""
    if _PLAIN_HEADER_TEXT.fullmatch(value) and "=?" not in value:
        tokens = _TOKEN.findall(value)
        # A word too long for one line can only be split as encoded words.
        if "".join(tokens) == value and all(len(t) < MAX_LINE for t in tokens):
            return tokens
    return _encoded_words(value, first_column)


@lru_cache(maxsize=64)  # one sender writes most of a batch
def _from_header(name: str | None, address: str) -> str:
    if not name:
        return f"From: {address}\r\n"
    tokens = _TOKEN.findall(name)
    if _BARE_NAME.fullmatch(name) and "=?" not in name and "".join(tokens) == name:
        pass
    elif _PLAIN_HEADER_TEXT.fullmatch(name) and "=?" not in name:
        tokens = ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    else:
        tokens = _encoded_words(name, len("From: "))
    return _fold("From", tokens + [f" <{address}>"])


def _body(content: str) -> tuple[str, str]:
    """(Content-Transfer-Encoding, the body with CRLF line ends and a final CRLF)."""
    if "\r" in content:
        content = content.replace("\r\n", "\n").replace("\r", "\n")
    if not content.endswith("\n"):
        content += "\n"
    if content.isascii() and "\x00" not in content and max(map(len, content.split("\n"))) <= MAX_LINE:
        return "7bit", content.replace("\n", "\r\n")
    qp = _quoted_printable(content)
    # Base64 when it is smaller. The character count bounds the UTF-8 size from
    # below, so encoding the body only to measure it is needed only near the line.
    size = len(content) + content.count("\n")  # with CRLF line ends
    if len(qp) > size * 4 // 3 * 78 // 76 + 4:
        size += len(content.encode("utf-8")) - len(content)
    if len(qp) > size * 4 // 3 * 78 // 76 + 4:
        data = content.replace("\n", "\r\n").encode("utf-8")
        return "base64", base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
    return "quoted-printable", qp


def _quoted_printable(content: str) -> str:
    """``b2a_qp`` of ``content`` (LF line ends, a final LF) as UTF-8 with CRLF ends,
    a line at a time: b2a_qp decides everything within a line (line ends are all
    CRLF, so its CRLF detection agrees), and most lines of a campaign's email are
    the same for every recipient, so each is encoded once per worker. b2a_qp over
    the whole body was 40% of building a message. Lines too long to be worth
    keeping (a minified body is one line) are encoded each time."""
    lines = content.split("\n")
    lines.pop()  # after the final LF
    known = _qp_lines.get
    return "".join([known(line) or _qp_line(line) for line in lines])


_QP_CACHED_LINE = 1000
_QP_CACHED_LINES = 4096
# A plain dict, emptied when full: a lookup costs half what lru_cache's does, and
# the lines of the campaigns being sent come back within a few messages.
_qp_lines: dict[str, str] = {}


def _qp_line(line: str) -> str:
    # b2a_qp keeps the CRLF line end it is given and breaks lines at 76 with "=".
    encoded = binascii.b2a_qp((line + "\r\n").encode("utf-8"), istext=True).decode("ascii")
    if len(line) <= _QP_CACHED_LINE:
        if len(_qp_lines) >= _QP_CACHED_LINES:
            _qp_lines.clear()
        _qp_lines[line] = encoded
    return encoded


def _part_head(subtype: str, encoding: str) -> str:
    return f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'


@lru_cache(maxsize=8)
def _date(now: datetime) -> str:
    """A send batch shares one ``now``: format it once (about a tenth of a build)."""
    return format_datetime(now)


def _boundary() -> str:
    """A fresh MIME boundary. It need not be secret, only absent from the bodies
    (checked by the caller), so it comes from ``random`` (reseeded in each forked
    child) rather than ``secrets``: os.urandom gives up the GIL for its system
    call, one more hand-over among the send worker's threads for every email."""
    return f"=_eseq_{random.getrandbits(96):024x}"


def build_message(envelope: Envelope, now: datetime) -> BuiltMessage:
    from_email = _address(envelope.from_email, "from_email")
    to_email = _address(envelope.to_email, "to")
    subject = _clean(envelope.subject, "subject")
    domain = from_email.rsplit("@", 1)[-1]
    message_id = message_id_for(_clean(envelope.message_key, "message key"), domain)
    targets = [f"<{envelope.unsubscribe_url}>"]
    if envelope.unsubscribe_mailto:
        targets.insert(0, f"<{envelope.unsubscribe_mailto}>")
    unsubscribe = _clean(", ".join(targets), "list-unsubscribe")
    parts = [("plain", *_body(envelope.text or " "))]
    if envelope.html:
        parts.append(("html", *_body(envelope.html)))
    boundary = _boundary()
    # Only a 7bit body could hold it: quoted-printable writes every "=" as "=3D"
    # or a soft line break, and base64 has no "_".
    while any(encoding == "7bit" and boundary in body for _, encoding, body in parts):
        boundary = _boundary()
    # One join and one encode: the bodies are most of the bytes, so each
    # intermediate string would copy them again.
    pieces = [
        _subject_header(subject),
        _from_header(_clean(envelope.from_name or "", "from_name"), from_email),
        f"To: {to_email}\r\n",
        f"Date: {_date(now)}\r\n",
        f"Message-ID: {message_id}\r\n",
        _fold("List-Unsubscribe", _TOKEN.findall(unsubscribe)),
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        _key_header(envelope.message_key),
        "MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n',
    ]
    for subtype, encoding, body in parts:
        pieces += (f"\r\n--{boundary}\r\n", _part_head(subtype, encoding), body)
    pieces.append(f"\r\n--{boundary}--\r\n")
    smtputf8 = not (from_email.isascii() and to_email.isascii())
    return BuiltMessage("".join(pieces).encode("utf-8" if smtputf8 else "ascii"), message_id, smtputf8,
                        envelope.transactional)
