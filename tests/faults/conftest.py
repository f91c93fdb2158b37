"""Fixtures of the storage, Graph, Telegram and concurrency fault tests.

Storage is the session's real Azurite behind a TcpProxy of the test's own, so "storage is
down" is instant and the data survives; Graph and Telegram are the loopback fakes.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from functions.storage import Store
from scripts.azurite import connection_string
from tests.fakes.fixtures import fake_graph  # noqa: F401 - a fixture for the tests
from tests.fakes.graph_server import FakeGraph
from tests.fakes.tcp_proxy import TcpProxy
from tests.support import running

# Table Storage limits (learn.microsoft.com: "Understanding the Table service data model").
PROPERTY_MAX_BYTES = 64 * 1024
ENTITY_MAX_BYTES = 1024 * 1024


@pytest.fixture
def storage_proxy(azurite: str, configure: Callable[..., None]) -> Iterator[TcpProxy]:
    """Point OMIS at the session's Azurite through a proxy the test can cut and restore."""
    port = int(re.search(r"TableEndpoint=http://127\.0\.0\.1:(\d+)/", azurite).group(1))
    with TcpProxy(port) as proxy:
        configure(OMIS_TABLES_CONNECTION_STRING=connection_string(proxy.port))
        yield proxy


@pytest.fixture
def proxied_store(storage_proxy: TcpProxy) -> Store:
    """The process's Store on fresh tables, behind the proxy (named apart from the root `store`)."""
    from functions.storage import get_store

    found = get_store()
    found.init()
    return found


@pytest.fixture
def mail_env(fake_graph: FakeGraph, storage_proxy: TcpProxy, configure: Callable[..., None]  # noqa: F811
             ) -> FakeGraph:
    """OMIS on fresh tables behind the proxy, reading the fake Graph mailbox."""
    from functions.storage import get_store

    configure(**fake_graph.env())
    get_store().init()
    return fake_graph



def current_store() -> Store:
    """Return the Store of the settings now in force (configure() builds a new one)."""
    from functions.storage import get_store

    return get_store()


class ShortTimeouts(requests.Session):
    """A requests session whose calls give up after `read` seconds (a real socket timeout)."""

    def __init__(self, read: float = 0.3) -> None:
        super().__init__()
        self.read = read

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = (2.0, self.read)
        return super().request(method, url, *args, **kwargs)


class Runner:
    """Run callables in threads; keep their results and failures."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.failures: dict[str, BaseException] = {}
        self.threads: dict[str, threading.Thread] = {}

    def start(self, name: str, work: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                self.results[name] = work()
            except BaseException as exc:  # noqa: BLE001 - asserted by the test
                self.failures[name] = exc
        self.threads[name] = thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()

    def wait_for_any(self, timeout: float = 30) -> None:
        """Wait (bounded) until at least one thread has finished."""
        for _ in range(int(timeout / 0.05)):
            if any(not t.is_alive() for t in self.threads.values()):
                return
            next(iter(self.threads.values())).join(0.05)

    def join(self, timeout: float = 60) -> None:
        for thread in self.threads.values():
            thread.join(timeout)
        assert not any(t.is_alive() for t in self.threads.values()), "a thread did not finish"
        assert not self.failures, self.failures


def _value_bytes(value: Any) -> int:
    """Return a property value's size as Table Storage counts it (strings in UTF-16)."""
    if isinstance(value, str):
        return len(value.encode("utf-16-le", "surrogatepass"))
    if isinstance(value, bytes):
        return len(value)
    return 8


def stored_entities(store: Store) -> list[dict[str, Any]]:
    """Return every entity of the store's OMIS tables."""
    return [entity for table in (store.tables.requests, store.tables.mail) for entity in table.client.list_entities()]


def assert_within_table_limits(store: Store) -> int:
    """Check every stored property (≤ 64 KiB) and entity (≤ 1 MiB); return the largest property size."""
    largest = 0
    for entity in stored_entities(store):
        size = 4 + _value_bytes(entity["PartitionKey"]) + _value_bytes(entity["RowKey"])
        for name, value in entity.items():
            if name in ("PartitionKey", "RowKey"):
                continue
            value_size = _value_bytes(value)
            assert value_size <= PROPERTY_MAX_BYTES, (entity["RowKey"], name, value_size)
            largest = max(largest, value_size)
            size += 8 + 2 * len(name) + value_size
        assert size <= ENTITY_MAX_BYTES, (entity["RowKey"], size)
    return largest


@contextmanager
def serving(timeout: float | None = None) -> Iterator[tuple[str, int]]:
    """Serve the Function App with the local host (the real ThreadingHTTPServer) in a thread; yield its address.

    `timeout`: how long the host waits for a stalled client (its socket timeout), when not the default.
    """
    import function_app
    from functions.devhost import make_server

    server = make_server(function_app.app, "127.0.0.1", 0)
    if timeout is not None:
        server.RequestHandlerClass.timeout = timeout  # the class is this server's own (built per server)
    with running(server) as address:
        yield address
