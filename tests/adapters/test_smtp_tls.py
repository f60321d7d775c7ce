"""The SMTP transport's TLS and AUTH against a real server: aiosmtpd on 127.0.0.1
presenting a self-signed certificate made for this test run, which the client
trusts through SSL_CERT_FILE (OpenSSL reads it when ``ssl.create_default_context()``
loads the default certificates, so the product code keeps full verification).

What it proves:

* STARTTLS (``use_tls``) and implicit TLS (``use_ssl``) each carry a batch over one
  connection, authenticated with the configured username and password, and the
  built bytes arrive unchanged;
* a wrong password is a transient error and nothing is delivered;
* certificate verification is on: a certificate from an issuer the client does not
  trust, or one for another name, fails the send before the password is sent;
* TLS is never dropped silently: a server that insists on STARTTLS while the
  configuration asks for none gets no message (and no password in the clear), and
  a configuration asking for STARTTLS fails on a server that does not offer it.
"""
from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.netguard import host_check
from delivery.errors import DeliveryError, TransientDeliveryError
from delivery.smtp import SmtpConfig, SmtpTransport
from tests.support.dns import rebinding
from tests.support.smtp import free_port

USERNAME = "mailer@news.example"
PASSWORD = "correct horse battery staple"
SENDER, RECIPIENT = "alice@news.example", "bob@example.org"

STARTTLS, IMPLICIT_TLS = "starttls", "implicit-tls"
TLS_MODES = pytest.mark.parametrize("mode", [STARTTLS, IMPLICIT_TLS])

# aiosmtpd warns about auth_require_tls=False, which the implicit-TLS server needs (see tls_server).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


# --- certificates -----------------------------------------------------------------

@dataclass(frozen=True)
class KeyPair:
    cert: Path  # PEM
    key: Path  # PEM, unencrypted


@dataclass(frozen=True)
class Certificates:
    server: KeyPair  # for 127.0.0.1 and localhost: what the servers below present
    stranger: KeyPair  # another self-signed certificate for the same names
    elsewhere: KeyPair  # self-signed for mail.example only


def self_signed(directory: Path, stem: str, *names: str) -> KeyPair:
    """A certificate for ``names`` (IP addresses become IP SANs) signed by its own key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pair = KeyPair(directory / f"{stem}.pem", directory / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return pair


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    directory = tmp_path_factory.mktemp("tls")
    return Certificates(
        server=self_signed(directory, "server", "127.0.0.1", "localhost"),
        stranger=self_signed(directory, "stranger", "127.0.0.1", "localhost"),
        elsewhere=self_signed(directory, "elsewhere", "mail.example"),
    )


def trust(monkeypatch: pytest.MonkeyPatch, pair: KeyPair) -> None:
    """Make ``pair`` the client's CA file (SSL_CERT_DIR still adds the system's CAs)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pair.cert))


def server_context(pair: KeyPair) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pair.cert, pair.key)
    return context


# --- the server ---------------------------------------------------------------------

Peer = tuple[str, int]


def tls_version(server: Any) -> str | None:
    """The TLS version of the connection an aiosmtpd ``SMTP`` is serving, None in the clear.
    (Its transport is the TLS one both after STARTTLS and on an implicit-TLS socket.)"""
    ssl_object = server.transport.get_extra_info("ssl_object")
    return None if ssl_object is None else str(ssl_object.version())


@dataclass
class Delivery:
    """One message as the server took it, and how the session that sent it stood."""
    peer: Peer  # the client's address and port: one per connection
    tls: str | None
    credentials: tuple[bytes, bytes] | None  # what the session authenticated with
    sender: str
    recipients: list[str]
    content: bytes


@dataclass
class Handler:
    pipelining: bool = True
    greetings: list[tuple[Peer, str | None]] = field(default_factory=list)  # each EHLO: peer, TLS version
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)  # each AUTH attempt's username, password
    deliveries: list[Delivery] = field(default_factory=list)

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.greetings.append((session.peer, tls_version(server)))
        return responses[:-1] + ["250-PIPELINING"] + responses[-1:] if self.pipelining else responses

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword), mechanism
        self.logins.append((auth_data.login, auth_data.password))
        good = (auth_data.login, auth_data.password) == (USERNAME.encode(), PASSWORD.encode())
        # handled=False: aiosmtpd answers 535 itself for a refusal.
        return AuthResult(success=good, handled=False, auth_data=auth_data if good else None)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        credentials = (session.auth_data.login, session.auth_data.password) if session.authenticated else None
        self.deliveries.append(Delivery(session.peer, tls_version(server), credentials, envelope.mail_from,
                                        list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"


StartServer = Callable[..., int]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """``start_server(handler, **Controller options)`` runs an aiosmtpd on a free port of
    127.0.0.1 that checks AUTH with ``handler.authenticate``; returns the port."""
    running: list[Controller] = []

    def start(handler: Handler, **options: Any) -> int:
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=handler.authenticate,
                                **options)
        controller.start()
        running.append(controller)
        return port

    try:
        yield start
    finally:
        for controller in running:
            controller.stop()


def tls_server(mode: str, pair: KeyPair) -> dict[str, Any]:
    """Controller options for a server presenting ``pair`` that takes mail only
    after TLS and AUTH."""
    if mode == STARTTLS:
        # Nothing but EHLO/STARTTLS before TLS, no AUTH in the clear, no MAIL before AUTH.
        return {"tls_context": server_context(pair), "require_starttls": True, "auth_required": True}
    # aiosmtpd counts a session as TLS only after its own STARTTLS: on an implicit-TLS
    # socket it would neither offer nor take AUTH unless told not to require TLS for it.
    # The handler records the connection's real TLS state instead.
    return {"ssl_context": server_context(pair), "auth_required": True, "auth_require_tls": False}


def tls_client(mode: str, port: int, password: str = PASSWORD) -> SmtpConfig:
    return SmtpConfig("127.0.0.1", port, username=USERNAME, password=password,
                      use_tls=mode == STARTTLS, use_ssl=mode == IMPLICIT_TLS, timeout=10)


def tls_relay(start_server: StartServer, monkeypatch: pytest.MonkeyPatch, mode: str, presented: KeyPair,
              trusted: KeyPair | None = None, handler: Handler | None = None) -> tuple[Handler, int]:
    """A server in ``mode`` presenting ``presented``, with the client trusting
    ``trusted`` (by default the same pair): its handler and port."""
    handler = handler or Handler()
    port = start_server(handler, **tls_server(mode, presented))
    trust(monkeypatch, trusted or presented)
    return handler, port


# --- tests --------------------------------------------------------------------------

@TLS_MODES
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-command-at-a-time"])
def test_a_batch_goes_over_one_authenticated_tls_connection_byte_for_byte(
        mode: str, pipelining: bool, certificates: Certificates, start_server: StartServer,
        monkeypatch: pytest.MonkeyPatch, message: EmailMessage) -> None:
    handler, port = tls_relay(start_server, monkeypatch, mode, certificates.server,
                              handler=Handler(pipelining=pipelining))

    with SmtpTransport(tls_client(mode, port)) as smtp:
        ids = [smtp.send(message, SENDER, RECIPIENT), smtp.send(message, SENDER, "carol@example.org")]

    assert ids == [message.message_id] * 2
    assert [(d.sender, d.recipients) for d in handler.deliveries] == [
        (SENDER, [RECIPIENT]), (SENDER, ["carol@example.org"])]
    assert [d.content for d in handler.deliveries] == [message.raw] * 2, "the built bytes arrived unchanged"
    assert all(d.tls in ("TLSv1.2", "TLSv1.3") for d in handler.deliveries), handler.deliveries
    assert [d.credentials for d in handler.deliveries] == [(USERNAME.encode(), PASSWORD.encode())] * 2
    assert handler.logins == [(USERNAME.encode(), PASSWORD.encode())], "one AUTH for the batch"
    (peer,) = {d.peer for d in handler.deliveries}  # one connection for both messages
    # STARTTLS: one EHLO in the clear, one over TLS; implicit TLS: one, over TLS.
    assert [(p, v is not None) for p, v in handler.greetings] == (
        [(peer, False), (peer, True)] if mode == STARTTLS else [(peer, True)])


@TLS_MODES
def test_a_wrong_password_is_transient_and_delivers_nothing(
        mode: str, certificates: Certificates, start_server: StartServer, monkeypatch: pytest.MonkeyPatch,
        message: EmailMessage) -> None:
    handler, port = tls_relay(start_server, monkeypatch, mode, certificates.server)

    with SmtpTransport(tls_client(mode, port, password="wrong")) as smtp:
        with pytest.raises(TransientDeliveryError, match="authentication failed: 535"):
            smtp.send(message, SENDER, RECIPIENT)

    assert handler.deliveries == []
    # smtplib tries each mechanism offered (PLAIN, then LOGIN), all with the password configured.
    assert handler.logins and set(handler.logins) == {(USERNAME.encode(), b"wrong")}


@TLS_MODES
@pytest.mark.parametrize("presented, trusted", [("server", "stranger"), ("elsewhere", "elsewhere")],
                         ids=["unknown-issuer", "another-name"])
def test_a_certificate_the_client_cannot_verify_fails_the_send_before_the_password_goes(
        mode: str, presented: str, trusted: str, certificates: Certificates, start_server: StartServer,
        monkeypatch: pytest.MonkeyPatch, message: EmailMessage) -> None:
    handler, port = tls_relay(start_server, monkeypatch, mode, getattr(certificates, presented),
                              getattr(certificates, trusted))

    with SmtpTransport(tls_client(mode, port)) as smtp:
        with pytest.raises(TransientDeliveryError, match="SSLCertVerificationError"):
            smtp.send(message, SENDER, RECIPIENT)

    assert handler.deliveries == []
    assert handler.logins == [], "the password was not given to a server we could not verify"


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-command-at-a-time"])
def test_a_server_requiring_starttls_takes_nothing_from_a_configuration_without_tls(
        pipelining: bool, certificates: Certificates, start_server: StartServer, message: EmailMessage) -> None:
    handler = Handler(pipelining=pipelining)
    port = start_server(handler, tls_context=server_context(certificates.server), require_starttls=True)

    with SmtpTransport(SmtpConfig("127.0.0.1", port, timeout=10)) as smtp:
        with pytest.raises(DeliveryError, match="530 Must issue a STARTTLS command first") as refused:
            smtp.send(message, SENDER, RECIPIENT)

    # A refusal of the session, not of the recipient: transient, so failover moves on
    # and nobody is recorded as a hard bounce.
    assert type(refused.value) is TransientDeliveryError
    assert handler.deliveries == []
    assert [v for _, v in handler.greetings] == [None], "no TLS was negotiated"


def test_credentials_are_not_sent_in_the_clear_to_a_server_requiring_starttls(
        certificates: Certificates, start_server: StartServer, message: EmailMessage) -> None:
    handler = Handler()
    port = start_server(handler, tls_context=server_context(certificates.server), require_starttls=True)

    config = SmtpConfig("127.0.0.1", port, username=USERNAME, password=PASSWORD, timeout=10)
    with SmtpTransport(config) as smtp:
        # The server offers no AUTH before TLS, so smtplib's login gives up before sending anything.
        with pytest.raises(TransientDeliveryError, match="SMTPNotSupportedError"):
            smtp.send(message, SENDER, RECIPIENT)

    assert handler.deliveries == []
    assert handler.logins == []


def test_a_configuration_asking_for_starttls_fails_on_a_server_that_does_not_offer_it(
        start_server: StartServer, message: EmailMessage) -> None:
    handler = Handler()
    # AUTH offered in the clear: a client that fell back to plain text would log in and send.
    port = start_server(handler, auth_require_tls=False)

    with SmtpTransport(tls_client(STARTTLS, port)) as smtp:
        with pytest.raises(TransientDeliveryError, match="SMTPNotSupportedError"):
            smtp.send(message, SENDER, RECIPIENT)

    assert handler.deliveries == []
    assert handler.logins == []


# --- connected to the address the SSRF guard checked ---------------------------------

@TLS_MODES
def test_a_relay_reached_at_its_checked_address_still_verifies_the_certificate_for_its_name(
        mode: str, certificates: Certificates, start_server: StartServer, monkeypatch: pytest.MonkeyPatch,
        message: EmailMessage) -> None:
    # mail.example answers 127.0.0.1 to the guard and 127.0.0.2 (nothing there) after;
    # the server's certificate names mail.example only.
    handler, port = tls_relay(start_server, monkeypatch, mode, certificates.elsewhere)
    rebinding(monkeypatch, "mail.example", "127.0.0.1", "127.0.0.2")

    with SmtpTransport(replace(tls_client(mode, port), host="mail.example"), host_check(True)) as smtp:
        smtp.send(message, SENDER, RECIPIENT)

    assert [(d.recipients, d.credentials) for d in handler.deliveries] == [
        ([RECIPIENT], (USERNAME.encode(), PASSWORD.encode()))]


@TLS_MODES
def test_a_relay_reached_at_its_checked_address_refuses_a_certificate_for_the_address_not_the_name(
        mode: str, certificates: Certificates, start_server: StartServer, monkeypatch: pytest.MonkeyPatch,
        message: EmailMessage) -> None:
    # The certificate is good for 127.0.0.1, where the connection goes, but not for
    # mail.example, the name configured: the name is what must be verified.
    handler, port = tls_relay(start_server, monkeypatch, mode, certificates.server)
    rebinding(monkeypatch, "mail.example", "127.0.0.1")

    with SmtpTransport(replace(tls_client(mode, port), host="mail.example"), host_check(True)) as smtp:
        with pytest.raises(TransientDeliveryError, match="SSLCertVerificationError"):
            smtp.send(message, SENDER, RECIPIENT)

    assert handler.deliveries == [] and handler.logins == []
