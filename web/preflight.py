"""The pre-flight check as the API runs it: with the platform's DKIM domain and
spamd from the settings. Activation, resuming, replacing an active sequence and
replacing a template active sequences use all judge content by it."""
from __future__ import annotations

from flask import current_app
from marshmallow import Schema, fields
from sqlalchemy.orm import Session

from content.preflight import Spamd
from models import Sequence
from sequencing.preflight import Preflight, check_sequence


class OverrideSchema(Schema):
    override_preflight = fields.Boolean(load_default=False)


def check(session: Session, sequence: Sequence, template_id: int | None = None) -> Preflight:
    settings = current_app.config["ESEQ_SETTINGS"]
    return check_sequence(session, sequence, settings.dkim_domain, Spamd(settings.spamd_host, settings.spamd_port),
                          template_id=template_id)
