"""The widget's texts reach the browser from the message catalog, written into the served script."""

from __future__ import annotations

import json
import re

import httpx

from channels.webchat.widget import CATALOG_LINE, STATIC
from core.i18n import translator


async def test_the_served_widget_carries_the_catalogs_texts(app_client: httpx.AsyncClient) -> None:
    r = await app_client.get("/channels/webchat/widget.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert CATALOG_LINE in (STATIC / "widget.js").read_text(encoding="utf-8")
    assert CATALOG_LINE not in r.text
    found = re.search(r"var CATALOG = (\{.*?\});\n", r.text)
    assert found is not None
    catalog = json.loads(found.group(1))
    assert set(catalog) == {"en", "ru"}
    assert catalog["ru"]["hello"] == translator("ru")("widget.hello")
    assert catalog["en"]["agent"] == "Operator" and catalog["ru"]["agent"] == "Оператор"
    assert catalog["ru"].keys() == catalog["en"].keys()
    # Nothing in Russian is left in the script itself: every text is the catalog's.
    assert not re.search("[А-Яа-яЁё]", (STATIC / "widget.js").read_text(encoding="utf-8"))
