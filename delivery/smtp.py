"""SMTP transport: one connection reused for a whole batch, reconnecting once when
the server hangs up, with every reply sorted into transient or permanent."""
from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType

from delivery.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    use_tls: bool = False  # STARTTLS on a plain port
    use_ssl: bool = False  # implicit TLS (port 465)
    timeout: float = 30.0
    name: str = "smtp"


def _classify(code: int, text: bytes | str) -> DeliveryError:
    message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    if 500 <= code < 600:
        return PermanentDeliveryError(f"{code} {message}")
    return TransientDeliveryError(f"{code} {message}")


class SmtpTransport:
    """Use as a context manager; ``send`` returns the Message-ID the server accepted."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._client: smtplib.SMTP | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            if cfg.use_ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                                        context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
                if cfg.use_tls:
                    client.starttls(context=ssl.create_default_context())
            if cfg.username:
                client.login(cfg.username, cfg.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise TransientDeliveryError(f"SMTP authentication failed: {exc.smtp_code}") from None
        except smtplib.SMTPResponseException as exc:
            raise _classify(exc.smtp_code, exc.smtp_error) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientDeliveryError(f"cannot connect to {cfg.host}:{cfg.port}: {type(exc).__name__}") from None
        return client

    def send(self, message: EmailMessage, sender: str, recipient: str) -> str:
        for attempt in (1, 2):
            if self._client is None:
                self._client = self._connect()
            try:
                refused = self._client.send_message(message, from_addr=sender, to_addrs=[recipient])
            except smtplib.SMTPServerDisconnected:
                self._client = None
                if attempt == 2:
                    raise TransientDeliveryError("SMTP server disconnected") from None
                continue
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = exc.recipients.get(recipient, (550, b"recipient refused"))
                raise _classify(code, text) from None
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code < 500:
                    self._reset()
                raise _classify(exc.smtp_code, exc.smtp_error) from None
            except (OSError, socket.timeout) as exc:
                self.close()
                raise TransientDeliveryError(f"SMTP connection failed: {type(exc).__name__}") from None
            if refused:
                code, text = refused[recipient]
                raise _classify(code, text)
            return str(message["Message-ID"])
        raise TransientDeliveryError("unreachable")

    def _reset(self) -> None:
        try:
            if self._client is not None:
                self._client.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._client = None
