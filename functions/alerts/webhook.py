"""`POST /telegram/webhook`: Telegram's updates, guarded by OMIS_TELEGRAM_WEBHOOK_SECRET (SPEC §9).

No sign-in (Telegram cannot sign in; functions/auth.py and infra/modules/auth.bicep let this
path through): the header X-Telegram-Bot-Api-Secret-Token must equal the secret, compared in
constant time (401 otherwise), and while the secret is unset the route answers 404. Telegram
delivers an update again until it gets a 2xx, so an update that cannot be read, or whose
handling failed for good, is answered 200 and logged; only a storage outage answers 503, to
have the update delivered again once storage is back.
"""
from __future__ import annotations

import hmac
import json
import logging

import azure.functions as func

from ..settings import SettingsError, get_settings
from ..storage import StorageUnavailable
from ..web.http import body_too_large

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret

bp = func.Blueprint()


def _plain(text: str, status: int) -> func.HttpResponse:
    return func.HttpResponse(text, status_code=status, mimetype="text/plain", charset="utf-8",
                             headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def secret_matches(given: str | None, secret: str) -> bool:
    """Compare the header with the secret in constant time."""
    return hmac.compare_digest((given or "").encode("utf-8", "replace"), secret.encode("utf-8"))


@bp.route(route="telegram/webhook", methods=["POST"])
def telegram_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """Take one update from Telegram and act on it once."""
    try:
        secret = get_settings().telegram_webhook_secret
    except SettingsError as exc:
        logger.error("settings: %s", exc)
        return _plain("Ошибка настроек.", 500)
    if not secret:
        return _plain("Страница не найдена.", 404)
    if not secret_matches(req.headers.get(SECRET_HEADER), secret):
        logger.warning("Telegram webhook: запрос без верного %s отклонён (401)", SECRET_HEADER)
        return _plain("Неверный секрет.", 401)
    if body_too_large(req):
        logger.warning("Telegram webhook: тело больше 64 КиБ, обновление пропущено")
        return _plain("Тело запроса больше 64 КиБ.", 413)
    try:
        update = json.loads((req.get_body() or b"").decode("utf-8"))
    except (UnicodeError, ValueError, RecursionError):
        logger.warning("Telegram webhook: тело — не JSON, обновление пропущено")
        return _plain("ok", 200)
    from .bot import handle_update  # the bot's modules load with its first update, not with the app

    try:
        outcome = handle_update(update)
    except StorageUnavailable as exc:
        logger.warning("Telegram webhook: хранилище недоступно, Telegram повторит обновление: %s", exc)
        return _plain("Хранилище временно недоступно.", 503)
    except Exception:
        logger.exception("Telegram webhook: обновление не обработано")
        return _plain("ok", 200)
    logger.info("Telegram webhook: %s", outcome)
    return _plain("ok", 200)
