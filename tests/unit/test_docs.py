"""The documentation tells the truth about the code beside it: every setting the
platform reads is in the README's configuration table, and every file the docs
link to is in the repository (the project explains itself from its own files)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def configuration_table() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Configuration")
    return readme[start:readme.index("\n## ", start + 1)]


def variables_read() -> set[str]:
    """The environment variables settings.py parses, `make run` reads, and logging reads."""
    names = set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', (ROOT / "settings.py").read_text()))
    names |= set(re.findall(r'env\.get\("([A-Z][A-Z0-9_]+)"', (ROOT / "scripts" / "run_local.py").read_text()))
    names |= set(re.findall(r'environ\.get\("(ESEQ_[A-Z0-9_]+)"', (ROOT / "observability" / "logs.py").read_text()))
    return names


def test_the_configuration_table_lists_every_setting_the_platform_reads() -> None:
    table = configuration_table()
    names = variables_read()
    assert {"DATABASE_URL", "ESEQ_DEV_SMTP_PORT", "ESEQ_LOG_LEVEL", "ESEQ_BIND"} <= names  # the scan finds them
    assert sorted(name for name in names if f"`{name}`" not in table) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_document_links_to_is_in_the_repository(doc: Path) -> None:
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", doc.read_text())]
    local = [t for t in targets if t and not re.match(r"[a-z]+:", t)]
    missing = [t for t in local if not (doc.parent / t).resolve().is_relative_to(ROOT)
               or not (doc.parent / t).exists()]
    assert missing == []


def test_no_file_in_the_repository_refers_to_files_outside_it() -> None:
    found = subprocess.run(["git", "grep", "-n", "-I", "-e", "../shared", "-e", "ARCHITECTURE.md", "-e", "STYLE.md",
                            "--", ".", ":!tests/unit/test_docs.py"], cwd=ROOT, capture_output=True, text=True)
    assert found.stdout == ""


def test_the_documented_signature_check_is_the_code_the_webhook_tests_run() -> None:
    """docs/webhooks.md shows receivers the check that tests/integration runs against
    real calls (scripts/verify_webhook_example.py): the two must not drift apart."""
    def example(text: str) -> str:
        return text[text.index("import hashlib"):text.index("for s in signatures)")]

    documented = example((ROOT / "docs" / "webhooks.md").read_text())
    tested = example((ROOT / "scripts" / "verify_webhook_example.py").read_text())
    assert documented == tested
