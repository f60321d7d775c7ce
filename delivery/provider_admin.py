"""Managing an account's providers: validated config, secrets kept out of every
answer, and targets checked so a provider cannot be pointed at the platform's own
network (the same guard as webhook steps)."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from delivery.providers import SECRET_FIELDS, ConfigKeyError, require_encrypted_auth, validate_config
from models import Provider
from webhooks.guard import UnsafeTargetError, check_target


class ProviderInputError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ProviderNotFoundError(LookupError):
    pass


def _targets(kind: str, config: dict[str, Any]) -> list[tuple[str, str]]:
    """Each place the provider will connect to that the config chooses, with the
    field that chose it."""
    if kind == "smtp":
        return [("config.host", f"http://{config['host']}:{config.get('port', 25)}")]
    # SES builds its host from the region when base_url is not set; the region's
    # shape (validate_config) keeps that host under amazonaws.com.
    return [("config.base_url", str(config["base_url"]))] if config.get("base_url") else []


def _check_targets(kind: str, config: dict[str, Any], allow_private: bool) -> None:
    for field, url in _targets(kind, config):
        try:
            check_target(url, allow_private)
        except UnsafeTargetError as exc:
            raise ProviderInputError(field, f"{urlsplit(url).hostname}: {exc}") from None


def _clean(kind: str, config: dict[str, Any], allow_private: bool) -> dict[str, Any]:
    try:
        cleaned = validate_config(kind, config)
        require_encrypted_auth(kind, cleaned)
    except ConfigKeyError as exc:
        raise ProviderInputError(f"config.{exc.key}", str(exc)) from None
    except ValueError as exc:
        raise ProviderInputError("config", str(exc)) from None
    _check_targets(kind, cleaned, allow_private)
    return cleaned


def public_config(provider: Provider) -> dict[str, Any]:
    """The config without its secrets (which keys are set is shown separately)."""
    secret = SECRET_FIELDS.get(provider.kind, ())
    return {k: v for k, v in (provider.config or {}).items() if k not in secret}


def secrets_set(provider: Provider) -> list[str]:
    return sorted(k for k in SECRET_FIELDS.get(provider.kind, ()) if (provider.config or {}).get(k))


def list_providers(account_id: int) -> Select[Any]:
    return select(Provider).where(Provider.account_id == account_id).order_by(Provider.priority, Provider.id)


def get_provider(session: Session, account_id: int, provider_id: int) -> Provider:
    provider = session.scalar(select(Provider).where(Provider.id == provider_id, Provider.account_id == account_id))
    if provider is None:
        raise ProviderNotFoundError(provider_id)
    return provider


def create_provider(session: Session, account_id: int, data: dict[str, Any], allow_private: bool) -> Provider:
    provider = Provider(account_id=account_id, name=data["name"], kind=data["kind"], priority=data["priority"],
                        weight=data["weight"], domains=sorted({d.lower() for d in data["domains"]}),
                        enabled=data["enabled"], max_per_second=data.get("max_per_second"),
                        config=_clean(data["kind"], data["config"], allow_private))
    session.add(provider)
    session.flush()
    return provider


def update_provider(session: Session, account_id: int, provider_id: int, data: dict[str, Any],
                    allow_private: bool) -> Provider:
    """Change the given fields. ``config`` keys given replace stored ones; secrets
    not given are kept, so a client never has to send them back."""
    provider = get_provider(session, account_id, provider_id)
    if "config" in data:
        provider.config = _clean(provider.kind, {**(provider.config or {}), **data["config"]}, allow_private)
    for name in ("name", "priority", "weight", "enabled", "max_per_second"):
        if name in data:
            setattr(provider, name, data[name])
    if "domains" in data:
        provider.domains = sorted({d.lower() for d in data["domains"]})
    if data.get("reset_circuit"):
        provider.circuit_state, provider.consecutive_failures = "closed", 0
        provider.circuit_opened_at = provider.paused_until = None
    session.flush()
    return provider


def delete_provider(session: Session, account_id: int, provider_id: int) -> None:
    session.delete(get_provider(session, account_id, provider_id))
    session.flush()
