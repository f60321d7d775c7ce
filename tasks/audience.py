"""Tasks of the audience area (subscriber imports), on the ``default`` queue."""
from __future__ import annotations

from tasks.app import app  # noqa: F401
