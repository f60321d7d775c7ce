"""Rows for engine tests, committed so that workers on other connections see them (and DKIM keys).

Step dicts are in the API's shape (``{"type": ..., **config}``); they are stored the
way the sequences API stores them: ``Step.config`` is the dict without ``type``.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import text

from accounts.keys import create_account
from core.flow import record
from models import Enrollment, Provider, Sequence, Step, Subscriber, WarmingPlan, db


def account(name: str = "Alice") -> int:
    with db.session_scope() as s:
        acct, _key = create_account(s, name, f"{name.lower()}@sender.test", name)
        return acct.id


def account_row(created_at: datetime, name: str = "Alice") -> int:
    """An account written with only the columns every revision has, for a database
    migrated to an older revision than the models describe (or on SQLite, without
    the sealing keys the API's accounts need)."""
    with db.session_scope() as s:
        return int(s.execute(text("INSERT INTO accounts (name, from_email, from_name, created_at) "
                                  "VALUES (:name, :email, :name, :t) RETURNING id"),
                             {"name": name, "email": f"{name.lower()}@sender.test", "t": created_at}).scalar_one())


def subscribers(account_id: int, count: int, prefix: str = "user", **fields: Any) -> list[int]:
    """``count`` subscribers, ``<prefix><i>@example.test``; a second call in the same
    account needs a prefix of its own."""
    with db.session_scope() as s:
        rows = [Subscriber(account_id=account_id, email=f"{prefix}{i}@example.test", first_name=f"User{i}", **fields)
                for i in range(count)]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def sequence(account_id: int, steps: list[dict[str, Any]], settings: dict[str, Any] | None = None,
             status: str = "active") -> int:
    with db.session_scope() as s:
        seq = Sequence(account_id=account_id, name="Welcome", status=status, settings=settings or {})
        seq.steps = [Step(position=i, type=step["type"], config={k: v for k, v in step.items() if k != "type"})
                     for i, step in enumerate(steps)]
        s.add(seq)
        s.flush()
        return seq.id


def enroll(account_id: int, sequence_id: int, subscriber_ids: list[int], now: datetime) -> list[int]:
    """New enrollments at step 0, recorded as entering it (core.flow), as enrolling does."""
    with db.session_scope() as s:
        rows = [Enrollment(account_id=account_id, sequence_id=sequence_id, subscriber_id=sid, next_run_at=now,
                           enrolled_at=now, state={}) for sid in subscriber_ids]
        s.add_all(rows)
        s.flush()
        record(s, [(account_id, sequence_id, 0, "entered", len(rows))], now)
        return [r.id for r in rows]


def enrollment_rows(account_id: int, sequence_id: int, subscriber_ids: list[int], now: datetime) -> list[int]:
    """Enrollments written with only the columns every revision has (no ``held_out``,
    migration 0017), due at ``now``, for a database at an older revision."""
    with db.session_scope() as s:
        return [int(s.execute(text(
            "INSERT INTO enrollments (account_id, sequence_id, subscriber_id, instance_key, run, status, current_step,"
            " next_run_at, state, enrolled_at, updated_at) VALUES (:a, :q, :s, '', 1, 'active', 0, :t, '{}', :t, :t)"
            " RETURNING id"), {"a": account_id, "q": sequence_id, "s": sid, "t": now}).scalar_one())
            for sid in subscriber_ids]


def warming_plan(account_id: int, smtp_port: int, start_date: date, **settings: Any) -> int:
    """An SMTP provider on loopback named "new-ip" under a warming plan; returns the plan's id."""
    from warming.plan import PlanSettings

    parsed = PlanSettings.from_dict(settings)
    with db.session_scope() as s:
        provider = Provider(account_id=account_id, name="new-ip", kind="smtp", priority=1,
                            config={"host": "127.0.0.1", "port": smtp_port, "timeout": 5})
        s.add(provider)
        s.flush()
        plan = WarmingPlan(account_id=account_id, provider_id=provider.id, start_date=start_date,
                           settings=parsed.as_dict(), states={g: {"level": 1, "status": "warming"} for g in parsed.shares})
        s.add(plan)
        s.flush()
        return plan.id


# DKIM keys for the per-account key tests (API, preflight, signing).

def rsa_pem(bits: int = 1024) -> tuple[str, str]:
    """A private key in PEM and its DNS TXT record."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


def short_rsa_pem(bits: int = 512) -> str:
    """A real RSA key too short for verifiers, built from its primes: generators now
    refuse to make one, but keys this short are still out there to be pasted in."""
    import secrets

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def prime(size: int) -> int:
        while True:
            n = secrets.randbits(size) | (1 << (size - 1)) | (1 << (size - 2)) | 1
            if n % 65537 != 1 and all(pow(a, n - 1, n) == 1 for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31)):
                return n

    p, q = prime(bits // 2), prime(bits // 2)
    d = pow(65537, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p),
                                    rsa.RSAPublicNumbers(65537, p * q))
    return numbers.private_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()).decode()
