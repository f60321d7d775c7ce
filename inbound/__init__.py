"""Provider webhooks in: verify, normalise, store, process.

One module per provider (sendgrid, mailgun, postmark, ses), each with ``verify``
(raises VerificationError, returns a one-time nonce when the scheme has one) and
``parse`` (a list of NormalizedEvent). ``inbound.store`` writes verified events to
``inbound_events`` and later turns them into our events, suppressions and ended
enrollments.

Where the keys come from: per account, ``/webhooks/<provider>/<account token>``
(inbound.tokens) with the secrets in the account's Provider rows of that kind
(``config``: sendgrid ``webhook_public_key``; mailgun ``webhook_signing_key``;
postmark ``webhook_username`` + ``webhook_password``; ses ``webhook_topic_arns``,
the only topics accepted). ``/webhooks/<provider>`` keeps working for a single-tenant
install from ESEQ_<PROVIDER>_WEBHOOK_* variables; its events match messages of any
account by provider message id (those ids are the provider's, unique).
"""
from __future__ import annotations

from types import ModuleType

from inbound import mailgun, postmark, sendgrid, ses
from inbound.events import InboundRequest, NormalizedEvent, VerificationError

PROVIDERS: dict[str, ModuleType] = {m.NAME: m for m in (sendgrid, mailgun, postmark, ses)}

__all__ = ["PROVIDERS", "InboundRequest", "NormalizedEvent", "VerificationError"]
