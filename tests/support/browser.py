"""Debian's Chromium driven by Playwright, and where the screenshots of a test run go."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="Chromium is not installed (scripts/system-deps.sh)")

# `make screenshots` sets this to docs/screenshots to refresh the README's pictures; otherwise a test's
# screenshots go to its own temporary folder and the working tree is left alone.
SCREENSHOTS_ENV = "SWITCHBOARD_SCREENSHOTS_DIR"


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium (Playwright's Browser), closed when the block exits."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def shot(page: Any, tmp_path: Path, name: str) -> Path:
    """Screenshot the page into $SWITCHBOARD_SCREENSHOTS_DIR when set (else tmp_path) as <name>.png."""
    image = await page.screenshot(full_page=False)
    assert len(image) > 5000, "an empty-looking screenshot"
    target = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path) / f"{name}.png"
    await asyncio.to_thread(_save, target, image)
    return target


def _save(path: Path, image: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image)
