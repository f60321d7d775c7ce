"""``POST /webhooks/<provider>[/<account token>]``: provider events in.

Answers, chosen for how providers retry: 200 once the verified events are stored
(or were stored before: a replay changes nothing); 400 for a malformed or stale
request and 401 for missing or wrong credentials, storing nothing; 404 for a
provider we do not know; 413 for a body over MAX_BODY_BYTES, refused before it is
read; 503 when the database or the queue is down, so the provider retries. Never
403 or 406: Postmark and Mailgun stop retrying on those. Processing happens on the
analytics queue (tasks.inbound).

The account's URL carries an unguessable token (inbound.tokens) and uses the
secrets in that account's Provider rows; the bare URL uses ESEQ_<PROVIDER>_WEBHOOK_*
from the environment and is refused with 401 when they are not set.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from inbound import PROVIDERS, InboundRequest, VerificationError, ses
from inbound.store import store_events
from inbound.tokens import account_from_token
from models import Provider
from models.base import utcnow
from web.db import get_db

log = logging.getLogger(__name__)
bp = Blueprint("provider_webhooks", __name__)

# Tests replace these through app.config; production fetches from AWS.
CERT_FETCHER = "ESEQ_SNS_CERT_FETCHER"
SUBSCRIBE_VISITOR = "ESEQ_SNS_SUBSCRIBE_VISITOR"
# Far above any provider's post (a SendGrid batch, one Mailgun or Postmark event,
# one SNS message of at most 256 KB); the app's limit (64 MB, for imports) would let
# anyone make us read and parse 64 MB per request on URLs that must read the body
# before they can tell who sent it.
MAX_BODY_BYTES = 5 * 1024 * 1024


def _answer(status: int, message: str, **extra: Any) -> Response:
    response = jsonify({"status": status, "message": message, **extra})
    response.status_code = status
    return response


def _basic_auth() -> tuple[str, str] | None:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return None
    return auth.username or "", auth.password or ""


@bp.before_request
def _cap_body() -> Response | None:
    """413 before the body is read when its Content-Length is over the cap. A body
    without one (chunked) is read to one byte past the cap (Flask's per-request
    max_content_length), since werkzeug stops at the limit without an error:
    the view refuses what reached that byte."""
    request.max_content_length = MAX_BODY_BYTES + 1
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _too_large()
    return None


def _too_large() -> Response:
    return _answer(413, f"request body over {MAX_BODY_BYTES} bytes")


def _account_configs(account_id: int, kind: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = get_db().scalars(select(Provider.config).where(Provider.account_id == account_id, Provider.kind == kind))
    return [dict(c) for c in rows if isinstance(c, dict) and all(c.get(k) for k in keys)]


@bp.post("/webhooks/<provider>")
@bp.post("/webhooks/<provider>/<account_token>")
def receive(provider: str, account_token: str | None = None) -> Response:
    module = PROVIDERS.get(provider)
    if module is None:
        abort(404)
    settings = current_app.config["ESEQ_SETTINGS"]
    now = utcnow()
    try:
        body = request.get_data(cache=True)
    except RequestEntityTooLarge:
        return _too_large()
    if len(body) > MAX_BODY_BYTES:
        return _too_large()
    inbound = InboundRequest(body=body, headers=dict(request.headers), basic_auth=_basic_auth())
    account_id: int | None = None
    try:
        if account_token is None:
            configs = [settings.provider_webhooks[provider]] if provider in settings.provider_webhooks else []
            if not configs:
                return _answer(401, f"{provider} webhooks are not configured on this endpoint")
        else:
            account_id = account_from_token(settings.secret_key, account_token)
            if account_id is None:
                return _answer(401, "unknown webhook URL")
            configs = _account_configs(account_id, provider, module.SECRET_KEYS)
            if module.SECRET_KEYS and not configs:
                return _answer(401, f"no {provider} webhook {' and '.join(module.SECRET_KEYS)} configured for this account")
        nonce = module.verify(inbound, configs, now,
                              fetch_certificate=current_app.config.get(CERT_FETCHER, ses.fetch_certificate))
        if module is ses and (url := ses.subscribe_url(inbound.body)) is not None:
            current_app.config.get(SUBSCRIBE_VISITOR, ses.visit)(url)
            return _answer(200, "subscription confirmed")
        events = module.parse(inbound.body)
        session = get_db()
        pending = store_events(session, provider, account_id, events, nonce, now)
        session.commit()
    except VerificationError as exc:
        log.info("provider webhook refused", extra={"provider": provider, "reason": str(exc)})
        return _answer(exc.status, str(exc))
    except ses.CertificateUnavailableError:
        log.warning("SNS signing certificate unavailable", exc_info=True)
        return _answer(503, "could not fetch the signing certificate; retry later")
    except SQLAlchemyError:
        get_db().rollback()
        log.exception("provider webhook not stored")
        return _answer(503, "storage unavailable; retry later")
    except OSError:
        log.exception("SNS subscription confirmation failed")
        return _answer(503, "could not confirm the subscription; retry later")
    if pending:
        from tasks.batching import enqueue_ids
        from tasks.inbound import process_inbound

        try:
            enqueue_ids(process_inbound, pending)
        except Exception:  # noqa: BLE001 - stored but not queued: the provider's retry re-dispatches
            log.exception("provider webhook stored but not queued")
            return _answer(503, "queue unavailable; retry later")
    return _answer(200, "ok", received=len(events), queued=len(pending))
