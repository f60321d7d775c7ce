"""Text safe inside an SVG or XML element: the charts and the warming plot put
account-chosen names (sequence, plan, step) into their output."""
from __future__ import annotations

import re
from typing import Any
from xml.sax.saxutils import escape

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Any) -> str:
    """``value`` escaped, and without the control characters XML 1.0 forbids."""
    return escape(_NOT_XML.sub("", str(value)))
