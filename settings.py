"""Typed settings, parsed once from the environment.

Every process (web, workers, beat, scripts) reads configuration through
``get_settings()``. A bad value fails at start with the variable's name, so an
operator sees ``ESEQ_TICK_SECONDS must be a positive number`` instead of a
traceback from deep inside a worker hours later.
"""
from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("ESEQ_VAR_DIR", ROOT / "var"))


class ConfigError(ValueError):
    """A configuration variable holds a value the platform cannot use."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {raw!r}")
    return value


def _fernet_keys(env: dict[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated Fernet keys (models.sealed), each checked now."""
    from cryptography.fernet import Fernet

    keys = tuple(k.strip() for k in env.get(name, "").split(",") if k.strip())
    for position, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(f"{name}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes; make one "
                              "with: python -c 'from cryptography.fernet import Fernet; "
                              "print(Fernet.generate_key().decode())')") from None
    return keys


# Bearer tokens compared against what a client sends: long enough that guessing one
# over the network is hopeless (``openssl rand -hex 16`` makes 32 characters).
TOKEN_MIN_LENGTH = 32


def _token(env: dict[str, str], name: str) -> str | None:
    value = env.get(name) or None
    if value is not None and len(value) < TOKEN_MIN_LENGTH:
        raise ConfigError(f"{name} must be at least {TOKEN_MIN_LENGTH} characters long, got {len(value)} "
                          "(make one with: openssl rand -hex 16)")
    return value


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _url(env: dict[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    parsed = urlparse(raw)
    scheme = parsed.scheme.split("+")[0]
    if scheme not in schemes:
        raise ConfigError(f"{name} must be a URL starting with one of {', '.join(schemes)}; got scheme {parsed.scheme!r}")
    return raw


def _link_url(env: dict[str, str], name: str) -> str | None:
    """An http(s) URL shown to operators as a link, so it may not carry a user or password."""
    raw = _url(env, name, ("http", "https"))
    if raw is None:
        return None
    parsed = urlparse(raw)
    if not parsed.netloc:
        raise ConfigError(f"{name} must be an absolute http(s) URL with a host")
    if parsed.username is not None or parsed.password is not None:
        raise ConfigError(f"{name} must not carry credentials: the link is shown in pages "
                          "(Flower asks for FLOWER_BASIC_AUTH itself)")
    return raw.rstrip("/")


def _dkim(env: dict[str, str]) -> dict[str, str | bytes]:
    """DKIM_SELECTOR, DKIM_DOMAIN and DKIM_PRIVATE_KEY (PEM or a path): all or none."""
    from core.dkim_keys import DkimKeyError, is_dns_name, read_private_key

    names = ("DKIM_SELECTOR", "DKIM_DOMAIN", "DKIM_PRIVATE_KEY")
    values = {name: (env.get(name) or "").strip() for name in names}
    if not any(values.values()):
        return {}
    missing = [name for name in names if not values[name]]
    if missing:
        raise ConfigError(f"{', '.join(missing)} must be set too: DKIM needs {', '.join(names)}")
    for name in names[:2]:
        if not is_dns_name(values[name]):
            raise ConfigError(f"{name} must be a DNS name, got {values[name]!r}")
    try:
        key = read_private_key(values["DKIM_PRIVATE_KEY"])
    except DkimKeyError as exc:
        raise ConfigError(f"DKIM_PRIVATE_KEY {exc}") from None
    return {"dkim_selector": values["DKIM_SELECTOR"], "dkim_domain": values["DKIM_DOMAIN"].lower(), "dkim_private_key": key}


@dataclass(frozen=True)
class Settings:
    """What the platform needs to know about its environment."""

    database_url: str
    redis_url: str | None
    broker_url: str
    result_backend: str
    secret_key: str = field(repr=False)
    secret_key_generated: bool
    admin_token: str | None = field(repr=False)
    public_base_url: str
    tick_seconds: float
    smtp_host: str | None
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None = field(repr=False)
    smtp_use_tls: bool
    from_email: str | None
    from_name: str | None
    openai_api_key: str | None = field(repr=False)
    openai_base_url: str | None
    openai_model: str
    sentry_dsn: str | None = field(repr=False)
    port: int
    cors_origins: tuple[str, ...]
    rate_limit: str
    jwt_expires_seconds: int
    broker_prefix: str
    webhook_allow_private: bool
    lease_seconds: int
    # How long a message a worker died sending waits for provider events to prove
    # it was taken before it is sent again (delivery.sender.hold_in_doubt).
    reconcile_seconds: int
    # How long a message is retried after its first transient failure (every
    # provider down, a relay refusing) before it is failed as expired.
    retry_hours: int
    # Whether a send thread sends its next email while its last one's record
    # commits (delivery.batch.RECORDS_IN_FLIGHT): faster, and a worker killed
    # mid-batch may leave two of its emails per thread sent and unrecorded, not one.
    send_while_recording: bool
    # How long a worker process may go without renewing its heartbeat before the
    # tick releases its claims to the in-doubt handling (core.liveness); it beats
    # every fifth of this.
    worker_dead_after_seconds: float = 15.0
    # Verification secrets for the environment-wide /webhooks/<provider> endpoints,
    # by provider, keyed like a Provider row's config (inbound/__init__.py).
    provider_webhooks: dict[str, dict[str, str]] = field(default_factory=dict, repr=False, compare=False, hash=False)
    # Where the pre-flight check's spamc finds spamd (content.preflight.Spamd); no
    # host: spamc's own configuration.
    spamd_host: str | None = None
    spamd_port: int | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: bytes | None = field(default=None, repr=False)  # PEM
    # The platform's unsubscribe mailbox (inbound/unsubscribe_mailbox.py): the domain
    # whose MX points at it, and where it listens. No domain: mailto goes to the sender.
    unsubscribe_domain: str | None = None
    unsubscribe_smtp_host: str = "0.0.0.0"
    unsubscribe_smtp_port: int = 2525
    # Keys sealing providers' credentials and accounts' DKIM keys at rest
    # (models.sealed): the first seals, any opens. None: stored as given.
    secrets_keys: tuple[str, ...] = field(default=(), repr=False)
    # `make run`'s development mail catcher (delivery/dev_mailbox.py): where it listens
    # and keeps what it catches. Only on the embedded default with no SMTP_HOST.
    dev_smtp_port: int | None = None
    dev_mail_dir: Path | None = None
    # The bearer token /metrics asks for. None: /metrics answers only in the embedded
    # mode (one machine, `make run`), and refuses elsewhere until it is set.
    metrics_token: str | None = field(default=None, repr=False)
    # Where operators reach Flower (the console links to it). Never with credentials
    # in it: the link is shown in pages; Flower asks for FLOWER_BASIC_AUTH itself.
    flower_url: str | None = None
    # Reverse proxies in front of the web process whose X-Forwarded-For/-Proto/-Host
    # are believed (werkzeug's ProxyFix). 0: none, the TCP peer is the client.
    proxy_hops: int = 0
    # AI drafting (ai/): tokens an account may use per UTC day (0: no limit), the price
    # per 1,000 prompt and completion tokens (None: no cost recorded), and the seconds
    # one call to the model server may take, and how many drafts an ai worker starts a
    # minute (0: no limit; celeryconfig's rate limit on ai.draft).
    ai_daily_tokens: int = 0
    ai_price_prompt_per_1k: float | None = None
    ai_price_completion_per_1k: float | None = None
    ai_timeout_seconds: float = 60.0
    ai_drafts_per_minute: int = 60
    # How long a double opt-in confirmation link works, and after which beat removes
    # the pending subscribers who did not click it (audience.opt_in).
    opt_in_expiry_hours: int = 72
    # Each process's SQLAlchemy pool on PostgreSQL: connections kept, and the extra
    # ones opened under load (docs/operations.md sizes them against PgBouncer and
    # PostgreSQL's max_connections).
    db_pool_size: int = 10
    db_max_overflow: int = 20

    @property
    def ai_configured(self) -> bool:
        """A model server to draft with: OPENAI_BASE_URL (a self-hosted server such as
        Ollama needs no key) or OPENAI_API_KEY (OpenAI itself). Neither: blueprints."""
        return bool(self.openai_base_url or self.openai_api_key)

    @property
    def embedded(self) -> bool:
        """True when running without PostgreSQL/Redis (the `make run` default)."""
        return self.redis_url is None and self.broker_url.startswith("sqla+")


def is_rabbitmq(broker_url: str) -> bool:
    """Whether ``broker_url`` names RabbitMQ (``amqp://``, ``amqps://``, ``pyamqp://``),
    whose queues, acks and redelivery differ from Redis's and the embedded broker's."""
    return broker_url.startswith(("amqp", "pyamqp"))


def _dns_name(env: dict[str, str], name: str) -> str | None:
    from core.dkim_keys import is_dns_name

    value = (env.get(name) or "").strip().lower()
    if not value:
        return None
    if not is_dns_name(value):
        raise ConfigError(f"{name} must be a DNS name, got {value!r}")
    return value


def catches_mail_locally(env: dict[str, str]) -> bool:
    """The bare embedded default, no database and no relay configured: `make run`
    delivers to the development mail catcher (delivery.dev_mailbox)."""
    return not env.get("DATABASE_URL") and not env.get("SMTP_HOST")


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Parse settings from ``env`` (default: ``os.environ``); raise ConfigError on a bad value."""
    env = dict(os.environ if env is None else env)
    var_dir = Path(env.get("ESEQ_VAR_DIR", VAR_DIR))
    database_url = _url(env, "DATABASE_URL", ("postgresql", "postgres", "sqlite")) or f"sqlite:///{var_dir / 'eseq.sqlite'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://"):]
    redis_url = _url(env, "REDIS_URL", ("redis", "rediss"))
    broker_url = (
        _url(env, "CELERY_BROKER_URL", ("redis", "rediss", "sqla", "amqp", "filesystem", "memory"))
        or redis_url
        or f"sqla+sqlite:///{var_dir / 'broker.sqlite'}"
    )
    result_backend = (
        _url(env, "CELERY_RESULT_BACKEND", ("redis", "rediss", "db", "rpc", "cache"))
        or redis_url
        or f"db+sqlite:///{var_dir / 'results.sqlite'}"
    )
    secret_key = env.get("SECRET_KEY") or ""
    generated = not secret_key
    if generated:
        secret_key = secrets.token_urlsafe(48)
    elif len(secret_key) < 16:
        raise ConfigError("SECRET_KEY must be at least 16 characters long")
    public_base_url = _url(env, "PUBLIC_BASE_URL", ("http", "https")) or "http://localhost:8000"
    origins = tuple(o.strip() for o in env.get("ESEQ_CORS_ORIGINS", "").split(",") if o.strip())
    dev_port = _int(env, "ESEQ_DEV_SMTP_PORT", 0) if catches_mail_locally(env) else 0
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        broker_url=broker_url,
        result_backend=result_backend,
        secret_key=secret_key,
        secret_key_generated=generated,
        admin_token=_token(env, "ESEQ_ADMIN_TOKEN"),
        public_base_url=public_base_url.rstrip("/"),
        tick_seconds=_float(env, "ESEQ_TICK_SECONDS", 5.0),
        smtp_host=env.get("SMTP_HOST") or None,
        smtp_port=_int(env, "SMTP_PORT", 25),
        smtp_username=env.get("SMTP_USERNAME") or None,
        smtp_password=env.get("SMTP_PASSWORD") or None,
        smtp_use_tls=_bool(env, "SMTP_USE_TLS", False),
        from_email=env.get("FROM_EMAIL") or None,
        from_name=env.get("FROM_NAME") or None,
        openai_api_key=env.get("OPENAI_API_KEY") or None,
        openai_base_url=_url(env, "OPENAI_BASE_URL", ("http", "https")),
        openai_model=env.get("OPENAI_MODEL") or "gpt-4o-mini",
        sentry_dsn=_url(env, "SENTRY_DSN", ("http", "https")),
        port=_int(env, "PORT", 8000),
        cors_origins=origins,
        rate_limit=env.get("ESEQ_RATE_LIMIT") or "600 per minute",
        jwt_expires_seconds=_int(env, "ESEQ_JWT_EXPIRES_SECONDS", 3600),
        broker_prefix=env.get("ESEQ_BROKER_PREFIX", ""),
        webhook_allow_private=_bool(env, "ESEQ_WEBHOOK_ALLOW_PRIVATE", False),
        lease_seconds=_int(env, "ESEQ_LEASE_SECONDS", 300),
        reconcile_seconds=_int(env, "ESEQ_RECONCILE_SECONDS", 600, minimum=0),
        retry_hours=_int(env, "ESEQ_RETRY_HOURS", 72),
        send_while_recording=_bool(env, "ESEQ_SEND_WHILE_RECORDING", True),
        worker_dead_after_seconds=_float(env, "ESEQ_WORKER_DEAD_AFTER_SECONDS", 15.0),
        provider_webhooks=_provider_webhooks(env),
        spamd_host=env.get("ESEQ_SPAMD_HOST") or None,
        spamd_port=_int(env, "ESEQ_SPAMD_PORT", 783) if env.get("ESEQ_SPAMD_PORT") else None,
        secrets_keys=_fernet_keys(env, "ESEQ_SECRETS_KEYS"),
        unsubscribe_domain=_dns_name(env, "ESEQ_UNSUBSCRIBE_DOMAIN"),
        unsubscribe_smtp_host=env.get("ESEQ_UNSUBSCRIBE_SMTP_HOST") or "0.0.0.0",
        unsubscribe_smtp_port=_int(env, "ESEQ_UNSUBSCRIBE_SMTP_PORT", 2525),
        dev_smtp_port=dev_port or None,
        dev_mail_dir=var_dir / "dev_mail" if dev_port else None,
        metrics_token=_token(env, "ESEQ_METRICS_TOKEN"),
        flower_url=_link_url(env, "FLOWER_URL"),
        proxy_hops=_int(env, "ESEQ_PROXY_HOPS", 0, minimum=0),
        ai_daily_tokens=_int(env, "ESEQ_AI_DAILY_TOKENS", 0, minimum=0),
        ai_price_prompt_per_1k=_float(env, "ESEQ_AI_PRICE_PROMPT_PER_1K", 0.0) or None,
        ai_price_completion_per_1k=_float(env, "ESEQ_AI_PRICE_COMPLETION_PER_1K", 0.0) or None,
        ai_timeout_seconds=_float(env, "ESEQ_AI_TIMEOUT_SECONDS", 60.0),
        ai_drafts_per_minute=_int(env, "ESEQ_AI_DRAFTS_PER_MINUTE", 60, minimum=0),
        opt_in_expiry_hours=_int(env, "ESEQ_OPT_IN_EXPIRY_HOURS", 72),
        db_pool_size=_int(env, "ESEQ_DB_POOL_SIZE", 10),
        db_max_overflow=_int(env, "ESEQ_DB_MAX_OVERFLOW", 20, minimum=0),
        **_dkim(env),  # type: ignore[arg-type]
    )


_WEBHOOK_VARIABLES = {
    "sendgrid": {"webhook_public_key": "ESEQ_SENDGRID_WEBHOOK_PUBLIC_KEY"},
    "mailgun": {"webhook_signing_key": "ESEQ_MAILGUN_WEBHOOK_SIGNING_KEY"},
    "postmark": {"webhook_username": "ESEQ_POSTMARK_WEBHOOK_USERNAME",
                 "webhook_password": "ESEQ_POSTMARK_WEBHOOK_PASSWORD"},
    "ses": {"webhook_topic_arns": "ESEQ_SES_WEBHOOK_TOPIC_ARNS"},
}


def _provider_webhooks(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Only providers whose every variable is set; a half-configured one stays off."""
    found = {p: {k: env.get(v, "") for k, v in names.items()} for p, names in _WEBHOOK_VARIABLES.items()}
    return {p: values for p, values in found.items() if all(values.values())}


def public_url_problem(url: str) -> str | None:
    """Why PUBLIC_BASE_URL, valid as it is, will hurt mail that goes out, or None.
    Plain http is fine on this machine (``make run``) and nowhere else."""
    parsed = urlparse(url)
    if parsed.scheme == "https" or parsed.hostname in ("localhost", "127.0.0.1", "::1"):
        return None
    return ("PUBLIC_BASE_URL is plain http: mailbox providers take one-click unsubscribe (RFC 8058) only from "
            "an https List-Unsubscribe URL, and tracked links and unsubscribe pages would cross the network in "
            "the clear")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; the first call parses and validates."""
    settings = load_settings()
    if settings.secret_key_generated:
        log.warning("SECRET_KEY is not set: using a random key for this run; tokens will not survive a restart")
    problem = public_url_problem(settings.public_base_url)
    if problem:
        log.warning(problem)
    if not settings.secrets_keys and not settings.embedded:
        log.warning("ESEQ_SECRETS_KEYS is not set: providers' credentials and DKIM keys are stored unsealed")
    return settings
