"""Answers a well-behaved model would give, read off the request the platform sent:
the schema's name says what is asked, the prompt says how many. For the fake
chat-completions server's ``answerer``."""
from __future__ import annotations

import json
import re

from tests.support.fake_openai import ChatRequest


def _count(prompt: str, default: int) -> int:
    found = re.search(r"exactly (\d+)", prompt)
    return int(found.group(1)) if found else default


def email(n: int = 1, subject: str | None = None) -> dict:
    return {"subject": subject or f"Getting started, part {n}",
            "preheader": "A short note from the team",
            "html": f'<p>Hi {{{{ subscriber.first_name | default("there", true) }}}},</p><p>Part {n} of how '
                    'to get going: set up your first project.</p><p><a href="https://example.com/start">Open '
                    'your dashboard</a></p>',
            "text": f'Hi {{{{ subscriber.first_name | default("there", true) }}}}, part {n}: set up your first '
                    'project. https://example.com/start'}


def sequence(emails: int) -> dict:
    steps: list[dict] = []
    for n in range(1, emails + 1):
        if steps:
            steps.append({"type": "delay", "days": 2})
        steps.append({"type": "email", **email(n)})
    return {"name": "Welcome to Acme", "description": "Onboarding for new sign-ups", "exit_event": "purchase",
            "steps": steps}


def good(request: ChatRequest) -> str:
    """Valid JSON for whatever the request asks."""
    name = request.schema_name
    prompt = request.prompt
    if name == "email_sequence":
        return json.dumps(sequence(_count(prompt, 5)))
    if name == "subject_lines":
        count = _count(prompt, 5)
        return json.dumps({"subject_lines": [f"Your first week, idea {i}" for i in range(1, count + 1)]})
    if name == "fixed_email":
        return json.dumps({**email(1, "A quick note about your first project"), "cannot_fix": None})
    return json.dumps(email(1, "A calmer hello"))
