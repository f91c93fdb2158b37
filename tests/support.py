"""Small helpers shared by test modules."""
from __future__ import annotations

import pytest

from functions.settings import reset_settings
from functions.storage import reset_stores


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Set OMIS settings for one test and make the next get_settings() read them."""
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    reset_stores()


def fresh_store():
    """Return the Store of the settings configured last, its tables created (the `store` fixture holds earlier ones)."""
    from functions.storage import get_store

    found = get_store()
    found.init()
    return found
