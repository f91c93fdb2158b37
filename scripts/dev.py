"""Start OMIS locally: this checkout's own Azurite (data kept in .azurite/), the tables, then the local host.

Usage: python scripts/dev.py [serve options, e.g. --port 7072]

The Azurite is always this checkout's: started here, on 10002 (what `UseDevelopmentStorage=true`
means) when that port is free, else on a free port, and stopped on exit. One that already
answers on 10002 belongs to someone else and is never used. A lock in .azurite/ keeps a second
dev.py of the same checkout from starting a second Azurite on the same data. The address is
announced once the host really listens.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.azurite import connection_string, free_port, port_open, start_azurite, stop_azurite
from scripts.setup import ROOT, ensure_all, say

AZURITE_DIR = ROOT / ".azurite"
DEFAULT_AZURITE_PORT = 10002   # the table port of UseDevelopmentStorage=true
DEFAULT_PORT = 7071
STORAGE_SETTINGS = ("OMIS_TABLES_CONNECTION_STRING", "OMIS_TABLES_ENDPOINT")


def option(argv: Sequence[str], name: str, default: str) -> str:
    """Return the value of `--name V` or `--name=V` among serve's options."""
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def probe_address(host: str) -> str:
    """Return where to knock to see whether a host bound to `host` listens."""
    wildcard = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}  # noqa: S104
    return wildcard.get(host, host)


def port_taken_message(port: int) -> str:
    """Say that the host's port is taken and how to choose another."""
    return (f"порт {port} уже занят (другой OMIS, Functions Core Tools или другая программа). "
            f"Выберите другой: python scripts/dev.py --port {port + 1}")


def choose_azurite_port(is_open: Callable[[int], bool] = port_open) -> tuple[int, str]:
    """Return the port for this checkout's Azurite and a sentence saying why that one."""
    if not is_open(DEFAULT_AZURITE_PORT):
        return DEFAULT_AZURITE_PORT, f"запускаю Azurite этой копии проекта на 127.0.0.1:{DEFAULT_AZURITE_PORT}"
    port = free_port()
    return port, (f"на порту {DEFAULT_AZURITE_PORT} уже отвечает чужой Azurite (или другая программа) — "
                  f"его данные не трогаю; запускаю Azurite этой копии проекта на 127.0.0.1:{port}")


def checkout_lock(path: Path) -> IO[str] | None:
    """Hold a lock on a file while this process lives; None when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def wait_until_listening(address: str, port: int, process: subprocess.Popen[bytes], timeout: float = 120,
                         is_open: Callable[[int, str], bool] = port_open) -> bool:
    """Wait until the host accepts connections (True) or exits or takes too long (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if is_open(port, address):
            return True
        time.sleep(0.1)
    return False


def _shown(address: str) -> str:
    return "localhost" if address in ("127.0.0.1", "::1") else address


def _running_address() -> str:
    """Return ", адрес: http://…" of the dev.py that holds the lock, when it wrote one."""
    try:
        state = json.loads((AZURITE_DIR / "dev.json").read_text(encoding="utf-8"))
        return f", адрес: http://localhost:{int(state['port'])}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def main(argv: Sequence[str] | None = None) -> int:
    """Start Azurite, create the tables and run the local host until Ctrl-C; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    port_text = option(args, "--port", str(DEFAULT_PORT))
    port = int(port_text) if port_text.isdigit() else DEFAULT_PORT
    address = probe_address(option(args, "--host", "127.0.0.1"))
    if port_open(port, address):
        say(port_taken_message(port))
        return 1
    lock = checkout_lock(AZURITE_DIR / "dev.lock")
    if lock is None:
        say("OMIS этой копии проекта уже запущен другим scripts/dev.py (его Azurite держит .azurite/)"
            f"{_running_address()}. Остановите его (Ctrl-C в его окне) или откройте его адрес.")
        return 1
    python = ensure_all()
    settings = ROOT / "local.settings.json"
    if not settings.exists():
        shutil.copyfile(ROOT / "local.settings.example.json", settings)
        say("создан local.settings.json из local.settings.example.json")
    env = dict(os.environ)
    azurite = None
    own_storage = [name for name in STORAGE_SETTINGS if env.get(name, "").strip()]
    try:
        if own_storage:
            say(f"хранилище задано в окружении ({', '.join(own_storage)}): Azurite не запускаю, использую его")
        else:
            azurite_port, why = choose_azurite_port()
            say(f"{why} (данные в .azurite/, журнал в .azurite/azurite.log)")
            azurite = start_azurite(azurite_port, location=AZURITE_DIR, log=AZURITE_DIR / "azurite.log")
            env["OMIS_TABLES_CONNECTION_STRING"] = connection_string(azurite_port)
            (AZURITE_DIR / "dev.json").write_text(json.dumps({"azurite_port": azurite_port, "port": port}),
                                                  encoding="utf-8")
            if azurite_port != DEFAULT_AZURITE_PORT:
                say("для команд python -m functions в другом окне задайте "
                    f"OMIS_TABLES_CONNECTION_STRING={connection_string(azurite_port)}")
        subprocess.run([str(python), "-m", "functions", "init"], cwd=ROOT, env=env, check=True)
        host = subprocess.Popen([str(python), "-m", "functions", "serve", *args], cwd=ROOT, env=env)
        try:
            if not wait_until_listening(address, port, host):
                _stop(host)
                say(f"локальный хост не запустился (код {host.returncode}); причина — выше. "
                    + (port_taken_message(port) if port_open(port, address) else ""))
                return host.returncode or 1
            say(f"OMIS: http://{_shown(address)}:{port} (остановка: Ctrl-C)")
            return host.wait()
        finally:
            _stop(host)
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        return exc.returncode
    finally:
        if azurite is not None:
            say("останавливаю Azurite (данные сохранены)")
            stop_azurite(azurite)
        (AZURITE_DIR / "dev.json").unlink(missing_ok=True)
        lock.close()


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    # Stopped from outside (an IDE, `kill`): clean up as after Ctrl-C, Azurite's data saved.
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    sys.exit(main())
