"""DKIM private keys: reading, checking and loading them, and the DNS names they
are published under. Settings checks the operator's key (DKIM_PRIVATE_KEY) with
these when it starts, accounts.dkim an account's when it is set, and
delivery.dkim signs with the key ``signing_key`` loads: one check, with the
loader that signs, so a key accepted here does not fail every send later.
"""
from __future__ import annotations

import base64
import re
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

MIN_KEY_BITS = 1024  # what verifiers accept (RFC 8301); 2048 is the usual choice
# RFC 8301 asks verifiers to handle keys up to 4096 bits; larger ones may not verify,
# and each doubling makes every signature about eight times the CPU.
MAX_ACCOUNT_KEY_BITS = 4096
_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$")


class DkimKeyError(ValueError):
    """The private key cannot be used for signing; the message says why."""


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
    _check_key(pem)
    return pem


def parse_account_key(value: str) -> str:
    """The PEM of an account's key as given through the API, or DkimKeyError.

    Only the PEM itself: unlike the operator's variable, a path is never read."""
    text = value.strip().replace("\r\n", "\n")
    if not text.startswith("-----BEGIN"):
        raise DkimKeyError("is not a private key in PEM form")
    pem = text + "\n"
    _check_key(pem.encode(), max_bits=MAX_ACCOUNT_KEY_BITS)
    return pem


def _check_key(pem: bytes, max_bits: int | None = None) -> None:
    """Refuse (DkimKeyError) a key that verifiers would reject or that ``signing_key``
    cannot load. The operator's key and an account's go through this one check,
    with the loader that signs, so a key accepted here does not fail every send
    later; ``cryptography``'s errors on any input are its own few types."""
    try:
        # Unvalidated first, to name a key too short by its size even when its
        # numbers do not agree either; signing_key below validates it.
        key = load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise DkimKeyError("is not an unencrypted RSA private key in PEM form") from None
    if not isinstance(key, RSAPrivateKey):
        raise DkimKeyError("is not an RSA private key")
    if key.key_size < MIN_KEY_BITS:
        raise DkimKeyError(f"is a {key.key_size}-bit key; verifiers reject keys under {MIN_KEY_BITS} bits")
    if max_bits is not None and key.key_size > max_bits:
        raise DkimKeyError(f"is a {key.key_size}-bit key; use at most {max_bits} bits")
    try:
        signing_key(pem)
    except ValueError:
        raise DkimKeyError("is not a valid RSA private key (its numbers do not agree)") from None


def public_key_record(private_key: bytes) -> str:
    """The TXT record to publish at ``<selector>._domainkey.<domain>``."""
    public = signing_key(private_key).public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


# Loading a key costs milliseconds (cryptography checks it); one per account that
# sends with its own, and the platform's, stay loaded.
@lru_cache(maxsize=256)
def signing_key(private_key: bytes) -> RSAPrivateKey:
    key = load_pem_private_key(private_key, password=None)
    if not isinstance(key, RSAPrivateKey):
        raise DkimKeyError("is not an RSA private key")
    return key
