"""SMTP transport: one connection reused for a whole batch, reconnecting once when
the server hangs up, with every reply sorted into transient or permanent.

Messages from ``delivery.mime`` go out as the bytes it wrote; ``send_message``
would serialize the message again, which costs more than building it did. When
the server offers PIPELINING (RFC 2920; Postfix and the big providers do), MAIL,
RCPT and DATA go in one write and their replies are read together: two round
trips a message instead of four, and about a quarter of smtplib's CPU. When the
send batch says which message comes next (``expect``), that one's envelope goes
in the same write as this one's content: one round trip a message.

A relay an account configured is checked by the SSRF guard each time a
connection opens (once a batch, not once a message), and the connection goes to
an address checked, while STARTTLS and implicit TLS still verify the host name:
a name that resolved public when saved may resolve to loopback now."""
from __future__ import annotations

import re
import smtplib
import socket
import ssl
import struct
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import cache
from types import TracebackType
from typing import Any

from core.netguard import HostCheck, UnsafeTargetError, connect_pinned
from delivery.errors import (DeliveryError, PermanentDeliveryError, RejectedMessageError, TransientDeliveryError,
                             UnconfirmedDeliveryError)
from delivery.mime import BuiltMessage
from delivery.status_codes import blames_address, blames_us, enhanced_code


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_tls: bool = False  # STARTTLS on a plain port
    use_ssl: bool = False  # implicit TLS (port 465)
    timeout: float = 30.0
    name: str = "smtp"


# Replies refusing us rather than the recipient, however they are coded: a relay
# that will not relay for us (Postfix "554 Relay access denied", Exim "550 relay
# not permitted", qmail's "553 ... rcpthosts") or wants us logged in first. Read as
# a bad address, a misconfigured relay would suppress every recipient of a batch.
_REFUSES_US = re.compile(r"relay(ing)?\s+(access\s+)?(denied|not\s+permitted|not\s+allowed|prohibited|refused)"
                         r"|relay\s+access|rcpthosts|authentication\s+(is\s+)?required", re.IGNORECASE)
_AUTH_REPLIES = (530, 535)  # authentication required, credentials invalid (RFC 4954)

# Addresses written into MAIL/RCPT as they are; anything else goes through smtplib's quoting.
_PLAIN_ADDRESS = re.compile(r"[^\s<>]+@[^\s<>]+")


def dot_stuffed(raw: bytes) -> bytes:
    """RFC 5321 4.5.2: a dot at the start of a line is doubled, so no line of the
    content reads as its end. Every line, whichever line break ends it, as
    smtplib's multiline regular expression does, with one byte search: the
    expression cost about 55 µs of CPU an email, with the GIL held, against 4."""
    stuffed = raw.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def _reply(code: int, text: bytes | str) -> str:
    return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"


def _classify(code: int, text: bytes | str, stage: str) -> DeliveryError:
    """A refusal at RCPT (``stage`` "recipient") or of the message (DATA and its
    content, "message"). 4xx is transient. So is a refusal of us whatever its
    code (530, 535, relaying denied): it is about our relay settings, so it counts
    against the provider and fails over, and nobody is suppressed for it. Any
    other 5xx is read by its enhanced code (delivery.status_codes):

    - policy or our sender (relaying denied, our IP on a blocklist, DMARC) is
      about us, not the recipient: transient, so another provider may take it,
      and nobody is suppressed for it;
    - X.2.2 (mailbox full) is a soft bounce, as providers count it: transient;
    - a code blaming the address, or none at RCPT: permanent, and the address
      is suppressed;
    - anything else (size, content, the receiving system): this message fails,
      the address stays (RejectedMessageError).

    Refusals of the session or of our sender never reach here: they are always
    transient (see ``_connect`` and ``send``)."""
    reply = _reply(code, text)
    if not 500 <= code < 600:
        return TransientDeliveryError(reply)
    if code in _AUTH_REPLIES or _REFUSES_US.search(reply):
        return TransientDeliveryError(f"the server refuses to relay for us, not this address: {reply}")
    enhanced = enhanced_code(reply)
    if enhanced is None:
        return PermanentDeliveryError(reply) if stage == "recipient" else RejectedMessageError(reply)
    if blames_us(*enhanced):
        return TransientDeliveryError(f"refused by the server's policy, not for this address: {reply}")
    if enhanced == (2, 2):
        return TransientDeliveryError(reply)
    return PermanentDeliveryError(reply) if blames_address(*enhanced) else RejectedMessageError(reply)


class _Pinned(smtplib.SMTP):
    """smtplib connecting to the addresses the SSRF guard checked rather than to a
    fresh lookup of the name. smtplib keeps the name (``_host``) for STARTTLS's and
    SMTPS's SNI and certificate check, so only the socket's address changes."""

    _addresses: list[str] | None = None

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        if not self._addresses:
            return super()._get_socket(host, port, timeout)  # type: ignore[misc, no-any-return]
        return connect_pinned(self._addresses, port, timeout, self.source_address)


class _PinnedSMTP(_Pinned):
    def __init__(self, addresses: list[str] | None, *args: Any, **kwargs: Any) -> None:
        self._addresses = addresses
        super().__init__(*args, **kwargs)


class _PinnedSMTPSSL(smtplib.SMTP_SSL, _Pinned):
    # SMTP_SSL wraps the socket _Pinned made (the MRO puts _Pinned between it and SMTP).
    def __init__(self, addresses: list[str] | None, *args: Any, **kwargs: Any) -> None:
        self._addresses = addresses
        super().__init__(*args, **kwargs)


class SmtpTransport:
    """Use as a context manager; ``send`` returns the Message-ID the server accepted.
    ``check`` is the SSRF guard's, for a relay an account configured; None for the
    operator's own (SMTP_*)."""

    def __init__(self, config: SmtpConfig, check: HostCheck | None = None) -> None:
        self.config = config
        self.check = check
        self._client: smtplib.SMTP | None = None
        # Envelopes (sender, recipient): of the message the batch announced next
        # (see expect), and of the one whose DATA the server answered with 354
        # after it went out with the last message's content.
        self._expected: tuple[str, str] | None = None
        self._open_for: tuple[str, str] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        """A ready session, or a transient error: whatever goes wrong before a
        message (a 554 greeting, STARTTLS or AUTH missing or refused) is about the
        server or our settings, never the recipient, so another provider may be
        tried and nobody is recorded as a bounce."""
        cfg = self.config
        addresses = self._checked_addresses()
        client: smtplib.SMTP | None = None
        try:
            if cfg.use_ssl:
                client = _PinnedSMTPSSL(addresses, cfg.host, cfg.port, _local_hostname(), timeout=cfg.timeout,
                                        context=ssl.create_default_context())
            else:
                client = _PinnedSMTP(addresses, cfg.host, cfg.port, _local_hostname(), timeout=cfg.timeout)
                if cfg.use_tls:
                    client.starttls(context=ssl.create_default_context())
            if cfg.username:
                client.login(cfg.username, cfg.password or "")
            _kernel_timeouts(client.sock, cfg.timeout)
            return client
        except smtplib.SMTPAuthenticationError as exc:
            error = f"SMTP authentication failed: {exc.smtp_code}"
        except smtplib.SMTPNotSupportedError as exc:
            error = f"{cfg.host}:{cfg.port} does not offer what the configuration asks for: {type(exc).__name__}: {exc}"
        except smtplib.SMTPResponseException as exc:
            error = f"{cfg.host}:{cfg.port} refused the session: {_reply(exc.smtp_code, exc.smtp_error)}"
        except (OSError, smtplib.SMTPException) as exc:
            error = f"cannot connect to {cfg.host}:{cfg.port}: {type(exc).__name__}"
        if client is not None:
            client.close()  # else the half-open session keeps its socket as long as the error is kept
        raise TransientDeliveryError(error)

    def _checked_addresses(self) -> list[str] | None:
        """Where this connection may go: the host's addresses the check accepted
        (one lookup per connection), or None to let smtplib resolve the operator's."""
        if self.check is None:
            return None
        try:
            return self.check(self.config.host, self.config.port)
        except UnsafeTargetError as exc:
            raise TransientDeliveryError(f"refused to connect to {self.config.host}: {exc}") from None

    def expect(self, upcoming: tuple[EmailMessage, str, str] | None) -> None:
        """Say which message this transport will most likely be given next (its
        message, sender and recipient), or that none is known. Its envelope then
        goes out in the same write as the next message's content (RFC 2920 allows
        content first in a group), and its answers are read with that content's:
        one round trip a message instead of two. A guess that proves wrong costs
        the connection (a transaction waiting for its content cannot be reset),
        never a message: without its content nothing was sent."""
        if upcoming is None:
            self._expected = None
            return
        message, sender, recipient = upcoming
        self._expected = None if _needs_smtputf8(message, sender, recipient) else (sender, recipient)

    def send(self, message: EmailMessage, sender: str, recipient: str) -> str:
        expected, self._expected = self._expected, None
        if self._open_for is not None and self._open_for != (sender, recipient):
            self._drop()  # another message came: the one whose envelope waits cannot be reset
        for attempt in (1, 2):
            if self._client is None:
                self._client = self._connect()
            try:
                self._hand_over(self._client, message, sender, recipient, expected)
            except smtplib.SMTPNotSupportedError as exc:
                # SMTPUTF8 (an address that is not ASCII) on a server without it:
                # another provider may take it.
                raise TransientDeliveryError(f"SMTP server cannot take this message: {exc}") from None
            except UnconfirmedDeliveryError:
                self._drop()  # never sent again here (see _content)
                raise
            except smtplib.SMTPServerDisconnected:
                self._drop()
                if attempt == 2:
                    raise TransientDeliveryError("SMTP server disconnected") from None
                continue
            except smtplib.SMTPSenderRefused as exc:
                # MAIL refused (our sender, TLS required, a policy): the server's view
                # of us, not of this recipient. Already reset by the sending path.
                raise TransientDeliveryError(f"sender refused: {_reply(exc.smtp_code, exc.smtp_error)}") from None
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = exc.recipients.get(recipient, (550, b"recipient refused"))
                raise _classify(code, text, "recipient") from None
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code < 500:
                    self._reset()
                raise _classify(exc.smtp_code, exc.smtp_error, "message") from None
            except (OSError, socket.timeout) as exc:
                self.close()
                raise TransientDeliveryError(f"SMTP connection failed: {type(exc).__name__}") from None
            return message.message_id if isinstance(message, BuiltMessage) else str(message["Message-ID"])
        raise TransientDeliveryError("unreachable")

    def _hand_over(self, client: smtplib.SMTP, message: EmailMessage, sender: str, recipient: str,
                   expected: tuple[str, str] | None) -> None:
        """One transaction through our own paths, whatever the message: a plain
        ``EmailMessage`` is written out first, so it too is never sent again after
        its final dot (smtplib's send_message would be)."""
        smtputf8 = _needs_smtputf8(message, sender, recipient)
        if isinstance(message, BuiltMessage):
            raw = message.raw
        else:
            raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n", utf8=smtputf8))
        if self._open_for == (sender, recipient):  # its envelope went out with the last message
            self._open_for = None
            self._content(client, raw, expected)
            return
        client.ehlo_or_helo_if_needed()
        if smtputf8 and not client.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError("the server does not offer SMTPUTF8")
        options = ["SMTPUTF8"] if smtputf8 else []
        if _can_pipeline(client, sender, recipient):
            _pipelined(client, sender, recipient, options)
        else:
            _one_at_a_time(client, sender, recipient, options)
        self._content(client, raw, expected)

    def _content(self, client: smtplib.SMTP, raw: bytes, expected: tuple[str, str] | None) -> None:
        """Send the message after a 354 and read the server's verdict, with the
        expected next message's envelope in the same write when there is one.

        Once the final dot is out the server may have taken the message, so a
        connection that fails before its answer (smtplib reports a timeout or a reset
        as a disconnection) leaves it in doubt: UnconfirmedDeliveryError, which nobody
        answers by sending it again at once. A failure while the content is still
        going out is an ordinary disconnection: without the dot there is no message."""
        ahead = expected if expected is not None and _can_pipeline(client, *expected) else None
        data = dot_stuffed(raw) + (b"" if raw.endswith(b"\r\n") else b"\r\n") + b".\r\n"
        client.send(data + _envelope(*ahead, []) if ahead else data)
        try:
            code, text = client.getreply()
        except smtplib.SMTPServerDisconnected as exc:
            raise UnconfirmedDeliveryError(f"no answer after the whole message was sent ({exc}): it may have been "
                                           "delivered") from None
        if ahead:
            self._read_ahead(client, ahead)
        if code != 250:
            if not ahead:
                _rset(client)
            raise smtplib.SMTPDataError(code, text)

    def _read_ahead(self, client: smtplib.SMTP, expected: tuple[str, str]) -> None:
        """The answers to the envelope sent ahead. Anything but a clean 250, 250,
        354 is left for its message to meet again the usual way (a refusal is
        reset, a connection that fails is dropped), so that its error is raised
        by the same code as always."""
        try:
            mail, rcpt, data = (client.getreply()[0] for _ in range(3))
        except (OSError, smtplib.SMTPException):
            self._drop()
            return
        if _envelope_taken(mail, rcpt, data):
            self._open_for = expected
        elif data == 354:
            self._drop()  # a server that takes DATA after a refusal: see _pipelined
        else:
            _rset(client)

    def _reset(self) -> None:
        if self._open_for is not None:
            return  # the next message's transaction waits for its content: a RSET would be read as content
        try:
            if self._client is not None:
                self._client.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def _drop(self) -> None:
        """Hang up without QUIT (a transaction may be waiting for its content, and
        the server discards one that never gets its final dot)."""
        if self._client is not None:
            self._client.close()
        self._client, self._open_for = None, None

    def close(self) -> None:
        if self._open_for is not None:
            self._drop()
        if self._client is not None:
            try:
                self._client.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._client = None


@cache
def _local_hostname() -> str:
    """The name EHLO gives, looked up once per process: smtplib would call
    socket.getfqdn() (a resolver lookup) for every connection, and a send batch
    opens one."""
    return socket.getfqdn()


def _kernel_timeouts(sock: socket.socket | None, seconds: float) -> None:
    """Let the kernel keep a plain connection's timeout.

    A Python socket with a timeout polls before each send and receive, and gives up
    the GIL around both calls. Among dozens of send threads each hand-over of the
    GIL wakes another thread: with SO_SNDTIMEO/SO_RCVTIMEO on a blocking socket
    there is one call instead of two, and a send worker into a local relay
    switched threads 19 times an email instead of 26 (bench/send_pipeline). A
    call that runs out of time fails as before, with an OSError
    (EAGAIN) where Python raised its TimeoutError. TLS sockets keep Python's
    timeout: OpenSSL would report the kernel's as "want read"."""
    if sock is None or isinstance(sock, ssl.SSLSocket):
        return
    whole = int(seconds)
    # At least a microsecond: a zero timeval would mean no timeout at all.
    timeval = struct.pack("ll", whole, max(int((seconds - whole) * 1_000_000), 0 if whole else 1))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    sock.settimeout(None)


def _needs_smtputf8(message: EmailMessage, sender: str, recipient: str) -> bool:
    if isinstance(message, BuiltMessage):
        return message.smtputf8
    return not (sender.isascii() and recipient.isascii())


def _can_pipeline(client: smtplib.SMTP, sender: str, recipient: str) -> bool:
    return bool(client.does_esmtp and client.has_extn("pipelining")
                and _PLAIN_ADDRESS.fullmatch(sender) and _PLAIN_ADDRESS.fullmatch(recipient))


def _envelope_taken(mail: int, rcpt: int, data: int) -> bool:
    """The server's answers to MAIL, RCPT and DATA say it waits for the content."""
    return mail == 250 and rcpt in (250, 251) and data == 354


def _envelope(sender: str, recipient: str, options: list[str]) -> bytes:
    extra = "".join(f" {o}" for o in options)
    return f"MAIL FROM:<{sender}>{extra}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()


def _pipelined(client: smtplib.SMTP, sender: str, recipient: str, options: list[str]) -> None:
    """The envelope with RFC 2920 pipelining, answered by the server's 354, or the
    exceptions ``sendmail`` would raise, after the same RSET."""
    client.send(_envelope(sender, recipient, options))
    (mail, mail_text), (rcpt, rcpt_text), (data, data_text) = (client.getreply() for _ in range(3))
    if _envelope_taken(mail, rcpt, data):
        return
    if data == 354:
        # A server that takes DATA after refusing the sender or recipient would
        # take an empty message too: hang up rather than end it.
        client.close()
        raise smtplib.SMTPServerDisconnected("DATA accepted after a refused sender or recipient")
    _rset(client)
    if mail != 250:
        raise smtplib.SMTPSenderRefused(mail, mail_text, sender)
    if rcpt not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (rcpt, rcpt_text)})
    raise smtplib.SMTPDataError(data, data_text)


def _one_at_a_time(client: smtplib.SMTP, sender: str, recipient: str, options: list[str]) -> None:
    """The envelope a command at a time, for servers without PIPELINING (or an
    address smtplib must quote): ``sendmail``'s steps and exceptions; the content
    then goes through ``_content`` so that a lost final answer is reported as such."""
    code, text = client.mail(sender, options)
    if code != 250:
        _rset(client)
        raise smtplib.SMTPSenderRefused(code, text, sender)
    code, text = client.rcpt(recipient)
    if code not in (250, 251):
        _rset(client)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, text)})
    code, text = client.docmd("DATA")
    if code != 354:
        _rset(client)
        raise smtplib.SMTPDataError(code, text)


def _rset(client: smtplib.SMTP) -> None:
    try:
        client.rset()
    except smtplib.SMTPServerDisconnected:
        pass
