"""Headless Chromium (Debian's, driven by Playwright) for the console's browser tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Where each page's screenshot goes (git-ignored).
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "console"


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no {CHROMIUM}: `make test` installs Debian's chromium when run as root; "
            "here it could not, so the browser tests do not run"
        )


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    require_chromium()
    # Playwright gives every launch a fresh profile of its own (a new user data dir).
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-quic",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            await browser.close()
