"""`python -m functions COMMAND`: the dispatcher of the local host and the operators' commands (SPEC §6).

It is the top of cli/: it imports the command modules, which import only cli/errors.py and
cli/options.py. Usage, help and errors are in Russian (cli/russian.py) and go to stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..alerts import commands as alert_commands
from ..logsafe import install_log_escaping
from ..mail import commands as mail_commands
from ..reports import commands as report_commands
from ..settings import SettingsError, get_settings
from ..storage import StorageUnavailable
from . import options
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from .russian import RussianArgumentParser

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
COMMAND_MODULES: tuple[Register, ...] = (mail_commands.register, alert_commands.register, report_commands.register)


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
    from ..storage import get_store

    for line in get_store().init().lines():
        print(line)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the local host: HTTP routes and timers."""
    from .. import devhost

    settings = get_settings()  # fail early, with the setting's name, before the port is taken
    sys.path.insert(0, str(ROOT))
    import function_app

    from ..alerts.polling import poller_for_serve

    poller = poller_for_serve(settings, _handle_update)
    try:
        devhost.serve(function_app.app, host=args.host, port=args.port, run_timers=not args.no_timers,
                      workers=[poller] if poller else [])
    except OSError as exc:
        raise UsageError(f"не удалось занять {args.host}:{args.port}: {exc.strerror or exc}") from None
    return EXIT_OK


def _handle_update(update: dict[str, Any]) -> object:
    """Hand an update read by long polling to the bot, as the webhook does."""
    from ..alerts.bot import handle_update

    return handle_update(update)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the chain by hand: a mail pass, then a reminder pass; exit 1 if a step failed."""
    failed = []
    if args.skip_mail:
        print("Почта: пропущена (--skip-mail).")
    else:
        code, _ = mail_commands.run_mail_pass(fake=args.fake_mail)
        if code != EXIT_OK:
            failed.append("почта")
    if args.skip_notifier:
        print("Напоминания: пропущены (--skip-notifier).")
    else:
        code, report = alert_commands.run_notify(args.minutes, args.dry_run)
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
    """Build the parser of every command."""
    parser = RussianArgumentParser(prog="python -m functions", description="OMIS: заявки подрядчику.")
    parser.add_argument("--log-level", type=options.log_level, default="INFO", metavar="L",
                        help="подробность журнала: DEBUG, INFO, WARNING или ERROR (по умолчанию INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("init", help="создать таблицы", description="Создаёт таблицы OMIS (повторный запуск безопасен).")
    p.set_defaults(handler=cmd_init)
    p = sub.add_parser("serve", help="локальный хост: HTTP и таймеры",
                       description="Локальный хост для машин без Functions Core Tools: страницы, API и таймеры.")
    p.add_argument("--host", default="127.0.0.1", metavar="H", help="адрес (по умолчанию 127.0.0.1)")
    p.add_argument("--port", type=options.port, default=7071, metavar="P", help="порт (по умолчанию 7071)")
    p.add_argument("--no-timers", action="store_true", help="не запускать таймеры")
    p.set_defaults(handler=cmd_serve)
    p = sub.add_parser("run", help="цепочка вручную: почта, затем напоминания",
                       description="Проход по почте, затем проход напоминаний; код 1, если шаг не удался.")
    p.add_argument("--fake-mail", action="store_true", help="встроенные примеры писем вместо Outlook")
    p.add_argument("--dry-run", action="store_true", help="напоминания только в журнал, ничего не записывать")
    p.add_argument("--minutes", type=options.minutes, default=None, metavar="N",
                   help="только заявки, срок которых прошёл не меньше N минут назад (0 — все просроченные)")
    p.add_argument("--skip-mail", action="store_true", help="без прохода по почте")
    p.add_argument("--skip-notifier", action="store_true", help="без напоминаний")
    p.set_defaults(handler=cmd_run)
    for register in COMMAND_MODULES:
        register(sub)
    return parser


def configure_logging(level: str) -> None:
    """Log to stderr at a level, with control characters of logged values escaped."""
    logging.basicConfig(level=getattr(logging, level, logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    install_log_escaping()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(getattr(args, "log_level", None) or "INFO")
    try:
        load_local_settings()
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except (SettingsError, UsageError) as exc:
        print(f"Ошибка: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StorageUnavailable as exc:
        print(f"Ошибка: {exc}. Запущен ли Azurite (или доступно ли хранилище)?", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
