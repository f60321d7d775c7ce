"""The Procfile as Procfile runners (honcho, Heroku) read it: what the e2e tests and
the benchmarks start, so they run exactly the command lines operators run."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "Procfile"
_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def procfile() -> dict[str, str]:
    """Process type -> command, skipping comments."""
    entries: dict[str, str] = {}
    for line in PROCFILE.read_text().splitlines():
        match = _LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            entries[match.group(1)] = match.group(2)
    return entries


def sh(command: str) -> list[str]:
    """A Procfile line's argv: the lines run under sh, as the runners run them."""
    return ["sh", "-c", command]
