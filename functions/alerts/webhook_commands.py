"""`python -m functions telegram-webhook --set URL | --delete | --info` (SPEC §6, §9)."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ..cli.errors import EXIT_FAILED, EXIT_OK, UsageError
from ..settings import Settings, get_settings
from .botapi import ALLOWED_UPDATES, BotClient
from .telegram import Reply, TelegramError, explain

WEBHOOK_PATH = "/telegram/webhook"
WEBHOOK_SETUP_ADVICE = (
    "задайте OMIS_TELEGRAM_WEBHOOK_SECRET — тот же, что в настройках приложения (в Azure: azd env set "
    "OMIS_TELEGRAM_WEBHOOK_SECRET … и azd up); придумать его можно так: "
    "python -c \"import secrets; print(secrets.token_urlsafe(32))\"")


def check_webhook_url(url: str) -> str:
    """Return the URL when it is https://HOST/…/telegram/webhook; UsageError saying what is wrong otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise UsageError(f"адрес webhook должен начинаться с https:// (Telegram шлёт обновления только по HTTPS), "
                         f"получено «{url}»")
    if not parts.path.endswith(WEBHOOK_PATH) or parts.query or parts.fragment:
        raise UsageError(f"адрес webhook должен кончаться на {WEBHOOK_PATH}, например "
                         f"https://func-omis.azurewebsites.net{WEBHOOK_PATH}; получено «{url}»")
    return url.strip()


def _client(settings: Settings) -> BotClient:
    if not settings.telegram_token:
        raise UsageError("OMIS_TELEGRAM_TOKEN не задан: укажите токен бота (его выдаёт @BotFather).")
    return BotClient(settings, timeout=(5.0, 20.0))


def _failed(reply: Reply, method: str) -> int:
    print(f"Ошибка: {explain(reply, method)}", file=sys.stderr)
    return EXIT_FAILED


def _when(seconds: object, settings: Settings) -> str:
    if not isinstance(seconds, int) or seconds <= 0:
        return ""
    return f"{datetime.fromtimestamp(seconds, timezone.utc).astimezone(settings.timezone):%d.%m.%Y %H:%M}"


def print_info(result: dict[str, object], settings: Settings) -> None:
    """Print what getWebhookInfo said, in Russian."""
    url = result.get("url") or ""
    if url:
        print(f"Webhook: {url}")
    else:
        print("Webhook не установлен: обновления ждут getUpdates (их читает python -m functions serve).")
    print(f"Ожидают доставки: {result.get('pending_update_count', 0)}")
    allowed = result.get("allowed_updates")
    if isinstance(allowed, list):
        print("Типы обновлений: " + (", ".join(map(str, allowed)) or "все"))
    if result.get("last_error_message"):
        print(f"Последняя ошибка доставки: {_when(result.get('last_error_date'), settings)} — "
              f"{result['last_error_message']}")
        if "401" in str(result["last_error_message"]):
            print("401: секрет в приложении (OMIS_TELEGRAM_WEBHOOK_SECRET) не тот, что передан в --set; "
                  "поставьте webhook снова с тем же секретом.")


def cmd_telegram_webhook(args: argparse.Namespace) -> int:
    """Set, delete or show the bot's webhook."""
    settings = get_settings()
    if args.set is not None:
        url = check_webhook_url(args.set)
        if not settings.telegram_webhook_secret:
            raise UsageError(f"для --set нужен секрет: {WEBHOOK_SETUP_ADVICE}")
    with _client(settings) as client:
        try:
            if args.set is not None:
                reply = client.set_webhook(url, settings.telegram_webhook_secret or "")
                if not reply.ok:
                    return _failed(reply, "setWebhook")
                print(f"Webhook установлен: {url}")
                print(f"Обновления: {', '.join(ALLOWED_UPDATES)}; каждое приходит с секретом "
                      "OMIS_TELEGRAM_WEBHOOK_SECRET.")
                return EXIT_OK
            if args.delete:
                reply = client.delete_webhook()
                if not reply.ok:
                    return _failed(reply, "deleteWebhook")
                print("Webhook удалён: Telegram больше не отправляет обновления на адрес приложения; "
                      "их можно читать локально (python -m functions serve).")
                return EXIT_OK
            reply = client.webhook_info()
            if not reply.ok or not isinstance(reply.result, dict):
                return _failed(reply, "getWebhookInfo")
            print_info(reply.result, settings)
            return EXIT_OK
        except TelegramError as exc:
            print(f"Ошибка: {exc}", file=sys.stderr)
            return EXIT_FAILED


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `telegram-webhook` to the command line."""
    p = sub.add_parser("telegram-webhook", help="webhook бота: поставить, удалить, показать",
                       description="Регистрирует POST /telegram/webhook у Telegram (с секретом "
                                   "OMIS_TELEGRAM_WEBHOOK_SECRET), удаляет его или показывает состояние.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--set", metavar="URL", help="поставить webhook: https://…/telegram/webhook")
    what.add_argument("--delete", action="store_true", help="удалить webhook (обновления снова через getUpdates)")
    what.add_argument("--info", action="store_true", help="показать, что Telegram знает о webhook")
    p.set_defaults(handler=cmd_telegram_webhook)
