"""DKIM signing of the messages we build (rsa-sha256, relaxed/relaxed), so mailbox
providers can tie each email to a domain that vouches for it; Gmail and Yahoo
require it of bulk senders. The RSA signature comes from the ``cryptography``
package, which also checks every key when it is given; dkimpy only verifies
signatures, in the tests.

The platform's key comes from the environment (DKIM_SELECTOR, DKIM_DOMAIN,
DKIM_PRIVATE_KEY, checked once in settings) and reaches the sender through
``SenderIdentity``. An account may hold its own (``PUT /account/dkim``, checked by
core.dkim_keys.parse_account_key), which then signs its mail instead.

We sign with relaxed/relaxed canonicalization: the signature is computed over our
serialization of the message, and transports serialize it again (smtplib, SES raw
MIME) possibly re-folding headers; relaxed canonicalization makes that harmless.
"""
from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from core.dkim_keys import signing_key
from delivery.mime import BuiltMessage

# The headers a recipient relies on; List-Unsubscribe and its -Post are signed so
# nobody on the way can point the one-click unsubscribe elsewhere (RFC 8058 asks
# for both). Not Date or Message-ID: Amazon SES may replace them, which would break
# the signature, and its manual DKIM signing guide says not to sign them.
SIGNED_HEADERS = ("From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version",
                  "Content-Type")
_WSP = re.compile(rb"[ \t]+")
_LINE_END_WSP = re.compile(rb" (?=\r\n|$)")
_FIELD = re.compile(rb"^([!-9;-~]+):([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)\r\n", re.MULTILINE)


@dataclass(frozen=True)
class DkimKey:
    selector: str
    domain: str
    private_key: bytes = field(repr=False)  # PEM, PKCS#1 or PKCS#8 RSA


def account_key(account: Any) -> DkimKey | None:
    """An account's own key (its ``dkim_*`` columns, all three set), or None: the
    one rule for whether an account signs for itself."""
    if account is not None and account.dkim_selector and account.dkim_domain and account.dkim_private_key:
        return DkimKey(account.dkim_selector, account.dkim_domain, account.dkim_private_key.encode())
    return None


def _relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, value unfolded, runs of whitespace made one
    space, none at either end."""
    value = _WSP.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.strip().lower() + b":" + value


def _relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4: runs of whitespace made one space, none at line ends, no
    empty lines at the end."""
    body = _LINE_END_WSP.sub(b"", _WSP.sub(b" ", body)).rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


def signature_field(raw: bytes, key: DkimKey, names: list[str], now: float | None = None) -> bytes:
    """The DKIM-Signature field (rsa-sha256, relaxed/relaxed) for the message
    ``raw`` (CRLF line ends), covering the headers ``names``, folded at 78 columns
    and ending in CRLF."""
    head, _, body = raw.partition(b"\r\n\r\n")
    fields: dict[bytes, bytes] = {}
    for found in _FIELD.finditer(head + b"\r\n"):
        fields[found.group(1).lower()] = found.group(2)  # the last instance, as verifiers pick
    covered = [n.lower().encode() for n in names if n.lower().encode() in fields]
    body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest())
    # The h= list may break around its colons (RFC 6376 3.5 allows FWS there).
    header_list = [b"h=" + covered[0]] + [b":" + n for n in covered[1:]] if covered else [b"h="]
    header_list[-1] += b";"
    tags = [b" v=1;", b" a=rsa-sha256;", b" c=relaxed/relaxed;", b" d=" + key.domain.encode() + b";",
            b" s=" + key.selector.encode() + b";", b" t=%d;" % int(time.time() if now is None else now),
            b" " + header_list[0], *header_list[1:], b" bh=" + body_hash + b";", b" b="]
    unsigned, column = _fold_tags(b"DKIM-Signature:", tags)
    signed = b"".join(_relaxed_header(n, fields[n]) + b"\r\n" for n in covered)
    signed += _relaxed_header(b"dkim-signature", unsigned.split(b":", 1)[1])
    signature = base64.b64encode(signing_key(key.private_key).sign(signed, padding.PKCS1v15(), hashes.SHA256()))
    folded, _ = _fold_tags(unsigned, [signature[i:i + 8] for i in range(0, len(signature), 8)], column)
    return folded + b"\r\n"


def _fold_tags(out: bytes, pieces: list[bytes], column: int | None = None) -> tuple[bytes, int]:
    """Pieces that start with a space may be joined with it, those without one
    only directly; a line break (CRLF and a space) goes before any piece that
    would pass 78 columns."""
    column = len(out) if column is None else column
    for piece in pieces:
        if column + len(piece) > 78:
            piece = b"\r\n " + piece.lstrip(b" ")
            column = len(piece) - 2
        else:
            column += len(piece)
        out += piece
    return out, column


def sign_message(message: BuiltMessage, key: DkimKey) -> None:
    """Add a DKIM-Signature header, first, as RFC 6376 section 5.6 asks of signers.

    Signed here with the ``cryptography`` package (OpenSSL) rather than dkimpy's
    pure-Python RSA: about 1 ms a message instead of 12 (dkimpy still verifies in
    the tests)."""
    message.prepend_header(signature_field(message.raw, key, list(SIGNED_HEADERS)))
