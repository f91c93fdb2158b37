"""Refresh the test copies of the shared mail corpus: ../shared/corpus/*.json → tests/data/.

Usage: python scripts/refresh_corpus.py [--source DIR]

The product's worked examples live beside the repository (shared/corpus); the tests read only
their copies in tests/data, so a clean clone passes on its own. Run this after the shared corpus
changed, check `git diff tests/data`, and commit the copies.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "corpus"
TARGET = ROOT / "tests" / "data"
FILES = ("mail-public.json", "mail-promises-public.json")


def refresh(source: Path, target: Path = TARGET) -> list[str]:
    """Copy the corpus files from source into target; return the names whose content changed."""
    changed = []
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        new = (source / name).read_bytes()
        old = (target / name).read_bytes() if (target / name).is_file() else None
        if new != old:
            (target / name).write_bytes(new)
            changed.append(name)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Обновить копии корпуса писем в tests/data из shared/corpus.")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help=f"папка корпуса (по умолчанию {DEFAULT_SOURCE})")
    args = parser.parse_args(argv)
    missing = [name for name in FILES if not (args.source / name).is_file()]
    if missing:
        print(f"Корпус не найден: в {args.source} нет {', '.join(missing)}. "
              "Копии в tests/data оставлены как есть; укажите папку корпуса через --source.")
        return 1
    changed = refresh(args.source)
    if changed:
        print(f"Обновлено из {args.source}: {', '.join(changed)}. Проверьте git diff tests/data и закоммитьте.")
    else:
        print(f"Копии в tests/data совпадают с {args.source}, менять нечего.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
