"""Tasks of the sequencing area (the tick and advance), on the ``default`` queue."""
from __future__ import annotations

from tasks.app import app  # noqa: F401
