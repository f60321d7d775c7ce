"""DKIM signing of the messages we build (dkimpy), so mailbox providers can tie each
email to a domain that vouches for it; Gmail and Yahoo require it of bulk senders.

The key comes from the environment (DKIM_SELECTOR, DKIM_DOMAIN, DKIM_PRIVATE_KEY,
checked once in settings) and reaches the sender through ``SenderIdentity``.
Accounts have no key of their own yet: that needs columns (or a table) for them.

We sign with relaxed/relaxed canonicalization: the signature is computed over our
serialization of the message, and transports serialize it again (smtplib, SES raw
MIME) possibly re-folding headers; relaxed canonicalization makes that harmless.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

# The headers a recipient relies on; List-Unsubscribe is signed so nobody on the way
# can point the one-click unsubscribe elsewhere.
SIGNED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post",
                  "MIME-Version", "Content-Type")
MIN_KEY_BITS = 1024  # what verifiers accept (RFC 8301); 2048 is the usual choice
_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$")


class DkimKeyError(ValueError):
    """The private key cannot be used for signing; the message says why."""


@dataclass(frozen=True)
class DkimKey:
    selector: str
    domain: str
    private_key: bytes = field(repr=False)  # PEM, PKCS#1 or PKCS#8 RSA


def is_dns_name(value: str) -> bool:
    return bool(_NAME.match(value))


def read_private_key(value: str) -> bytes:
    """The PEM for ``value``: the PEM itself (literal ``\\n`` accepted, as some
    platforms cannot hold multi-line variables) or a path to a PEM file."""
    text = value.strip()
    if "-----BEGIN" not in text:
        try:
            text = Path(text).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise DkimKeyError(f"is neither a PEM private key nor a readable file ({type(exc).__name__})") from None
    pem = text.replace("\\n", "\n").replace("\r\n", "\n").strip().encode()
    try:
        key = parse_pem_private_key(pem)
    except (UnparsableKeyError, ValueError, IndexError) as exc:
        raise DkimKeyError(f"is not an RSA private key in PEM form: {str(exc).splitlines()[0]}") from None
    bits = int(key["modulus"]).bit_length()
    if bits < MIN_KEY_BITS:
        raise DkimKeyError(f"is a {bits}-bit key; verifiers reject keys under {MIN_KEY_BITS} bits")
    return pem


def sign_message(message: EmailMessage, key: DkimKey) -> None:
    """Add a DKIM-Signature header, first, as RFC 6376 section 5.6 asks of signers."""
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    present = [name.encode() for name in SIGNED_HEADERS if name in message]
    header = dkim.sign(raw, key.selector.encode(), key.domain.encode(), key.private_key,
                       canonicalize=(b"relaxed", b"relaxed"), include_headers=present)
    name, _, value = header.decode("ascii").partition(":")
    # Unfolded: the email package refuses line breaks in a value and folds on output.
    value = re.sub(r"\r?\n", "", value).strip()
    headers = message.items()
    for existing in {n for n, _ in headers}:
        del message[existing]
    message[name] = value
    for existing, stored in headers:
        message[existing] = stored
