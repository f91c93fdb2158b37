"""Small helpers shared by test modules."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

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


@contextlib.contextmanager
def running(server: Any) -> Iterator[tuple[str, int]]:
    """Run a local-host server (devhost.make_server) in a thread; yield its address; stop it after."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
