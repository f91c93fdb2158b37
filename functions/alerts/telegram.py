"""A small Telegram Bot API client: send a (possibly long) HTML message, list the bot's chats."""
from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from ..settings import Settings, get_settings
from .digest import split_message

logger = logging.getLogger(__name__)

# (connect, read) seconds for every call.
API_TIMEOUT: tuple[float, float] = (5.0, 20.0)
MAX_RETRIES_429 = 3            # per send_message call, whatever the number of parts
MAX_RETRY_AFTER_SECONDS = 60.0

Timeout = float | tuple[float, float]

_BOT_PATH_RE = re.compile(r"/bot[^/\s'\"]+/")


class TelegramError(Exception):
    """Telegram could not be reached or refused a call; the message is in Russian and has no token."""


@dataclass(frozen=True)
class TelegramChat:
    """A chat the bot has seen."""

    id: int
    type: str
    title: str


@dataclass
class Reply:
    """What the Bot API answered to one call."""

    ok: bool
    code: int
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    result: Any = None


class _RedactBotPaths(logging.Filter):
    """Hide `/bot<token>/` in urllib3's debug lines, which print every request path."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _BOT_PATH_RE.sub("/bot***/", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _install_redaction() -> None:
    urllib3_logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactBotPaths) for f in urllib3_logger.filters):
        urllib3_logger.addFilter(_RedactBotPaths())


_install_redaction()


def escape_html(text: str) -> str:
    """Escape `& < >` for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


def _scrub(text: str, token: str | None) -> str:
    """Remove the bot token from a text (requests puts the URL in its exceptions)."""
    if token:
        for form in {token, quote(token, safe=""), quote(token)}:
            text = text.replace(form, "***")
    return _BOT_PATH_RE.sub("/bot***/", text)


def explain(reply: Reply, method: str) -> str:
    """Say in plain Russian what a failed Bot API call means and what to check."""
    code, description = reply.code, reply.description
    lowered = description.lower()
    if code == 401:
        return "Telegram: токен бота не принят (401 Unauthorized) — проверьте OMIS_TELEGRAM_TOKEN."
    if code == 404:
        return ("Telegram: 404 Not Found — токен бота неверного вида или OMIS_TELEGRAM_API_URL "
                "указывает не на Bot API; проверьте OMIS_TELEGRAM_TOKEN и OMIS_TELEGRAM_API_URL.")
    if "chat not found" in lowered:
        return (f"Telegram: чат не найден ({code} {description}) — проверьте OMIS_TELEGRAM_CHAT_ID "
                "и что бот добавлен в этот чат.")
    if "thread not found" in lowered or "topic" in lowered:
        return f"Telegram: тема форума не найдена ({code} {description}) — проверьте OMIS_TELEGRAM_THREAD_ID."
    if code == 403:
        return (f"Telegram: бот не может писать в чат ({code} {description}) — добавьте бота в чат "
                "заново и разрешите ему отправлять сообщения (или напишите боту первым в личном чате).")
    if code == 409:
        return (f"Telegram: {method} недоступен, пока у бота настроен webhook ({description}) — "
                "удалите webhook (deleteWebhook) или узнайте id чата другим способом.")
    if code == 429:
        return f"Telegram: слишком много сообщений ({description}) — Telegram просит подождать, повторите позже."
    if "can't parse entities" in lowered:
        return f"Telegram: не удалось разобрать HTML-разметку сообщения ({description})."
    if code >= 500:
        return f"Telegram временно недоступен (HTTP {code}: {description}), повторите позже."
    return f"Telegram: ошибка {code} в {method}: {description}"


def _migrate_message(new_chat_id: object) -> str:
    return (f"Telegram: группа стала супергруппой, новый id чата: {new_chat_id}, "
            "укажите его в OMIS_TELEGRAM_CHAT_ID.")


class BotApi:
    """One sequence of Bot API calls with one token, one session and one 429 budget."""

    def __init__(self, settings: Settings, session: requests.Session | None,
                 sleep: Callable[[float], None], timeout: Timeout,
                 max_wait: float = MAX_RETRY_AFTER_SECONDS) -> None:
        self._token = settings.telegram_token or ""
        self._base = f"{settings.telegram_api_url.rstrip('/')}/bot{self._token}"
        self._api_url = settings.telegram_api_url
        self._own_session = session is None
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._timeout = timeout
        self.retries_left = MAX_RETRIES_429
        self.max_wait = max_wait
        self.migrated_chat_id: object = None

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def scrub(self, text: str) -> str:
        return _scrub(text, self._token)

    def call(self, method: str, payload: dict[str, Any]) -> Reply:
        """Call a Bot API method once; raise TelegramError (token-free) when no answer came."""
        failure: str | None = None
        try:
            response = self._session.post(f"{self._base}/{method}", json=payload, timeout=self._timeout)
        except requests.Timeout:
            seconds = self._timeout[1] if isinstance(self._timeout, tuple) else self._timeout
            failure = f"Telegram: {self._api_url} не ответил за {seconds:g} с ({method}), повторите позже."
        except requests.RequestException as exc:
            failure = f"Telegram: не удалось связаться с {self._api_url} ({method}): {self.scrub(str(exc))}"
        if failure is not None:
            # Raised outside the except block so no exception carrying the URL is chained to it.
            raise TelegramError(failure)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return Reply(False, response.status_code, f"HTTP {response.status_code}, ответ не в формате Bot API")
        parameters = body["parameters"] if isinstance(body.get("parameters"), dict) else {}
        ok = bool(body.get("ok")) and response.status_code == 200
        code = body["error_code"] if isinstance(body.get("error_code"), int) else response.status_code
        description = self.scrub(str(body.get("description") or f"HTTP {response.status_code}"))
        return Reply(ok, code, description, parameters, body.get("result"))

    def send_part(self, payload: dict[str, Any]) -> bool:
        """Send one message, waiting out 429s within the budget and following a chat migration once."""
        if self.migrated_chat_id is not None:
            payload = {**payload, "chat_id": self.migrated_chat_id}
        while True:
            reply = self.call("sendMessage", payload)
            if reply.ok:
                return True
            if reply.code == 429:
                wait = _retry_after(reply)
                if self.retries_left <= 0 or wait > self.max_wait:
                    logger.error("%s Ожидание %s с, повторов осталось %d — сообщение не отправлено.",
                                 explain(reply, "sendMessage"), wait, self.retries_left)
                    return False
                self.retries_left -= 1
                logger.warning("Telegram: 429 Too Many Requests, повтор через %s с", wait)
                self._sleep(wait)
                continue
            new_chat_id = reply.parameters.get("migrate_to_chat_id")
            if new_chat_id is not None and self.migrated_chat_id is None:
                # The old id is dead for good; deliver to the new one, but the setting must change.
                logger.error("%s", _migrate_message(new_chat_id))
                payload = {**payload, "chat_id": new_chat_id}
                self.migrated_chat_id = new_chat_id
                continue
            logger.error("%s", explain(reply, "sendMessage"))
            return False


def _retry_after(reply: Reply) -> float:
    try:
        return max(float(reply.parameters.get("retry_after", 1)), 0.0)
    except (TypeError, ValueError):
        return 1.0


def send_message(text: str, *, settings: Settings | None = None, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, timeout: Timeout = API_TIMEOUT,
                 chat_id: str | None = None, thread_id: int | None = None,
                 reply_markup: dict[str, Any] | None = None, reply_to: int | None = None,
                 max_wait: float = MAX_RETRY_AFTER_SECONDS) -> bool:
    """Send an HTML text to the team's chat (or `chat_id`/`thread_id`), split to Telegram's limit.

    `reply_markup` (buttons) goes with the last part, `reply_to` (a message id) with the first;
    a 429 asking to wait longer than `max_wait` seconds gives up. True when every part was accepted.
    """
    settings = settings if settings is not None else get_settings()
    if not settings.telegram_token or not (chat_id or settings.telegram_chat_id):
        logger.warning("[FAKE TELEGRAM] %s", text)
        return False
    parts = split_message(text)
    if not parts:
        logger.warning("Telegram: пустое сообщение не отправлено")
        return False
    base_payload: dict[str, Any] = {
        "chat_id": chat_id or settings.telegram_chat_id,
        "parse_mode": "HTML",
        # Links to OMIS in a digest would each unfold into a preview card.
        "link_preview_options": {"is_disabled": True},
    }
    thread = thread_id if chat_id else settings.telegram_thread_id
    if thread is not None:
        base_payload["message_thread_id"] = int(thread)
    api = BotApi(settings, session, sleep, timeout, max_wait)
    try:
        for index, part in enumerate(parts, start=1):
            payload = {**base_payload, "text": part}
            if reply_to is not None and index == 1:
                payload["reply_parameters"] = {"message_id": reply_to, "allow_sending_without_reply": True}
            if reply_markup is not None and index == len(parts):
                payload["reply_markup"] = reply_markup
            try:
                accepted = api.send_part(payload)
            except TelegramError as exc:
                logger.error("%s", exc)
                accepted = False
            if not accepted:
                if len(parts) > 1:
                    logger.error("Telegram: отправлено частей %d из %d", index - 1, len(parts))
                return False
        logger.info("Telegram: сообщение отправлено (частей: %d)", len(parts))
        return True
    finally:
        api.close()


_CHAT_HOLDERS = ("message", "edited_message", "channel_post", "edited_channel_post",
                 "my_chat_member", "chat_member", "chat_join_request")


def _chat_title(chat: dict[str, Any]) -> str:
    if chat.get("title"):
        return str(chat["title"])
    if chat.get("username"):
        return f"@{chat['username']}"
    name = " ".join(str(chat[key]) for key in ("first_name", "last_name") if chat.get(key))
    return name or str(chat.get("id", ""))


def chats_from_updates(updates: object) -> list[TelegramChat]:
    """Collect the distinct chats named in getUpdates results, in order of first appearance."""
    chats: dict[int, TelegramChat] = {}
    for update in updates if isinstance(updates, list) else []:
        if not isinstance(update, dict):
            continue
        holders = [update.get(key) for key in _CHAT_HOLDERS]
        callback = update.get("callback_query")
        if isinstance(callback, dict):
            holders.append(callback.get("message"))
        for holder in holders:
            chat = holder.get("chat") if isinstance(holder, dict) else None
            if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
                continue
            found = TelegramChat(id=chat["id"], type=str(chat.get("type", "")), title=_chat_title(chat))
            # Later updates carry the current title; the first appearance keeps the order.
            chats[found.id] = found
    return list(chats.values())


def list_chats(settings: Settings | None = None, session: requests.Session | None = None, *,
               timeout: Timeout = API_TIMEOUT) -> list[TelegramChat]:
    """List the chats the bot has seen recently (getUpdates), to find OMIS_TELEGRAM_CHAT_ID."""
    settings = settings if settings is not None else get_settings()
    if not settings.telegram_token:
        raise TelegramError("OMIS_TELEGRAM_TOKEN не задан: укажите токен бота (его выдаёт @BotFather).")
    api = BotApi(settings, session, time.sleep, timeout)
    try:
        reply = api.call("getUpdates", {"timeout": 0, "limit": 100})
    finally:
        api.close()
    if not reply.ok:
        raise TelegramError(explain(reply, "getUpdates"))
    return chats_from_updates(reply.result)
