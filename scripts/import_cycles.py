"""Find import cycles inside a package (used by scripts/check.py and the tests).

grimp reads every import statement of the package, those inside functions too (a lazy
import is still an arrow between modules; only `if TYPE_CHECKING:` imports are left out).
Importing `a.b.c` first runs the `__init__` of `a.b`, so an import of a module is also an
import of the packages above it, except the ones the importing module already sits in.
"""
from __future__ import annotations

import graphlib
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(package: str) -> dict[str, set[str]]:
    """Return each module of a package with the modules of the package that importing it runs."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(package, include_external_packages=False, exclude_type_checking_imports=True,
                              cache_dir=None)
    arrows: dict[str, set[str]] = {module: set() for module in graph.modules}
    for module in graph.modules:
        own = set(_ancestors(module)) | {module}
        for imported in graph.find_modules_directly_imported_by(module):
            arrows[module] |= ({imported, *_ancestors(imported)} - own)
    return arrows


def find_import_cycle(package: str) -> list[str] | None:
    """Return one import cycle of the package (first module repeated at the end), or None."""
    try:
        graphlib.TopologicalSorter(import_graph(package)).prepare()
    except graphlib.CycleError as exc:
        cycle: list[str] = list(reversed(exc.args[1]))
        return cycle
    return None


def main() -> int:
    """Print the import cycle of functions/, if any; exit 1 when there is one."""
    cycle = find_import_cycle("functions")
    if cycle is None:
        print("Циклов импорта в functions/ нет.")
        return 0
    print("Цикл импорта в functions/: " + " → ".join(cycle), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
