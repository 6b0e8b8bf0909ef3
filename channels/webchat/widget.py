"""The widget script as served: its texts in every language come from the message catalog (core.i18n)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from core.i18n import all_texts

STATIC = Path(__file__).resolve().parent / "static"
# widget.js declares its catalog empty on this line; the served script has the catalog's `widget.*` texts there.
CATALOG_LINE = "var CATALOG = {};"
CATALOG_PREFIX = "widget."


@functools.cache
def script() -> bytes:
    """widget.js with `var CATALOG = {"en": {...}, "ru": {...}};` (read and built once per process)."""
    source = (STATIC / "widget.js").read_text(encoding="utf-8")
    if source.count(CATALOG_LINE) != 1:
        raise RuntimeError(f"widget.js must declare `{CATALOG_LINE}` exactly once")
    # ASCII-escaped JSON is a valid JavaScript literal whatever the texts hold.
    catalog = json.dumps(all_texts(CATALOG_PREFIX), ensure_ascii=True, sort_keys=True)
    return source.replace(CATALOG_LINE, f"var CATALOG = {catalog};").encode("utf-8")
