"""Playwright for the browser tests: imported from here, skipped (or, in CI, failing) without it."""
from __future__ import annotations

import os

import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:
    if os.environ.get("OMIS_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("browser tests skipped: Playwright for Python is not installed", allow_module_level=True)

__all__ = ["Page", "expect"]
