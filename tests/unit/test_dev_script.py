"""scripts/dev.py: its own Azurite, the address announced only once the host listens, a taken port explained."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import dev


@pytest.fixture
def busy_port():
    """A port something listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_port_says_how_to_choose_another(busy_port: int, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(dev, "ensure_all", lambda: pytest.fail("nothing is set up for a port that is taken"))
    assert dev.main(["--port", str(busy_port)]) == 1
    out = capsys.readouterr().out
    assert f"порт {busy_port} уже занят" in out and f"python scripts/dev.py --port {busy_port + 1}" in out


def test_another_checkouts_azurite_on_10002_is_never_used() -> None:
    port, why = dev.choose_azurite_port(is_open=lambda p: p == dev.DEFAULT_AZURITE_PORT)
    assert port != dev.DEFAULT_AZURITE_PORT
    assert "чужой Azurite" in why and f"127.0.0.1:{port}" in why


def test_a_free_10002_is_used_so_that_use_development_storage_still_works() -> None:
    assert dev.choose_azurite_port(is_open=lambda p: False)[0] == dev.DEFAULT_AZURITE_PORT


def test_a_second_dev_script_of_the_same_checkout_cannot_take_the_lock(tmp_path: Path) -> None:
    first = dev.checkout_lock(tmp_path / "dev.lock")
    assert first is not None
    try:
        assert dev.checkout_lock(tmp_path / "dev.lock") is None
    finally:
        first.close()
    again = dev.checkout_lock(tmp_path / "dev.lock")
    assert again is not None
    again.close()


def test_a_host_that_exits_is_not_announced() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    try:
        assert dev.wait_until_listening("127.0.0.1", 9, process, timeout=30, is_open=lambda port, host: False) is False
    finally:
        process.wait(timeout=10)
    assert process.returncode == 2


def test_the_address_is_announced_once_the_port_answers(busy_port: int) -> None:
    knocks: list[int] = []

    def is_open(port: int, host: str) -> bool:
        knocks.append(port)
        return len(knocks) >= 3   # the host needs a moment before it listens

    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert dev.wait_until_listening("127.0.0.1", busy_port, process, timeout=30, is_open=is_open) is True
        assert knocks == [busy_port] * 3
    finally:
        process.communicate(timeout=10)


@pytest.mark.parametrize(("argv", "expected"), [([], "7071"), (["--port", "7072"], "7072"), (["--port=7073"], "7073"),
                                                (["--no-timers", "--port", "8000"], "8000")])
def test_serve_options_are_read_for_the_port(argv: list[str], expected: str) -> None:
    assert dev.option(argv, "--port", "7071") == expected


def test_a_wildcard_host_is_probed_on_loopback() -> None:
    assert dev.probe_address("0.0.0.0") == "127.0.0.1" and dev.probe_address("::") == "::1"
    assert dev.probe_address("192.0.2.7") == "192.0.2.7"
