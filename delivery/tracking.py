"""Signed tracking and unsubscribe links.

Every link carries a token signed with SECRET_KEY (itsdangerous's URL-safe format:
HMAC-SHA1 under a key derived from the secret and a per-purpose salt) that names
the account and the message and, for clicks, the exact destination URL. A
tampered token fails verification, and the click redirect only ever goes to the
URL inside the signature, so the endpoint cannot be used as an open redirect.

The account is named as well as the message so that a link acts only on the
message it was made for, even where an id could have been handed out again
(SQLite before migration 0013 reused the id of a deleted newest row). Links
signed before that name the message alone: they verify as a ``Link`` without an
account, and ``delivery.links`` decides where those may still act.

Signing is on the send path (four or five links an email) and goes through
``_LinkSigner``, which writes the same bytes as itsdangerous for about a sixth of
the CPU; verifying is on the web path and stays with itsdangerous, so tokens
either one made keep verifying.
"""
from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
from html import unescape as html_unescape
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer

from content.compliance import append_html
from content.html_input import followable

# An <a> tag's href: preceded by whitespace, so a data-href="..." before it is not
# taken for the link.
_HREF = re.compile(r"""(<a\b[^>]*?\shref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
class TokenError(ValueError):
    """The token was not signed by us or is malformed."""


@dataclass(frozen=True)
class Link:
    """What a verified link acts on. ``account_id`` is None for a link signed before
    links named their account (a message id alone)."""

    message_id: int
    account_id: int | None


# The local part of an unsubscribe mailbox address: the account's and the
# message's ids in hex and a 64-bit HMAC of both, lower case (mail systems may
# fold the case of a local part), at most 54 characters (RFC 5321 allows 64).
# Addresses made before they named the account have no account part.
_MAILBOX = re.compile(r"unsub-(?:([0-9a-f]{1,15})-)?([0-9a-f]{1,15})-([0-9a-f]{16})")


def _is_id(value: Any) -> bool:
    return type(value) is int and value > 0


def _link(payload: Any) -> Link:
    """An open or unsubscribe token's payload: ``[account, message]``, or a message
    id alone from before links named the account."""
    if type(payload) is list and len(payload) == 2 and _is_id(payload[0]) and _is_id(payload[1]):
        return Link(payload[1], payload[0])
    if _is_id(payload):
        return Link(payload, None)
    raise TokenError("unexpected link payload")


@dataclass(frozen=True)
class Tracker:
    secret_key: str
    base_url: str
    # Where List-Unsubscribe's mailto goes (ESEQ_UNSUBSCRIBE_DOMAIN): a per-message
    # address the platform's unsubscribe mailbox receives; None: the sender's own.
    mailbox_domain: str | None = None

    def sign(self, purpose: str, payload: Any) -> str:
        return _signer(self.secret_key, purpose).sign(payload)

    def verify(self, purpose: str, token: str) -> Any:
        try:
            return _serializer(self.secret_key, purpose).loads(token)
        except BadSignature:
            raise TokenError(f"invalid {purpose} token") from None

    def open_url(self, account_id: int, message_id: int) -> str:
        return f"{self.base_url}/t/o/{self.sign('open', [account_id, message_id])}.gif"

    def click_url(self, account_id: int, message_id: int, url: str) -> str:
        return f"{self.base_url}/t/c/{self.sign('click', [account_id, message_id, url])}"

    def unsubscribe_url(self, account_id: int, message_id: int) -> str:
        return f"{self.base_url}/u/{self.sign('unsubscribe', [account_id, message_id])}"

    def open_link(self, token: str) -> Link:
        return _link(self.verify("open", token))

    def unsubscribe_link(self, token: str) -> Link:
        return _link(self.verify("unsubscribe", token))

    def click_link(self, token: str) -> tuple[Link, str]:
        """The link and its destination: ``[account, message, url]``, or
        ``[message, url]`` from before links named the account."""
        payload = self.verify("click", token)
        if type(payload) is list and payload and type(payload[-1]) is str:
            *ids, url = payload
            if len(ids) == 2 and _is_id(ids[0]) and _is_id(ids[1]):
                return Link(ids[1], ids[0]), url
            if len(ids) == 1 and _is_id(ids[0]):
                return Link(ids[0], None), url
        raise TokenError("unexpected click payload")

    def unsubscribe_mailto(self, account_id: int, message_id: int, sender: str) -> str:
        """List-Unsubscribe's mailto: this message's own mailbox address when the
        platform receives unsubscribe mail, else the sender's address (where a
        person reads it)."""
        if self.mailbox_domain is None:
            return f"mailto:{sender}?subject=unsubscribe"
        mac = self._mailbox_mac(f"{account_id}:{message_id}")
        return f"mailto:unsub-{account_id:x}-{message_id:x}-{mac}@{self.mailbox_domain}?subject=unsubscribe"

    def mailbox_message(self, address: str) -> Link | None:
        """The message an unsubscribe mailbox address was made for; None for any
        address we did not make (another domain, a forged or altered one)."""
        local, _, domain = address.strip().strip("<>").rpartition("@")
        if self.mailbox_domain is None or domain.lower() != self.mailbox_domain.lower():
            return None
        match = _MAILBOX.fullmatch(local.lower())
        if match is None:
            return None
        message_id = int(match[2], 16)
        account_id = int(match[1], 16) if match[1] is not None else None
        signed = str(message_id) if account_id is None else f"{account_id}:{message_id}"
        if not hmac.compare_digest(match[3], self._mailbox_mac(signed)) or not message_id:
            return None
        return Link(message_id, account_id)

    def _mailbox_mac(self, signed: str) -> str:
        return hmac.new(_mailbox_key(self.secret_key), signed.encode(), hashlib.sha256).hexdigest()[:16]

    def rewrite_html(self, html: str, account_id: int, message_id: int) -> str:
        """Route http(s) links through the click redirect and add the open pixel.

        mailto:, tel: and in-page anchors are left alone, as are links already
        pointing at our unsubscribe page (rewriting those would count an
        unsubscribe as a click).
        """
        unsubscribe_prefix = f"{self.base_url}/u/"
        click_prefix = f"{self.base_url}/t/c/"
        clicks = _signer(self.secret_key, "click")  # click_url's, fetched once for every link

        def replace(match: re.Match[str]) -> str:
            lead, quote, url = match.group(1, 2, 3)
            # The URL the reader's browser would follow: entities decoded (an editor
            # writes "?a=1&amp;b=2"), tabs and line breaks dropped. Signed as
            # written, the redirect lost "b" or, with a line break, failed.
            url = _followed(url)
            if not url.lower().startswith(("http://", "https://")) or url.startswith(unsubscribe_prefix):
                return match.group(0)
            return f"{lead}{quote}{click_prefix}{clicks.sign([account_id, message_id, url])}{quote}"

        rewritten = _HREF.sub(replace, html)
        pixel = f'<img src="{self.open_url(account_id, message_id)}" width="1" height="1" alt="" style="display:none">'
        return append_html(rewritten, pixel)


@lru_cache(maxsize=1024)
def _followed(href: str) -> str:
    """The URL a reader's browser follows for an href as written. A step's links
    are the same in every email of it: worked out once per worker, not once per
    link of each email."""
    return followable(html_unescape(href)).strip()


class _LinkSerializer(URLSafeSerializer):
    """itsdangerous's URL-safe tokens, trying zlib only on payloads long enough to
    shrink: the attempt cost two thirds of signing a short link. ``loads`` reads
    compressed and plain tokens alike, so links already sent still verify."""

    def dump_payload(self, obj: Any) -> bytes:
        payload = Serializer.dump_payload(self, obj)
        if len(payload) < 160:
            return base64_encode(payload)
        return super().dump_payload(obj)


_encode_json_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses


class _LinkSigner:
    """``_LinkSerializer.dumps``, byte for byte, without its per-call overhead.

    itsdangerous derives the signing key (SHA-1 of salt, "signer" and secret) on
    every call, builds a JSON encoder and an HMAC object, and base64-encodes
    through two layers of helpers: about 34 µs a link where the HMAC itself is a
    few. Here the key is derived and the HMAC keyed once per secret and purpose (a
    sign copies the keyed HMAC); the payload shapes links use (``[account id,
    message id]``, ``[account id, message id, url]``, and the message id alone or
    ``[message id, url]`` of older links) are written as JSON directly. Payloads of
    160 bytes or more, which ``_LinkSerializer`` may compress, go to it unchanged.
    """

    def __init__(self, secret_key: str, purpose: str) -> None:
        self._serializer = _serializer(secret_key, purpose)
        # itsdangerous's defaults: key_derivation "django-concat", digest SHA-1.
        salt = f"eseq-{purpose}".encode("utf-8")
        key = hashlib.sha1(salt + b"signer" + secret_key.encode("utf-8")).digest()
        self._mac = hmac.new(key, digestmod=hashlib.sha1)

    def sign(self, payload: Any) -> str:
        size = len(payload) if type(payload) is list else 0
        if size == 3 and type(payload[0]) is int and type(payload[1]) is int and type(payload[2]) is str:  # a click
            data = f"[{payload[0]},{payload[1]},{_encode_json_string(payload[2])}]".encode("utf-8")
        elif size == 2 and type(payload[0]) is int and type(payload[1]) is int:  # an open or unsubscribe link
            data = f"[{payload[0]},{payload[1]}]".encode("ascii")
        elif size == 2 and type(payload[0]) is int and type(payload[1]) is str:  # an older click
            data = f"[{payload[0]},{_encode_json_string(payload[1])}]".encode("utf-8")
        elif type(payload) is int:
            data = str(payload).encode("ascii")
        else:
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(data) >= 160:
            return str(self._serializer.dumps(payload))
        value = binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")
        mac = self._mac.copy()
        mac.update(value)
        signature = binascii.b2a_base64(mac.digest(), newline=False).translate(_URLSAFE).rstrip(b"=")
        return (value + b"." + signature).decode("ascii")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


@lru_cache(maxsize=16)
def _signer(secret_key: str, purpose: str) -> _LinkSigner:
    return _LinkSigner(secret_key, purpose)


@lru_cache(maxsize=16)
def _mailbox_key(secret_key: str) -> bytes:
    """The mailbox addresses' HMAC key, derived once per secret (every email's
    mailto is signed with it), apart from the links' keys."""
    return hashlib.sha256(f"unsubscribe-mailbox:{secret_key}".encode()).digest()


@lru_cache(maxsize=16)
def _serializer(secret_key: str, purpose: str) -> URLSafeSerializer:
    # Building a serializer costs more than signing with it (it probes its JSON
    # module), and every email signs four or five links: one per key and purpose.
    return _LinkSerializer(secret_key, salt=f"eseq-{purpose}")
