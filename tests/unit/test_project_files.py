"""The project's own files say and run what they should: quick start, gates before tests, pins, the deploy doc."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def test_the_quick_start_says_python3_on_linux_and_py_on_windows() -> None:
    start = read("README.md").split("## ", 1)[0]
    assert "python3 scripts/dev.py" in start and "python3 scripts/test.py" in start
    assert re.search(r"^python scripts/", start, re.M) is None
    assert r"py scripts\dev.py" in start and r"py scripts\test.py" in start


def test_ci_runs_the_gates_before_the_tests() -> None:
    commands = [line.strip() for line in read(".ci/run").splitlines() if line.strip().startswith("python3 scripts/")]
    assert commands[0] == "python3 scripts/check.py"
    assert commands[-1].startswith("python3 scripts/test.py")


def test_ruff_and_mypy_are_configured_for_real_and_pinned() -> None:
    config = tomllib.loads(read("pyproject.toml"))["tool"]
    assert {"E", "F", "B", "S", "G", "DTZ"} <= set(config["ruff"]["lint"]["select"])
    assert config["mypy"]["disallow_untyped_defs"] is True and config["mypy"]["check_untyped_defs"] is True
    pins = dict(line.split("==", 1) for line in read("requirements-dev.txt").splitlines()
                if "==" in line and not line.startswith("#"))
    assert {"ruff", "mypy", "grimp"} <= set(pins)


def test_runtime_dependencies_of_the_sign_in_and_input_checks_are_pinned() -> None:
    lines = read("requirements.txt").splitlines()
    assert any(re.fullmatch(r"PyJWT\[crypto\]==[\d.]+", line) for line in lines)
    assert any(re.fullmatch(r"regex==[\d.]+", line) for line in lines)


def test_the_deploy_doc_has_the_go_live_check_and_the_pitfalls() -> None:
    doc = read("docs/deploy.md")
    assert "-H 'X-MS-CLIENT-PRINCIPAL-NAME:" in doc and '"$URL/healthz"' in doc
    assert "403 Forbidden" in doc and "secretOrRandomPassword" in doc
    assert "AZURE_AUTH_TOKEN_STORE" in doc and "excludedPaths" in doc
    assert "unset ${!OMIS_*}" in doc
