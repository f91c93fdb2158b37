"""Run the whole test suite: sets up .venv and Azurite on first run; pytest starts its own Azurite.

Usage: python scripts/test.py [pytest options, e.g. -k store -x]
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.setup import ROOT, ensure_all, say

NO_TESTS_COLLECTED = 5


def main() -> int:
    python = ensure_all()
    say("запускаю тесты (pytest)")
    code = subprocess.run([str(python), "-m", "pytest", *sys.argv[1:]], cwd=ROOT).returncode
    if code == NO_TESTS_COLLECTED:
        say("pytest не нашёл ни одного теста — это ошибка")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
