"""The development mail catcher (delivery/dev_mailbox.py) on real parts: the send
path delivering to it over SMTP, its Maildir, the /dev/mail page and /health, and the
settings that switch it on only on `make run`'s bare default."""
from __future__ import annotations

import dataclasses
import re
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from delivery import dev_mailbox
from delivery.batch import send_batch
from models import Event, Message, db
from settings import get_settings, load_settings
from tasks.sending import RECORDER
from tests.support.sending import queue_emails
from tests.support.smtp import free_port


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[Any]:
    folder, port = tmp_path / "dev_mail", free_port()
    server = dev_mailbox.catcher(folder, port)
    server.start()
    try:
        yield dataclasses.replace(get_settings(), smtp_host=None, dev_smtp_port=port, dev_mail_dir=folder)
    finally:
        server.stop()


@pytest.fixture
def dev_client(catcher: Any) -> Iterator[Any]:
    """The web app as `make run` builds it with the catcher on."""
    from web.app import create_app

    application = create_app(catcher)
    application.config["TESTING"] = True
    yield application.test_client()


def send(port: int, subject: str, html: str | None = "<p>hello</p>", text: str | None = "hello",
         to: str = "reader@example.test") -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "news@sender.test", to, subject
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    with smtplib.SMTP(dev_mailbox.HOST, port) as smtp:
        smtp.send_message(message)


# --- settings -----------------------------------------------------------------------------------------------


def test_the_catcher_is_on_only_on_the_bare_embedded_default(tmp_path: Path) -> None:
    bare = {"ESEQ_VAR_DIR": str(tmp_path), "ESEQ_DEV_SMTP_PORT": "2526"}
    assert load_settings(bare).dev_smtp_port == 2526
    assert load_settings(bare).dev_mail_dir == tmp_path / "dev_mail"
    with_database = load_settings({**bare, "DATABASE_URL": "postgresql://db.example.test/eseq"})
    assert (with_database.dev_smtp_port, with_database.dev_mail_dir) == (None, None)
    with_relay = load_settings({**bare, "SMTP_HOST": "relay.example.test"})
    assert (with_relay.dev_smtp_port, with_relay.dev_mail_dir) == (None, None)
    assert load_settings({"ESEQ_VAR_DIR": str(tmp_path)}).dev_smtp_port is None


def test_make_run_gives_the_catcher_a_port_only_without_a_database_url_or_relay(tmp_path: Path) -> None:
    from scripts.run_local import prepare_env

    assert int(prepare_env({"ESEQ_VAR_DIR": str(tmp_path / "a")})["ESEQ_DEV_SMTP_PORT"]) > 0
    assert "ESEQ_DEV_SMTP_PORT" not in prepare_env({"ESEQ_VAR_DIR": str(tmp_path / "b"),
                                                    "DATABASE_URL": "postgresql://db.example.test/eseq"})
    assert "ESEQ_DEV_SMTP_PORT" not in prepare_env({"ESEQ_VAR_DIR": str(tmp_path / "c"),
                                                    "SMTP_HOST": "relay.example.test"})


# --- the send path --------------------------------------------------------------------------------------------


def test_an_account_without_providers_delivers_to_the_catcher_as_dev_catcher(catcher: Any) -> None:
    ids = queue_emails(2)
    assert send_batch(ids, catcher, RECORDER.start) == {"sent": 2}
    with db.session_scope() as s:
        assert {m.provider for m in s.scalars(select(Message))} == {dev_mailbox.PROVIDER_NAME}
    mails = dev_mailbox.caught(catcher.dev_mail_dir)
    assert sorted(m.recipients[0] for m in mails) == ["user0@example.test", "user1@example.test"]
    assert {m.subject for m in mails} == {"Hi User0", "Hi User1"}
    assert all("see the sale" in m.body("html") and "/t/c/" in m.body("html") for m in mails)  # type: ignore[operator]


def test_without_the_catcher_or_a_relay_mail_still_waits_as_deferred() -> None:
    ids = queue_emails(1)
    bare = dataclasses.replace(get_settings(), smtp_host=None, dev_smtp_port=None, dev_mail_dir=None)
    assert send_batch(ids, bare, RECORDER.start) == {"held": 1}
    with db.session_scope() as s:
        [(status, error)] = s.execute(select(Message.status, Message.error)).all()
    assert status == "deferred" and "no email provider configured" in error


def test_the_open_pixel_of_a_caught_email_may_load_in_a_page_of_another_origin(catcher: Any, dev_client: Any) -> None:
    """A browser showing the email (webmail, or /dev/mail's sandboxed frame, whose origin
    is opaque) loads the pixel cross-origin: a same-origin resource policy drops it."""
    ids = queue_emails(1)
    send_batch(ids, catcher, RECORDER.start)
    [mail] = dev_mailbox.caught(catcher.dev_mail_dir)
    pixel = re.search(r'<img src="https?://[^/"]+(/t/o/[^"]+)"', mail.body("html") or "")
    assert pixel is not None
    response = dev_client.get(pixel.group(1))
    assert response.status_code == 200 and response.mimetype == "image/gif"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    with db.session_scope() as s:
        assert s.scalar(select(Event.name).where(Event.name == "opened")) == "opened"


def test_caught_mail_is_kept_across_a_restart_of_the_catcher(catcher: Any) -> None:
    send(catcher.dev_smtp_port, "Before the restart")
    restarted = dev_mailbox.catcher(catcher.dev_mail_dir, free_port())
    restarted.start()
    try:
        send(restarted.port, "After the restart")
    finally:
        restarted.stop()
    assert [m.subject for m in dev_mailbox.caught(catcher.dev_mail_dir)] == ["After the restart", "Before the restart"]


# --- /dev/mail and /health ------------------------------------------------------------------------------------


def test_the_page_lists_caught_mail_newest_first_with_recipients(catcher: Any, dev_client: Any) -> None:
    for n in range(3):
        send(catcher.dev_smtp_port, f"Email number {n}", to=f"r{n}@example.test")
    page = dev_client.get("/dev/mail").get_data(as_text=True)
    assert re.findall(r"Email number (\d)", page) == ["2", "1", "0"]
    assert "<td>r1@example.test</td>" in page
    assert "Development delivery" in page


def test_one_email_shows_its_headers_text_and_html_in_a_sandboxed_frame(catcher: Any, dev_client: Any) -> None:
    html = '<p onclick="x()">Hi &amp; welcome</p><script>alert("owned")</script>'
    send(catcher.dev_smtp_port, "Welcome <Ada>", html=html, text="Plain words & more")
    [mail] = dev_mailbox.caught(catcher.dev_mail_dir)
    response = dev_client.get(f"/dev/mail/{mail.key}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<th>Subject</th><td>Welcome &lt;Ada&gt;</td>" in page
    assert "<th>X-Original-To</th><td>reader@example.test</td>" in page
    assert "<pre>Plain words &amp; more" in page
    frame = re.search(r'<iframe sandbox srcdoc="([^"]*)"', page)
    assert frame is not None, page
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in frame.group(1)
    assert "<script" not in page  # the email's markup exists only inside the escaped srcdoc
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    source = dev_client.get(f"/dev/mail/{mail.key}/source")
    assert source.mimetype == "text/plain" and b"Subject: Welcome <Ada>" in source.data


def test_an_email_with_only_a_text_part_says_it_has_no_html(catcher: Any, dev_client: Any) -> None:
    send(catcher.dev_smtp_port, "Text only", html=None, text="just words")
    [mail] = dev_mailbox.caught(catcher.dev_mail_dir)
    page = dev_client.get(f"/dev/mail/{mail.key}").get_data(as_text=True)
    assert "No HTML part." in page and "<pre>just words" in page


def test_an_unknown_or_crafted_key_is_a_404(catcher: Any, dev_client: Any) -> None:
    send(catcher.dev_smtp_port, "Here")
    for key in ("nope", "..", "..%2F..%2Fsecret_key", "new"):
        assert dev_client.get(f"/dev/mail/{key}").status_code == 404, key
        assert dev_client.get(f"/dev/mail/{key}/source").status_code == 404, key


def test_the_page_answers_only_on_loopback(catcher: Any, dev_client: Any) -> None:
    assert dev_client.get("/dev/mail").status_code == 200
    assert dev_client.get("/dev/mail", environ_base={"REMOTE_ADDR": "192.0.2.10"}).status_code == 404


def test_health_says_delivery_is_the_development_catcher(dev_client: Any) -> None:
    body = dev_client.get("/health").get_json()
    assert body["status"] == "ok" and body["delivery"] == "development catcher"


def test_without_the_catcher_there_is_no_page_and_health_says_nothing_of_it(client: Any) -> None:
    assert client.get("/dev/mail").status_code == 404
    assert "delivery" not in client.get("/health").get_json()
