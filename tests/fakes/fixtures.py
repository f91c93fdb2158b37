"""pytest fixtures for the fake Graph; tests/conftest.py may import them from here."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from functions.mail.graph import forget_sign_in_apps
from functions.settings import Settings, load_settings

from .graph_server import FakeGraph


@pytest.fixture
def fake_graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGraph]:
    """Run a fake Entra + Graph on loopback HTTPS, trusted through REQUESTS_CA_BUNDLE."""
    with FakeGraph() as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        try:
            yield fake
        finally:
            forget_sign_in_apps()


@pytest.fixture
def graph_settings(fake_graph: FakeGraph) -> Callable[..., Settings]:
    """Build Settings pointing at the fake Graph; keyword arguments override OMIS_* values."""
    def make(**overrides: str) -> Settings:
        return load_settings(fake_graph.env(**overrides))
    return make


@pytest.fixture
def recorded_sleeps() -> tuple[list[float], Callable[[float], None]]:
    """Return a list and a sleep function that records waits instead of waiting."""
    waits: list[float] = []
    return waits, waits.append
