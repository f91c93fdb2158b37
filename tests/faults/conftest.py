"""Fixtures of the storage, Graph, Telegram and concurrency fault tests.

Storage is the session's real Azurite behind a TcpProxy of the test's own, so "storage is
down" is instant and the data survives; Graph and Telegram are the loopback fakes.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from scripts.azurite import connection_string
from tests.fakes.fixtures import fake_graph  # noqa: F401 - a fixture for the tests
from tests.fakes.graph_server import FakeGraph
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.telegram_server import FakeTelegram

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
def proxied_store(storage_proxy: TcpProxy):
    """The data layer on fresh tables, behind the proxy (named apart from the root `store`)."""
    from functions import store as store_module

    store_module.init_db()
    return store_module


@pytest.fixture
def mail_env(fake_graph: FakeGraph, proxied_store, configure: Callable[..., None]) -> FakeGraph:  # noqa: F811
    """OMIS on fresh tables behind the proxy, reading the fake Graph mailbox."""
    configure(**fake_graph.env())
    return fake_graph


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    """A fake Bot API for one test."""
    with FakeTelegram() as fake:
        yield fake


class ShortTimeouts(requests.Session):
    """A requests session whose calls give up after `read` seconds (a real socket timeout)."""

    def __init__(self, read: float = 0.3) -> None:
        super().__init__()
        self.read = read

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = (2.0, self.read)
        return super().request(method, url, *args, **kwargs)


def _value_bytes(value: Any) -> int:
    """Return a property value's size as Table Storage counts it (strings in UTF-16)."""
    if isinstance(value, str):
        return len(value.encode("utf-16-le"))
    if isinstance(value, bytes):
        return len(value)
    return 8


def stored_entities() -> list[dict[str, Any]]:
    """Return every entity of the test's OMIS tables."""
    from functions.tables import TABLE_SUFFIXES, table

    return [entity for suffix in TABLE_SUFFIXES for entity in table(suffix).list_entities()]


def assert_within_table_limits() -> int:
    """Check every stored property (≤ 64 KiB) and entity (≤ 1 MiB); return the largest property size."""
    largest = 0
    for entity in stored_entities():
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
