"""A process logging at DEBUG while it handles real requests, which look keys up in
the database, never writes a credential (moved from tests/unit, which does no I/O:
without the database the requests would fail before the lookups this checks)."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


_REQUESTS = """
from web.app import create_app
app = create_app()
client = app.test_client()
client.get("/api/v1/subscribers", headers={"X-API-Key": "esk_not_a_real_key_but_secret"})
client.get("/api/v1/subscribers", headers={"Authorization": "Bearer forged.jwt.token-secret"})
client.post("/api/v1/auth/token", json={"api_key": "esk_posted_key_secret"})
client.post("/api/v1/accounts", json={"name": "x"}, headers={"Authorization": "Bearer wrong-admin-secret"})
"""


def test_a_process_logging_at_debug_never_writes_keys_tokens_or_the_smtp_password() -> None:
    env = {**os.environ, "ESEQ_LOG_LEVEL": "DEBUG", "SMTP_PASSWORD": "smtp-password-secret"}
    done = subprocess.run([sys.executable, "-c", _REQUESTS], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert output.strip(), "DEBUG logging should have written something"
    for secret in ("esk_not_a_real_key_but_secret", "forged.jwt.token-secret", "esk_posted_key_secret",
                   "wrong-admin-secret", "smtp-password-secret", os.environ["SECRET_KEY"]):
        assert secret not in output
