"""Run the gates: ruff, mypy and the import-cycle check (pyproject.toml holds their settings).

Usage: python scripts/check.py        (sets up .venv on first run, like scripts/test.py)
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.setup import ROOT, ensure_python_packages, say

GATES = (
    ("ruff", ["-m", "ruff", "check", "."]),
    ("mypy", ["-m", "mypy"]),
    ("циклы импорта", ["scripts/import_cycles.py"]),
)


def main() -> int:
    """Run every gate (all of them, even after a failure); exit 1 if any failed."""
    python = ensure_python_packages()
    failed = []
    for name, args in GATES:
        say(f"проверка: {name}")
        if subprocess.run([str(python), *args], cwd=ROOT).returncode != 0:
            failed.append(name)
    if failed:
        say("не пройдены: " + ", ".join(failed))
        return 1
    say("все проверки пройдены")
    return 0


if __name__ == "__main__":
    sys.exit(main())
