"""Commands of the reminders: `notify`, `telegram-chats` and `scenario` (SPEC §6)."""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..cli import options
from ..cli.errors import EXIT_FAILED, EXIT_OK, UsageError
from ..settings import get_settings
from . import webhook_commands

if TYPE_CHECKING:
    from .remind import ReminderReport

logger = logging.getLogger(__name__)


def run_notify(minutes: int | None = None, dry_run: bool = False,
               now: datetime | None = None) -> tuple[int, ReminderReport]:
    """Run one reminder pass; return the exit status (1 if a reminder failed to go out) and the report."""
    from .remind import notify

    report = notify(send=not dry_run, now=now, min_overdue=minutes or 0)
    return (EXIT_OK if report.ok else EXIT_FAILED), report


TEST_MESSAGE = ("✅ <b>OMIS</b>: проверочное сообщение. Напоминания о заявках без ответа будут приходить сюда.")


def send_test_message() -> int:
    """Send a test message to the configured chat (no requests read); return the exit status."""
    from .telegram import send_message

    settings = get_settings()
    missing = [name for name, value in (("OMIS_TELEGRAM_TOKEN", settings.telegram_token),
                                        ("OMIS_TELEGRAM_CHAT_ID", settings.telegram_chat_id)) if not value]
    if missing:
        raise UsageError(f"для проверочного сообщения не заданы: {', '.join(missing)}")
    if send_message(TEST_MESSAGE, settings=settings):
        where = f", тема {settings.telegram_thread_id}" if settings.telegram_thread_id else ""
        print(f"Проверочное сообщение отправлено в чат {settings.telegram_chat_id}{where}.")
        return EXIT_OK
    print("Проверочное сообщение не отправлено: причина — в журнале выше.", file=sys.stderr)
    return EXIT_FAILED


def cmd_notify(args: argparse.Namespace) -> int:
    """Send one pass of reminders and print what it did."""
    if args.test_message:
        if args.dry_run or args.minutes is not None:
            raise UsageError("--test-message не сочетается с --dry-run и --minutes")
        return send_test_message()
    code, report = run_notify(args.minutes, args.dry_run)
    print(report.summary())
    if report.numbers:
        print("Заявки в напоминании: " + ", ".join(report.numbers))
    return code


def cmd_telegram_chats(args: argparse.Namespace) -> int:
    """Print the chats the bot has seen, to fill OMIS_TELEGRAM_CHAT_ID."""
    from .telegram import TelegramError, list_chats

    settings = get_settings()
    if not settings.telegram_token:
        raise UsageError("OMIS_TELEGRAM_TOKEN не задан: укажите токен бота (его выдаёт @BotFather).")
    try:
        chats = list_chats(settings)
    except TelegramError as exc:
        print(f"Ошибка: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not chats:
        print("Бот пока не видел ни одного чата. Добавьте бота в группу и напишите там любое сообщение\n"
              "(если у бота включён privacy mode — команду, например /start@имя_бота),\n"
              "затем повторите команду. Telegram хранит такие события около суток.")
        return EXIT_OK
    width = max(len(str(chat.id)) for chat in chats)
    print(f"{'id':<{width}}  {'тип':<10}  название")
    for chat in chats:
        mark = "  ← OMIS_TELEGRAM_CHAT_ID" if str(chat.id) == (settings.telegram_chat_id or "") else ""
        print(f"{chat.id:<{width}}  {chat.type:<10}  {chat.title}{mark}")
    print("Укажите id нужного чата в OMIS_TELEGRAM_CHAT_ID (у групп он отрицательный, с минусом).")
    return EXIT_OK


def cmd_scenario(args: argparse.Namespace) -> int:
    """List the prepared scenarios, or play one (or all) of them."""
    from . import scenarios

    path = Path(args.file) if args.file else scenarios.DEFAULT_FILE
    loaded = scenarios.load_scenarios(path)
    if args.list:
        for scenario in loaded:
            print(f"{scenario.name:<24} {scenario.title}")
        return EXIT_OK
    if args.all:
        chosen = loaded
    else:
        by_name = {scenario.name: scenario for scenario in loaded}
        if args.scenario not in by_name:
            raise UsageError(f"сценария «{args.scenario}» нет в {path.name}; есть: {', '.join(by_name)}")
        chosen = [by_name[args.scenario]]
    scenarios.check_storage_allowed(get_settings(), args.allow_remote)
    failed = 0
    for scenario in chosen:
        result = scenarios.play(scenario, keep_data=args.keep_data)
        for line in result.lines:
            print(line)
        failed += not result.passed
    return EXIT_FAILED if failed else EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the reminder commands to the command line."""
    p = sub.add_parser("notify", help="один проход напоминаний в Telegram")
    p.add_argument("--minutes", type=options.minutes, default=None, metavar="N",
                   help="только заявки, срок которых прошёл не меньше N минут назад (0 — все просроченные)")
    p.add_argument("--dry-run", action="store_true", help="только показать текст в журнале, не отправлять")
    p.add_argument("--test-message", action="store_true",
                   help="отправить проверочное сообщение в чат (заявки не читаются и не отмечаются)")
    p.set_defaults(handler=cmd_notify)

    p = sub.add_parser("telegram-chats", help="чаты, которые видел бот (для OMIS_TELEGRAM_CHAT_ID)")
    p.set_defaults(handler=cmd_telegram_chats)
    webhook_commands.register(sub)

    p = sub.add_parser("scenario", help="подготовленные сценарии проверки (пишут тестовые данные)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="перечислить сценарии")
    what.add_argument("--scenario", metavar="NAME", help="сыграть один сценарий")
    what.add_argument("--all", action="store_true", help="сыграть все сценарии файла")
    p.add_argument("--file", metavar="F", help="свой файл сценариев (JSON) вместо встроенного")
    p.add_argument("--allow-remote", action="store_true",
                   help="разрешить запуск не на локальном эмуляторе (пишет тестовые таблицы в хранилище)")
    p.add_argument("--keep-data", action="store_true", help="не удалять таблицы сценария после прогона")
    p.set_defaults(handler=cmd_scenario)
