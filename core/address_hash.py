"""The keyed hash an erased address is remembered by.

Erasing a subscriber must leave no copy of the address, yet the address must stay
suppressed if it comes back (an import, the API, a form). The suppression list
keeps HMAC-SHA256 of the address's normal form under a key derived from
SECRET_KEY: it matches the address when it is seen again, but the list cannot be
read back into addresses without the key (a plain hash of an address can be
reversed by hashing candidate addresses). Changing SECRET_KEY makes erased
entries match nothing; docs/personal-data.md says so.
"""
from __future__ import annotations

import hashlib
import hmac


def erasure_key(secret_key: str) -> bytes:
    """The hashing key, derived so it differs from every other use of SECRET_KEY."""
    return hmac.new(secret_key.encode(), b"eseq-erased-address", hashlib.sha256).digest()


def address_hash(key: bytes, address: str) -> str:
    """Hex HMAC of ``address``, which must already be in normal form (audience.fields.address_key)."""
    return hmac.new(key, address.encode("utf-8"), hashlib.sha256).hexdigest()
