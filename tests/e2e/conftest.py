"""Browser test fixtures: the local host on Azurite, and Debian's Chromium driven by Playwright."""
from __future__ import annotations

import os

import pytest

from .server import CHROMIUM, CHROMIUM_ARGS, LiveServer, browser_missing, server_env, start_server


@pytest.fixture(scope="session")
def live_server(azurite: str, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    """`python -m functions serve --no-timers` on tables of its own; yield it running."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    server = start_server(server_env(azurite, f"e2e{os.getpid()}"), log)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def live_store(live_server: LiveServer):
    """A Store on the live server's tables (to keep mail there as the mail pass would)."""
    from .seed import store_for

    return store_for(live_server.env)


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the session; fail under OMIS_REQUIRE_BROWSER=1 when it is missing, else skip."""
    reason = browser_missing()
    if reason:
        if os.environ.get("OMIS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (OMIS_REQUIRE_BROWSER=1) but cannot run: {reason}", pytrace=False)
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _tab(browser, live_server: LiveServer, **options):
    """Open a fresh browser context (own cookies) on the live server; yield its tab; close it after."""
    context = browser.new_context(base_url=live_server.base_url, locale="ru-RU", **options)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser, live_server: LiveServer):
    """A fresh browser tab (own cookies) on a laptop-sized screen, Russian locale."""
    yield from _tab(browser, live_server, viewport={"width": 1366, "height": 900})


@pytest.fixture
def phone(browser, live_server: LiveServer):
    """A fresh tab on a phone-sized screen (390 × 844, touch), Russian locale."""
    yield from _tab(browser, live_server, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
