"""`python -m functions COMMAND`: the local host and the operators' commands (SPEC §6)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from .settings import SettingsError, get_settings
from .storage import StorageUnavailable

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
Command = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A command cannot run as asked (missing settings, bad arguments): exit status 2."""


def load_local_settings(path: Path = ROOT / "local.settings.json") -> list[str]:
    """Copy `Values` of local.settings.json into the environment (what is set already wins)."""
    if not path.exists():
        return []
    try:
        values = json.loads(path.read_text(encoding="utf-8-sig")).get("Values", {})
    except (ValueError, AttributeError) as exc:
        raise UsageError(f"{path.name}: не удалось прочитать JSON ({exc})") from None
    applied = []
    for name, value in values.items():
        if name not in os.environ and isinstance(value, str):
            os.environ[name] = value
            applied.append(name)
    return applied


def cmd_init(args: argparse.Namespace) -> int:
    """Create the tables, upgrade an older store in place."""
    from .storage import get_store

    for line in get_store().init().lines():
        print(line)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the local host: HTTP routes and timers."""
    from . import devhost

    get_settings()  # fail early, with the setting's name, before the port is taken
    sys.path.insert(0, str(ROOT))
    import function_app

    try:
        devhost.serve(function_app.app, host=args.host, port=args.port, run_timers=not args.no_timers)
    except OSError as exc:
        raise UsageError(f"не удалось занять {args.host}:{args.port}: {exc.strerror or exc}") from None
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run the chain by hand: a mail pass, then a reminder pass; exit 1 if a step failed."""
    from .alerts.commands import run_notify
    from .mail.commands import run_mail_pass

    failed = []
    if args.skip_mail:
        print("Почта: пропущена (--skip-mail).")
    else:
        code, _ = run_mail_pass(fake=args.fake_mail)
        if code != EXIT_OK:
            failed.append("почта")
    if args.skip_notifier:
        print("Напоминания: пропущены (--skip-notifier).")
    else:
        code, report = run_notify(args.minutes, args.dry_run)
        print(report.summary())
        if report.numbers:
            print("Заявки в напоминании: " + ", ".join(report.numbers))
        if code != EXIT_OK:
            failed.append("напоминания")
    if failed:
        print("Не удалось: " + ", ".join(failed) + ".", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m functions", description="OMIS: заявки подрядчику.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("init", help="создать таблицы")
    p.set_defaults(handler=cmd_init)
    p = sub.add_parser("serve", help="локальный хост: HTTP и таймеры")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7071)
    p.add_argument("--no-timers", action="store_true", help="не запускать таймеры")
    p.set_defaults(handler=cmd_serve)
    p = sub.add_parser("run", help="цепочка вручную: почта, затем напоминания")
    p.add_argument("--fake-mail", action="store_true", help="встроенные примеры писем вместо Outlook")
    p.add_argument("--dry-run", action="store_true", help="напоминания только в журнал, ничего не записывать")
    p.add_argument("--minutes", type=int, default=None, help="только заявки, срок которых прошёл не меньше N минут назад")
    p.add_argument("--skip-mail", action="store_true", help="без прохода по почте")
    p.add_argument("--skip-notifier", action="store_true", help="без напоминаний")
    p.set_defaults(handler=cmd_run)
    for register in _command_modules():
        register(sub)
    return parser


def _command_modules() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Return the register functions of the feature command modules."""
    from .alerts.commands import register as register_alerts
    from .mail.commands import register as register_mail

    return [register_mail, register_alerts]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(args, "log_level", None) or "INFO"
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        load_local_settings()
        return args.handler(args)
    except (SettingsError, UsageError) as exc:
        print(f"Ошибка: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StorageUnavailable as exc:
        print(f"Ошибка: {exc}. Запущен ли Azurite (или доступно ли хранилище)?", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
