"""Start and stop a local Azurite table service (shared by the dev command, the tests and benchmarks)."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "devstoreaccount1"
# The emulator's well-known development key (public, documented by Microsoft; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(port: int, host: str = "127.0.0.1") -> str:
    """Return the connection string of an Azurite table service on a port."""
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint=http://{host}:{port}/{ACCOUNT};")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Say whether something accepts connections on a port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def azurite_command() -> list[str]:
    """Return the command that runs the project's pinned azurite-table; explain if it is missing."""
    bin_dir = ROOT / "node_modules" / ".bin"
    exe = shutil.which("azurite-table", path=str(bin_dir))
    if exe is None:
        raise RuntimeError("Azurite не установлен: выполните `npm ci` в корне проекта (нужен Node.js 20+).")
    return [exe]


def start_azurite(port: int, location: Path | None = None, log: Path | None = None) -> subprocess.Popen:
    """Start azurite-table on 127.0.0.1:port (in memory unless a location is given) and wait for it."""
    cmd = [*azurite_command(), "--tableHost", "127.0.0.1", "--tablePort", str(port),
           "--disableTelemetry", "--skipApiVersionCheck", "--loose"]
    if location is None:
        cmd.append("--inMemoryPersistence")
    else:
        location.mkdir(parents=True, exist_ok=True)
        cmd += ["--location", str(location)]
    # The child keeps its own handle on the log; ours is closed once it is started. Its own
    # process group: Ctrl-C in the console must not stop it before stop_azurite saves its data.
    with (log.open("ab") if log else contextlib.nullcontext(subprocess.DEVNULL)) as out:
        if sys.platform == "win32":
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=str(ROOT), creationflags=subprocess.CREATE_NEW_PROCESS_GROUP)
        else:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=str(ROOT), start_new_session=True)
    deadline = time.monotonic() + 60
    while not port_open(port):
        if proc.poll() is not None:
            raise RuntimeError(f"Azurite завершился при запуске (код {proc.returncode}); команда: {' '.join(cmd)}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"Azurite не ответил на порту {port} за 60 секунд")
        time.sleep(0.1)
    return proc


def stop_azurite(proc: subprocess.Popen, timeout: float = 15) -> None:
    """Stop Azurite with Ctrl-C (SIGINT), which is what makes it save its data, then wait."""
    if proc.poll() is not None:
        return
    try:
        if sys.platform == "win32":
            proc.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, ProcessLookupError, OSError):
        proc.kill()
        proc.wait(timeout=timeout)
