"""Column types that seal secrets at rest: providers' credentials and accounts' DKIM keys.

A database dump, a replica or a backup should not hand over the keys to an
account's email providers, or let someone sign mail as its domain. With
``ESEQ_SECRETS_KEYS`` set (Fernet keys, comma-separated), these columns are written
sealed with the first key and read with any of them, so keys rotate: put a new key
first, run ``python -m scripts.reseal_secrets``, then drop the old one. The same
script seals what was stored before a key was set. Without keys, values are stored
as given (the embedded ``make run`` default), and a sealed value cannot be read:
the error names the setting.

Fernet (AES-128-CBC with HMAC-SHA256) comes from ``cryptography``, already a
dependency for DKIM. The keys are process-wide, set once at start
(``use_keys``), as the engine is (models.db).
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import JSON, Text, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB

SETTING = "ESEQ_SECRETS_KEYS"  # parsed and checked by settings
_SEALED_KEY = "__sealed__"  # a JSON column's sealed form: {"__sealed__": token}
_SEALED_PREFIX = "sealed:"  # a text column's: "sealed:" + token

_keys: MultiFernet | None = None


class SecretsUnavailable(RuntimeError):
    """A sealed value was read without the key that sealed it."""


def use_keys(keys: tuple[str, ...]) -> None:
    """Seal with ``keys[0]`` and open with any of them from now on; none: store as given."""
    global _keys
    _keys = MultiFernet([Fernet(k) for k in keys]) if keys else None
    _open.cache_clear()


def sealing() -> bool:
    return _keys is not None


def seal(plain: str) -> str:
    assert _keys is not None
    return _keys.encrypt(plain.encode("utf-8")).decode("ascii")


@lru_cache(maxsize=1024)
def _open(token: str) -> str:
    # Cached: every send batch reads its providers again, and a token opens to the
    # same value until the keys change (use_keys empties the cache).
    if _keys is None:
        raise SecretsUnavailable(f"a stored secret is sealed and {SETTING} is not set")
    try:
        return _keys.decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SecretsUnavailable(f"a stored secret was sealed with a key not in {SETTING}") from None


class SealedJSON(TypeDecorator[Any]):
    """A JSON object stored sealed (``{"__sealed__": token}``) when keys are set."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None or _keys is None:
            return value
        return {_SEALED_KEY: seal(json.dumps(value, sort_keys=True))}

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1 and _SEALED_KEY in value:
            return json.loads(_open(value[_SEALED_KEY]))
        return value


class SealedText(TypeDecorator[str]):
    """Text stored sealed (``sealed:`` + token) when keys are set."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None or _keys is None:
            return value
        return _SEALED_PREFIX + seal(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is not None and value.startswith(_SEALED_PREFIX):
            return _open(value[len(_SEALED_PREFIX):])
        return value
