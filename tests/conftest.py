"""Shared fixtures: a real Azurite for the session, a fresh set of tables and settings per test."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from functions import settings as settings_module
from functions.storage import reset_stores
from scripts.azurite import connection_string, free_port, start_azurite, stop_azurite

ROOT = Path(__file__).resolve().parents[1]
_prefixes = itertools.count(1)


@pytest.fixture(autouse=True)
def no_local_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's local.settings.json (real tokens, perhaps) out of every test."""
    from functions.cli import main as dispatcher

    monkeypatch.setattr(dispatcher, "load_local_settings", lambda *args, **kwargs: [])


@pytest.fixture
def cli_main():
    """Run `python -m functions …` in process: cli_main([...]) -> exit status."""
    from functions.cli import main as dispatcher

    return dispatcher.main


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Start an in-memory Azurite on a free port for the whole session; yield its connection string."""
    port = free_port()
    log = tmp_path_factory.mktemp("azurite") / "azurite.log"
    proc = start_azurite(port, log=log)
    try:
        yield connection_string(port)
    finally:
        stop_azurite(proc)


def _base_env(conn: str, prefix: str) -> dict[str, str]:
    return {
        "OMIS_TABLES_CONNECTION_STRING": conn,
        "OMIS_TABLE_PREFIX": prefix,
        "OMIS_SECRET_KEY": "test-secret-key",
        "OMIS_TIMEZONE": "Europe/Moscow",
        "OMIS_DEV_USER": "Инженер",
    }


@pytest.fixture
def omis_env(azurite: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point OMIS at the session's Azurite with tables of its own; yield the environment used."""
    for name in list(os.environ):
        if name.startswith("OMIS_") or name == "AzureWebJobsStorage":
            monkeypatch.delenv(name, raising=False)
    env = _base_env(azurite, f"t{os.getpid()}n{next(_prefixes)}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings_module.reset_settings()
    reset_stores()
    yield env
    settings_module.reset_settings()
    reset_stores()


@pytest.fixture
def configure(omis_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """Set OMIS settings for the test on top of omis_env: configure(NAME=value, ...)."""
    from tests.support import set_env

    return lambda **env: set_env(monkeypatch, **env)


@pytest.fixture
def store(omis_env: dict[str, str]):
    """The data layer (the process's Store), on fresh tables."""
    from functions.storage import get_store

    found = get_store()
    found.init()
    return found


@pytest.fixture(scope="session")
def app_routes():
    """The Function App's HTTP routes, read once from its function objects."""
    import function_app
    from functions import devhost

    routes, _ = devhost.collect(function_app.app)
    return routes


@pytest.fixture
def call(app_routes, omis_env):
    """Call the app as the host would: call(method, path, body=b"", headers={}) -> HttpResponse."""
    from functions import devhost
    from functions.storage import get_store

    get_store().init()

    def _call(method: str, path: str, body: bytes | str = b"", headers: dict[str, str] | None = None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        hdrs = {"Host": "localhost:7071", **(headers or {})}
        if body:
            hdrs.setdefault("Content-Length", str(len(body)))
        return devhost.dispatch(app_routes, method, f"http://localhost:7071{path}", hdrs, body)

    return _call


@pytest.fixture
def telegram():
    """Run a fake Bot API on loopback for one test."""
    from tests.fakes.telegram_server import FakeTelegram

    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def bot(configure, telegram):
    """Point OMIS at the fake Bot API."""
    configure(**telegram.settings_env())
    return telegram
