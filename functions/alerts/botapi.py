"""The Bot API calls of a bot that answers: replies, callback answers, edits, updates and the webhook.

Answers to an update are sent while Telegram (or the poller) waits, so they use short timeouts
and give up on a 429 that asks to wait long: a lost answer is better than a webhook that times
out and gets the update again. The token never appears in what is logged or raised.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests

from ..settings import Settings
from .telegram import BotApi, Reply, TelegramError, Timeout, explain, send_message

logger = logging.getLogger(__name__)

REPLY_TIMEOUT: tuple[float, float] = (3.0, 5.0)
REPLY_MAX_WAIT = 3.0            # seconds of retry_after a reply waits out at most
ALLOWED_UPDATES = ("message", "callback_query")
NOT_MODIFIED = "message is not modified"

_usernames: dict[str, str] = {}
_usernames_lock = threading.Lock()


class BotClient:
    """One session of Bot API calls under one set of settings (close it, or use it as a context manager)."""

    def __init__(self, settings: Settings, session: requests.Session | None = None,
                 timeout: Timeout = REPLY_TIMEOUT) -> None:
        self.settings = settings
        self._own_session = session is None
        self.session = session if session is not None else requests.Session()
        self.timeout = timeout

    def __enter__(self) -> BotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def call(self, method: str, payload: dict[str, Any], timeout: Timeout | None = None) -> Reply:
        """Call a method once; TelegramError (Russian, token-free) when no answer came or no token is set."""
        if not self.settings.telegram_token:
            raise TelegramError("OMIS_TELEGRAM_TOKEN не задан: укажите токен бота (его выдаёт @BotFather).")
        api = BotApi(self.settings, self.session, time.sleep, timeout or self.timeout)
        return api.call(method, payload)

    def _quiet_call(self, method: str, payload: dict[str, Any]) -> Reply | None:
        try:
            reply = self.call(method, payload)
        except TelegramError as exc:
            logger.error("%s", exc)
            return None
        if not reply.ok and NOT_MODIFIED not in reply.description:
            logger.error("%s", explain(reply, method))
        return reply

    def reply(self, chat_id: str, text: str, *, thread_id: int | None = None, reply_to: int | None = None,
              keyboard: dict[str, Any] | None = None) -> bool:
        """Send an answer to a chat (and topic), as a reply to a message; True when Telegram took it all."""
        return send_message(text, settings=self.settings, session=self.session, timeout=self.timeout,
                            chat_id=chat_id, thread_id=thread_id, reply_markup=keyboard, reply_to=reply_to,
                            max_wait=REPLY_MAX_WAIT)

    def answer_callback(self, callback_id: str, text: str) -> bool:
        """Answer a pressed button (Telegram shows the text briefly over the chat)."""
        reply = self._quiet_call("answerCallbackQuery", {"callback_query_id": callback_id, "text": text[:200]})
        return reply is not None and reply.ok

    def edit(self, chat_id: str, message_id: int, text: str, keyboard: dict[str, Any] | None) -> bool:
        """Replace a message's text, keeping its buttons; True also when it already reads so."""
        payload: dict[str, Any] = {"chat_id": chat_id, "message_id": message_id, "text": text, "parse_mode": "HTML",
                                   "link_preview_options": {"is_disabled": True}}
        if keyboard is not None:
            payload["reply_markup"] = keyboard
        reply = self._quiet_call("editMessageText", payload)
        return reply is not None and (reply.ok or NOT_MODIFIED in reply.description)

    def username(self) -> str | None:
        """Return the bot's @username (getMe, once per process and token); None when it cannot be asked."""
        token = self.settings.telegram_token or ""
        with _usernames_lock:
            if token in _usernames:
                return _usernames[token]
        reply = self._quiet_call("getMe", {})
        if reply is None or not reply.ok or not isinstance(reply.result, dict):
            return None
        name = str(reply.result.get("username") or "")
        with _usernames_lock:
            _usernames[token] = name
        return name or None

    def get_updates(self, offset: int | None, wait_seconds: int) -> Reply:
        """Wait up to `wait_seconds` for updates after `offset` (long polling); TelegramError when no answer."""
        payload: dict[str, Any] = {"timeout": wait_seconds, "allowed_updates": list(ALLOWED_UPDATES)}
        if offset is not None:
            payload["offset"] = offset
        connect = self.timeout[0] if isinstance(self.timeout, tuple) else self.timeout
        return self.call("getUpdates", payload, timeout=(connect, wait_seconds + 10.0))

    def set_webhook(self, url: str, secret: str) -> Reply:
        """Register the webhook URL with its secret, for messages and button presses."""
        return self.call("setWebhook", {"url": url, "secret_token": secret, "allowed_updates": list(ALLOWED_UPDATES)})

    def delete_webhook(self) -> Reply:
        """Remove the webhook (updates wait for getUpdates again; pending ones are kept)."""
        return self.call("deleteWebhook", {"drop_pending_updates": False})

    def webhook_info(self) -> Reply:
        """Return what Telegram knows of the webhook (getWebhookInfo)."""
        return self.call("getWebhookInfo", {})
