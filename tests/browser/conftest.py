"""The browser tier: the ComfyUI frontend the runtime pins (served by the session's ComfyUI), driven by Playwright
on Debian's Chromium (headless; a fresh profile per session). Chromium missing is a failure, not a skip:
`make test` installs it (`make browser-deps`)."""

from __future__ import annotations

import pytest

from tools.frontend import ChromiumMissing, apply_settings, launch, open_app, require_chromium


@pytest.fixture(scope="session")
def chromium():
    try:
        return require_chromium()
    except ChromiumMissing as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)  # outside the except: the message alone, no chained traceback


@pytest.fixture(scope="session")
def browser_context(chromium, comfy, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    apply_settings(comfy)
    with sync_playwright() as pw:
        context = launch(pw, tmp_path_factory.mktemp("chromium_profile"))
        yield context
        context.close()


@pytest.fixture
def app_page(browser_context, comfy):
    """A fresh page with the app loaded; uncaught errors, and console errors about this pack, are collected in
    page.errors."""
    page = browser_context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.errors.append(msg.text)
            if msg.type == "error" and "hierafash" in msg.text.lower() else None)
    open_app(page, comfy.url)
    yield page
    page.close()
