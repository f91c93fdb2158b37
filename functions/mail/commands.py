"""`python -m functions mail [--fake] [--log-level L]`: one pass over the mailbox, with a report (SPEC §6)."""
from __future__ import annotations

import argparse
import logging
import sys

from ..cli import options
from ..cli.errors import EXIT_FAILED, EXIT_OK, UsageError
from .sync import MailError, MailReport, MailSettingsMissing, process_mailbox

logger = logging.getLogger(__name__)


def run_mail_pass(fake: bool = False) -> tuple[int, MailReport | None]:
    """Run one mail pass for a command, print its report; return the exit status and the report.

    fake=False decides by the settings (Outlook, else the samples on the emulator); fake=True
    asks for the samples. Missing settings raise UsageError (exit 2); a Graph failure is
    printed to stderr and returns exit status 1; StorageUnavailable propagates to the dispatcher (cli/main.py).
    """
    try:
        report = process_mailbox(use_fake=True if fake else None)
    except MailSettingsMissing as exc:
        raise UsageError(str(exc)) from None
    except MailError as exc:
        print(f"Ошибка: почта не прочитана. {exc}", file=sys.stderr)
        return EXIT_FAILED, None
    print(report.summary())
    return EXIT_OK, report


def cmd_mail(args: argparse.Namespace) -> int:
    """Read the mailbox once and print the report."""
    return run_mail_pass(fake=args.fake)[0]


def cmd_send_mail(args: argparse.Namespace) -> int:
    """Send what the outbox holds (or show it, with --dry-run); exit 1 when a mail failed for good."""
    from ..storage import get_store
    from .outbox import SendingOff, send_outbox

    try:
        report = send_outbox(get_store(), dry_run=args.dry_run)
    except SendingOff as exc:
        raise UsageError(str(exc)) from None
    if not (report.sent or report.found_sent or report.retry_later or report.failed or report.would_send):
        print("Писем подрядчику в очереди нет.")
        return EXIT_OK
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `mail` and `send-mail` commands."""
    parser = subparsers.add_parser("mail", help="один проход по почтовому ящику подрядчика, с отчётом",
                                   description="Читает новые письма подрядчика и обновляет заявки.")
    parser.add_argument("--fake", action="store_true",
                        help="встроенные примеры писем вместо Outlook (только с эмулятором хранилища)")
    # SUPPRESS: without the option the top-level --log-level (or its default) stays in force.
    parser.add_argument("--log-level", type=options.log_level, default=argparse.SUPPRESS, metavar="L",
                        help="подробность журнала: DEBUG, INFO, WARNING или ERROR")
    parser.set_defaults(handler=cmd_mail)

    parser = subparsers.add_parser("send-mail", help="один проход исходящих писем подрядчику (SPEC §8)",
                                   description="Отправляет письма подрядчику из очереди OMIS: заявки и напоминания. "
                                               "Код 1, если письмо не принято.")
    parser.add_argument("--dry-run", action="store_true", help="только показать, что ушло бы, ничего не отправлять")
    parser.set_defaults(handler=cmd_send_mail)
