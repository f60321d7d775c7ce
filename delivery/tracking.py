"""Signed tracking and unsubscribe links.

Every link carries a token signed with SECRET_KEY (itsdangerous, HMAC-SHA256)
that names the message and, for clicks, the exact destination URL. A tampered
token fails verification, and the click redirect only ever goes to the URL inside
the signature, so the endpoint cannot be used as an open redirect.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer

from content.compliance import append_html

_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


class TokenError(ValueError):
    """The token was not signed by us or is malformed."""


@dataclass(frozen=True)
class Tracker:
    secret_key: str
    base_url: str

    def sign(self, purpose: str, payload: Any) -> str:
        return str(_serializer(self.secret_key, purpose).dumps(payload))

    def verify(self, purpose: str, token: str) -> Any:
        try:
            return _serializer(self.secret_key, purpose).loads(token)
        except BadSignature:
            raise TokenError(f"invalid {purpose} token") from None

    def open_url(self, message_id: int) -> str:
        return f"{self.base_url}/t/o/{self.sign('open', message_id)}.gif"

    def click_url(self, message_id: int, url: str) -> str:
        return f"{self.base_url}/t/c/{self.sign('click', [message_id, url])}"

    def unsubscribe_url(self, message_id: int) -> str:
        return f"{self.base_url}/u/{self.sign('unsubscribe', message_id)}"

    def rewrite_html(self, html: str, message_id: int) -> str:
        """Route http(s) links through the click redirect and add the open pixel.

        mailto:, tel: and in-page anchors are left alone, as are links already
        pointing at our unsubscribe page (rewriting those would count an
        unsubscribe as a click).
        """
        unsubscribe_prefix = f"{self.base_url}/u/"

        def replace(match: re.Match[str]) -> str:
            url = match.group(3).strip()
            if not url.lower().startswith(("http://", "https://")) or url.startswith(unsubscribe_prefix):
                return match.group(0)
            tracked = self.click_url(message_id, url)
            return f"{match.group(1)}{match.group(2)}{tracked}{match.group(2)}"

        rewritten = _HREF.sub(replace, html)
        pixel = f'<img src="{self.open_url(message_id)}" width="1" height="1" alt="" style="display:none">'
        return append_html(rewritten, pixel)


class _LinkSerializer(URLSafeSerializer):
    """itsdangerous's URL-safe tokens, trying zlib only on payloads long enough to
    shrink: the attempt cost two thirds of signing a short link. ``loads`` reads
    compressed and plain tokens alike, so links already sent still verify."""

    def dump_payload(self, obj: Any) -> bytes:
        payload = Serializer.dump_payload(self, obj)
        if len(payload) < 160:
            return base64_encode(payload)
        return super().dump_payload(obj)


@lru_cache(maxsize=16)
def _serializer(secret_key: str, purpose: str) -> URLSafeSerializer:
    # Building a serializer costs more than signing with it (it probes its JSON
    # module), and every email signs four or five links: one per key and purpose.
    return _LinkSerializer(secret_key, salt=f"eseq-{purpose}")
