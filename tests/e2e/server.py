"""Run `python -m functions serve` as a subprocess for browser tests and screenshots."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.azurite import free_port

ROOT = Path(__file__).resolve().parents[2]
# Debian's Chromium by default; elsewhere point OMIS_CHROMIUM at a Chromium or Chrome binary.
CHROMIUM = os.environ.get("OMIS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@dataclass
class LiveServer:
    """A running local host: its base URL, process, log file and environment."""

    base_url: str
    process: subprocess.Popen
    log: Path
    env: dict[str, str]

    def api(self, method: str, path: str, data: dict[str, Any] | None = None) -> tuple[int, Any]:
        """Call the JSON API; return the status and the decoded body."""
        body = json.dumps(data).encode("utf-8") if data is not None else None
        req = urllib.request.Request(self.base_url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"} if body else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def stop(self) -> None:
        """Stop the server with Ctrl-C, as a person would, and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def server_env(connection_string: str, prefix: str) -> dict[str, str]:
    """Return the environment for a server on its own tables, with no settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMIS_") and k != "AzureWebJobsStorage"}
    env.update({
        "OMIS_TABLES_CONNECTION_STRING": connection_string,
        "OMIS_TABLE_PREFIX": prefix,
        "OMIS_SECRET_KEY": "e2e-secret-key",
        "OMIS_TIMEZONE": "Europe/Moscow",
        "OMIS_DEV_USER": "Инженер",
        "OMIS_DELAY_MINUTES": "60",
        "OMIS_WORK_HOURS": "",
        "OMIS_HOLIDAYS": "",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def start_server(env: dict[str, str], log: Path, timeout: float = 30) -> LiveServer:
    """Start the local host on a free port and wait until /healthz answers 200."""
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "functions", "serve", "--port", str(port), "--no-timers"],
                                   cwd=str(ROOT), env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = LiveServer(f"http://127.0.0.1:{port}", process, log, env)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"`python -m functions serve` exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.base_url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the local host did not answer /healthz in {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def browser_missing() -> str | None:
    """Say why the browser tests cannot run here, or None when they can."""
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM} (install Debian's package: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    return None
