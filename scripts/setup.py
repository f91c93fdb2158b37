"""First-run set-up shared by the dev and test commands: the venv, its packages, Azurite from npm."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements-dev.txt"


def say(text: str) -> None:
    print(f"[omis] {text}", flush=True)


def venv_python() -> Path:
    """Return the path of the project venv's Python."""
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _fingerprint(*files: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_python_packages() -> Path:
    """Create .venv and install requirements-dev.txt when they are missing or changed; return its Python."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this runs under whatever python3 the user has
        sys.exit(f"Нужен Python 3.11 или новее, а запущен {sys.version.split()[0]}.")
    python = venv_python()
    if not python.exists():
        say("создаю виртуальное окружение .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".omis-requirements"
    wanted = _fingerprint(REQUIREMENTS, ROOT / "requirements.txt")
    if not stamp.exists() or stamp.read_text() != wanted:
        say("устанавливаю Python-пакеты (requirements-dev.txt)")
        subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                        "-r", str(REQUIREMENTS)], cwd=ROOT, check=True)
        stamp.write_text(wanted)
    return python


def ensure_azurite() -> None:
    """Install the pinned Azurite from package-lock.json when it is missing or changed."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("Не найден npm: установите Node.js 20 или новее (https://nodejs.org) и повторите.")
    stamp = ROOT / "node_modules" / ".omis-lock"
    wanted = _fingerprint(ROOT / "package-lock.json")
    if not (ROOT / "node_modules" / ".bin").exists() or not stamp.exists() or stamp.read_text() != wanted:
        say("устанавливаю Azurite (npm ci)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True)
        stamp.write_text(wanted)


def ensure_all() -> Path:
    """Set up everything the commands need; return the venv's Python."""
    python = ensure_python_packages()
    ensure_azurite()
    return python
