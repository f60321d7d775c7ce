"""settings.py and celeryconfig.py are top-level modules, which import-linter cannot
take as roots (.importlinter checks the packages): these hold them to their place.
settings sits under every package but core (whose DKIM key checks it runs on the
operator's key), so anything may read the settings without closing a loop."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {path.parent.name for path in ROOT.glob("*/__init__.py")} | {path.stem for path in ROOT.glob("*.py")}


def our_imports(path: Path) -> set[str]:
    """The top-level names of ours that the module at ``path`` imports anywhere in
    it, inside functions included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


def test_settings_imports_nothing_of_ours_but_core():
    assert our_imports(ROOT / "settings.py") <= {"core"}


def test_the_celery_configuration_imports_only_the_beat_schedule_and_the_settings():
    assert our_imports(ROOT / "celeryconfig.py") <= {"schedules", "settings"}


def test_the_check_sees_an_import_made_inside_a_function(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os\n\ndef late():\n    from delivery.dkim import is_dns_name\n")
    assert our_imports(probe) == {"delivery"}
