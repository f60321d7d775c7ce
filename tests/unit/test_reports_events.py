"""delivery.sender.reports_events: a provider counts as reporting back (so a
message in doubt waits for its events) only when its webhook can be verified,
with every key the inbound parser needs."""
from __future__ import annotations

import pytest

from delivery.routing import Route
from delivery.sender import reports_events


@pytest.mark.parametrize("kind, config, platform, reports", [
    ("postmark", {"webhook_username": "u"}, {}, False),  # the password is needed to verify too
    ("postmark", {"webhook_username": "u", "webhook_password": "p"}, {}, True),
    ("postmark", {}, {"postmark": {"webhook_username": "u", "webhook_password": "p"}}, True),  # the bare URL
    ("sendgrid", {"webhook_public_key": "MFkw..."}, {}, True),
    ("ses", {}, {}, False),  # no topic ARNs: the SES URL refuses every notification
    ("smtp", {"host": "relay.example"}, {}, False),  # nothing reports back over SMTP
])
def test_a_provider_reports_back_only_when_its_webhook_can_be_verified(kind, config, platform, reports):
    assert reports_events(Route(provider_id=1, name=kind, kind=kind, config=config), platform) is reports
