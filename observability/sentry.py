"""Sentry for Flask and Celery, only when SENTRY_DSN is set."""
from __future__ import annotations

from settings import Settings


def init_sentry(settings: Settings, component: str) -> bool:
    """Initialise the SDK with the integrations for this process; False when off."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        integrations=[FlaskIntegration(), CeleryIntegration()],
        send_default_pii=False,  # subscriber addresses stay out of error reports
        traces_sample_rate=0.0,
        server_name=component,
    )
    return True
