"""`python -m functions import FILE [--dry-run]`: requests from an export or the Flask OMIS's database (SPEC §6)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..cli.errors import EXIT_FAILED, EXIT_OK, UsageError

logger = logging.getLogger(__name__)


def cmd_import(args: argparse.Namespace) -> int:
    """Import the requests of a file and print what became of each row; exit 1 if a row was refused."""
    from ..storage import get_store
    from .importer import run_import
    from .sources import SourceError

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"файл «{args.file}» не найден")
    store = get_store()
    if not args.dry_run:
        store.init()
    try:
        report = run_import(store, path, dry_run=args.dry_run)
    except SourceError as exc:
        print(f"Ошибка: «{path.name}» не импортирован: {exc}.", file=sys.stderr)
        return EXIT_FAILED
    for line in report.lines():
        print(line)
    return EXIT_FAILED if report.refused else EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `import` command."""
    parser = subparsers.add_parser(
        "import", help="перенести заявки из выгрузки (.xlsx, .csv) или из базы SQLite прежнего OMIS",
        description="Переносит заявки из книги Excel или CSV в виде выгрузки OMIS (столбцы «Номер», «Статус», "
                    "«Создана»… в любом порядке) или из базы SQLite прежнего OMIS на Flask. Заявка сохраняет "
                    "свои время и статус; номер, который уже есть, пропускается, так что повторный запуск "
                    "ничего не удваивает. Строка с неверным номером или неизвестным статусом отклоняется "
                    "(код выхода 1), остальные переносятся.")
    parser.add_argument("file", metavar="FILE", help="файл .xlsx, .csv или база SQLite (.db, .sqlite)")
    parser.add_argument("--dry-run", action="store_true", help="только проверить и показать, что было бы сделано")
    parser.set_defaults(handler=cmd_import)
