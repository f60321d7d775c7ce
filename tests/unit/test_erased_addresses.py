"""An erased address is kept only as a keyed hash, and searched for in every
spelling stored JSON may hold it in."""
from __future__ import annotations

import json

from audience.traces import spellings
from core.address_hash import address_hash, erasure_key


def test_the_hash_is_keyed_by_secret_key_and_does_not_contain_the_address():
    one, other = erasure_key("first-secret-key-0123456789"), erasure_key("other-secret-key-0123456789")
    assert address_hash(one, "ada@example.test") == address_hash(one, "ada@example.test")
    assert address_hash(one, "ada@example.test") != address_hash(other, "ada@example.test")
    assert address_hash(one, "ada@example.test") != address_hash(one, "bob@example.test")
    assert "ada" not in address_hash(one, "ada@example.test") and len(address_hash(one, "ada@example.test")) == 64
    assert erasure_key("first-secret-key-0123456789") != b"first-secret-key-0123456789"


def test_an_address_is_searched_for_as_unicode_punycode_and_json_escaped():
    forms = spellings("ada@bücher.test")
    assert {"ada@bücher.test", "ada@xn--bcher-kva.test", json.dumps("ada@bücher.test")[1:-1]} <= forms
    assert all(form == form.lower() for form in forms)
    assert spellings("ada@example.test") == {"ada@example.test"}
