"""The console's Content-Security-Policy allows scripts and styles from files only:
a template with an inline script, a style attribute or an on...= handler would
break in the browser (blocked), so none may have one."""
from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "console" / "templates"
INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "style attribute": re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I),
    "style element": re.compile(r"<style\b", re.I),
    "event handler attribute": re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def test_no_template_needs_what_the_csp_blocks() -> None:
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        found += [f"{path.relative_to(TEMPLATES)}: {what}" for what, pattern in INLINE.items() if pattern.search(text)]
    assert not found, found
    assert len(list(TEMPLATES.rglob("*.html"))) >= 8  # the walk found the templates


def test_the_check_catches_each_kind() -> None:
    for sample in ('<script>alert(1)</script>', '<p style="color:red">', "<style>p{}</style>",
                   '<button onclick="x()">', '<a href="javascript:x()">'):
        assert any(p.search(sample) for p in INLINE.values()), sample
    assert not any(p.search('<script src="/console/static/console.js" defer></script>') for p in INLINE.values())
