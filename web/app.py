"""The Flask application factory."""
from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from models import db
from observability.logs import configure_logging
from observability.sentry import init_sentry
from settings import Settings, get_settings
from web import db as web_db
from web import errors
from web.auth import API_KEY, BEARER
from web.extensions import api, jwt, limiter
from web.limits import init_body_limits, rate_limit_config
from web.json_input import init_json_input
from web.security import init_input_guard, init_security_headers

API_BLUEPRINTS = ("web.accounts.routes", "web.email_templates.routes", "web.sequences.routes", "web.sequences.enrollments",
                  "web.sequences.analytics", "web.sequences.holdout", "web.analytics.routes",
                  "web.events.routes", "web.messages.routes",
                  "web.subscribers.routes", "web.jobs.routes", "web.providers.routes", "web.suppressions.routes",
                  "web.warming.routes", "web.ml.routes", "web.ai.routes",
                  "web.segments.routes", "web.topics.routes",
                  "web.broadcasts.routes", "web.event_subscriptions.routes")


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or get_settings()
    configure_logging()
    init_sentry(settings, component="web")
    db.configure(settings.database_url, settings.secrets_keys, pool_size=settings.db_pool_size,
                 max_overflow=settings.db_max_overflow)

    app = Flask(__name__)
    app.config.update(
        ESEQ_SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        JWT_SECRET_KEY=settings.secret_key,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=settings.jwt_expires_seconds),
        API_TITLE="Email sequences",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        **rate_limit_config(settings),
    )

    if settings.proxy_hops:
        # Only as many X-Forwarded-* entries as there are proxies of ours: the client
        # IP (which the rate limiter keys on) cannot be chosen by the client.
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    web_db.init_app(app)
    errors.init_app(app)
    jwt.init_app(app)
    limiter.init_app(app)
    api.init_app(app)
    api.spec.components.security_scheme("bearerAuth", BEARER)
    api.spec.components.security_scheme("apiKey", API_KEY)
    # The public subscribe form may be posted as JSON from any site (no credentials ride along).
    CORS(app, resources={r"/api/*": {"origins": list(settings.cors_origins)},
                         r"/subscribe/*": {"origins": "*", "methods": ["GET", "POST"]}},
         expose_headers=["X-Pagination"])
    init_security_headers(app)
    init_body_limits(app)
    init_json_input(app)  # before the NUL guard and the blueprints: it parses first and bounds <int:...>
    init_input_guard(app)

    import importlib

    for module_name in API_BLUEPRINTS:
        api.register_blueprint(importlib.import_module(module_name).blp)

    from web.health import bp as health_bp

    limiter.exempt(health_bp)
    app.register_blueprint(health_bp)

    from web.metrics import init_metrics

    init_metrics(app, settings)

    from web.tracking import bp as tracking_bp

    # Mail clients and link scanners fetch these from shared IPs; limiting them would
    # lose opens and clicks, and their tokens already make them unforgeable.
    limiter.exempt(tracking_bp)
    app.register_blueprint(tracking_bp)

    from web.subscribe import bp as subscribe_bp

    app.register_blueprint(subscribe_bp)  # its own limits per IP and per address (web.subscribe)

    from web.provider_webhooks import bp as provider_webhooks_bp

    limiter.exempt(provider_webhooks_bp)  # providers post bursts from shared IPs; each request is verified
    app.register_blueprint(provider_webhooks_bp)
    from web.console import init_console

    init_console(app, settings)
    if settings.dev_smtp_port:  # `make run`'s development mail catcher, on its bare default only
        app.register_blueprint(importlib.import_module("web.dev_mail").bp)
    return app
