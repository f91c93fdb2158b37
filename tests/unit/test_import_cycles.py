"""No import cycles under functions/: arrows point down only (DESIGN «The shape»)."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts.import_cycles import find_import_cycle


def test_functions_package_has_no_import_cycle() -> None:
    cycle = find_import_cycle("functions")
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def _package(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")


def test_a_lazy_import_back_up_is_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _package(tmp_path, {"cyc_lazy/__init__.py": "", "cyc_lazy/top.py": "from . import low\n",
                        "cyc_lazy/low.py": "def f():\n    from . import top\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert set(find_import_cycle("cyc_lazy") or []) == {"cyc_lazy.top", "cyc_lazy.low"}


def test_importing_a_module_also_runs_its_package_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # cli/__init__ imports the command module, which imports cli.errors: a cycle through the package.
    _package(tmp_path, {"cyc_pkg/__init__.py": "", "cyc_pkg/cli/__init__.py": "from ..mail import commands\n",
                        "cyc_pkg/cli/errors.py": "", "cyc_pkg/mail/__init__.py": "",
                        "cyc_pkg/mail/commands.py": "from ..cli.errors import *\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert set(find_import_cycle("cyc_pkg") or []) == {"cyc_pkg.cli", "cyc_pkg.mail.commands"}


def test_type_checking_imports_and_a_package_importing_its_children_are_no_cycle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _package(tmp_path, {"cyc_none/__init__.py": "from . import a\n",
                        "cyc_none/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\n",
                        "cyc_none/b.py": "from . import a\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert find_import_cycle("cyc_none") is None
