"""The pre-flight check's SpamAssassin score from a real spamd on loopback.

GTUBE, SpamAssassin's standard test string, scores 1,000: a report carrying that
score was made by spamd reading the email. A spamd that does not answer gives no
score at all, never a clean one (spamc on its own would print "0/0" and exit 0).
spamd comes from Debian's spamd package (scripts/ensure_services.sh installs it
when it can); without it these tests are skipped, and say so.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from content.preflight import Spamd
from tests.support.smtp import free_port
from tests.support.waiting import wait_for

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
WELCOME = {"type": "email", "subject": "Welcome, {{ subscriber.first_name }}",
           "html": "<p>Thanks for joining us. Your first guide arrives tomorrow.</p>"}

pytestmark = pytest.mark.skipif(not (shutil.which("spamd") and shutil.which("spamc")),
                                reason="SpamAssassin's spamd/spamc are not installed (apt-get install spamd spamc)")


@pytest.fixture(scope="module")
def spamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spamd]:
    port = free_port()
    log = tmp_path_factory.mktemp("spamd") / "spamd.log"
    with Path(log).open("wb") as out:
        server = subprocess.Popen([shutil.which("spamd") or "spamd", "--listen", f"127.0.0.1:{port}", "--max-children",
                                   "1", "--username", "nobody", "--syslog", "stderr"], stdout=out,
                                  stderr=subprocess.STDOUT)
    running = Spamd("127.0.0.1", port)
    try:
        wait_for(lambda: running.score(b"Subject: ping\r\n\r\nping\r\n") is not None, 60, "spamd to answer",
                 detail=lambda: log.read_text(errors="replace")[-2000:])
        yield running
    finally:
        server.terminate()
        server.wait(20)


def test_spamd_scores_the_message_it_is_given(spamd):
    clean = spamd.score(b"From: news@shop.example\r\nTo: reader@example.com\r\nSubject: Your order\r\n\r\n"
                        b"Your order has shipped.\r\n")
    spam = spamd.score(f"From: news@shop.example\r\nTo: reader@example.com\r\nSubject: Hi\r\n\r\n{GTUBE}\r\n".encode())
    assert clean is not None and clean < 5
    assert spam is not None and spam >= 1000


def test_a_spamd_that_does_not_answer_gives_no_score_rather_than_a_clean_one():
    assert Spamd("127.0.0.1", free_port(), timeout=5).score(b"Subject: x\r\n\r\nx\r\n") is None


def test_the_preflight_report_carries_spamassassins_score(client, app, alice, spamd, monkeypatch):
    settings = replace(app.config["ESEQ_SETTINGS"], spamd_host=spamd.host, spamd_port=spamd.port)
    monkeypatch.setitem(app.config, "ESEQ_SETTINGS", settings)
    spammy = {**WELCOME, "html": f"<p>Thanks for joining us.</p><p>{GTUBE}</p>"}
    sid = client.post("/api/v1/email-sequences", json={"name": "Onboarding", "steps": [WELCOME, spammy]},
                      headers=alice.headers).get_json()["id"]
    report = client.get(f"/api/v1/email-sequences/{sid}/preflight", headers=alice.headers).get_json()
    welcome, flagged = report["emails"]
    assert flagged["passed"] is False and flagged["score"] >= 1000
    assert any(r.startswith("SpamAssassin score") for r in flagged["reasons"])
    # The sent form of a plain welcome (headers, both parts) is not marked down.
    assert welcome["passed"] is True, welcome
    response = client.post(f"/api/v1/email-sequences/{sid}/activate", json={}, headers=alice.headers)
    assert response.status_code == 422 and list(response.get_json()["errors"]["preflight"]) == ["steps.1"]
