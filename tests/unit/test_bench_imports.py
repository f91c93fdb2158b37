"""The benchmarks are not run by the suite (they take minutes), but each must still load against today's code."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("path", sorted(BENCH.glob("bench_*.py")), ids=lambda p: p.name)
def test_benchmark_loads(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_check_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)   # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)      # imports every name it uses from common and from OMIS
    finally:
        sys.modules.pop("common", None)      # bench/common.py is no module of the suite's
    assert callable(module.main)


def test_every_benchmark_is_listed_in_its_readme() -> None:
    readme = (BENCH / "README.md").read_text("utf-8")
    for path in BENCH.glob("bench_*.py"):
        assert f"`{path.name}`" in readme, path.name
