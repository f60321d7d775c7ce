"""FLOWER_URL is the link operators follow from the console to Flower: a page shows
it, so a URL with a password in it is refused at start rather than shown."""
from __future__ import annotations

import pytest

from settings import ConfigError, load_settings


def test_flower_url_is_read_without_its_trailing_slash_and_is_optional() -> None:
    assert load_settings({"FLOWER_URL": "https://flower.example.com/ops/"}).flower_url == "https://flower.example.com/ops"
    assert load_settings({}).flower_url is None


@pytest.mark.parametrize("value", ["https://admin:s3cret@flower.example.com", "https://admin@flower.example.com",
                                   "javascript:alert(1)", "ftp://flower.example.com", "https:///no-host"])
def test_a_flower_url_with_credentials_no_host_or_another_scheme_is_refused(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"FLOWER_URL": value})
    assert "FLOWER_URL" in str(refused.value)
    assert "s3cret" not in str(refused.value)
