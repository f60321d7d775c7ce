"""Managing an account's providers: validated config, secrets kept out of every
answer, and targets checked so a provider cannot be pointed at the platform's own
network (the same guard as webhook steps)."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.netguard import UnsafeTargetError, check_target
from delivery.providers import (SECRET_FIELDS, ConfigKeyError, destination, outbound_secrets, require_encrypted_auth,
                                validate_config)
from models import Provider


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


def _require_secrets_to_move(kind: str, stored: dict[str, Any], given: dict[str, Any],
                             cleaned: dict[str, Any]) -> None:
    """Refuse a change of where (or how) stored credentials travel unless they are
    sent along: otherwise a stolen session token, which cannot read a secret, could
    point the provider at its own server and receive the secret with the next send."""
    before, after = destination(kind, stored), destination(kind, cleaned)
    moved = [key for key in before if before[key] != after[key]]
    kept = [key for key in outbound_secrets(kind) if stored.get(key) and key not in given]
    if moved and kept:
        raise ProviderInputError(f"config.{kept[0]}", f"changing config.{moved[0]} changes where the stored "
                                                      f"'{kept[0]}' is sent: send '{kept[0]}' again with it")


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
    not given are kept, so a client need not send them back, unless the change
    sends them somewhere else (DESTINATION_FIELDS): then they must be given too."""
    provider = get_provider(session, account_id, provider_id)
    if "config" in data:
        stored = provider.config or {}
        cleaned = _clean(provider.kind, {**stored, **data["config"]}, allow_private)
        _require_secrets_to_move(provider.kind, stored, data["config"], cleaned)
        provider.config = cleaned
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
