"""Long polling for `serve`: read the bot's updates with getUpdates and hand each to the bot.

On a laptop there is no public HTTPS address for a webhook, so with OMIS_TELEGRAM_TOKEN set and
OMIS_TELEGRAM_WEBHOOK_SECRET unset the local host asks Telegram for updates itself, in a
background thread: getUpdates waits up to WAIT_SECONDS for the next update; `offset` confirms
those handled (Telegram then forgets them). An update whose handling met a storage outage is
not confirmed and comes again with the next call. A webhook set for the bot makes getUpdates
fail (409): the poller says so and stops. It stops cleanly with `stop()` (Ctrl-C under serve):
a call in flight is not waited for (the thread is a daemon) and its updates are not confirmed.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import requests

from ..settings import Settings
from ..storage import StorageUnavailable
from .botapi import BotClient
from .telegram import TelegramError, explain

logger = logging.getLogger(__name__)

WAIT_SECONDS = 25
MAX_PAUSE = 60.0
WEBHOOK_ACTIVE = ("Telegram: у бота настроен webhook, поэтому обновления не читаются здесь (getUpdates "
                  "недоступен). Для работы на этом компьютере удалите webhook: python -m functions "
                  "telegram-webhook --delete (в Azure его потом нужно будет поставить снова).")

Handler = Callable[[dict[str, Any]], object]


class UpdatePoller:
    """Reads updates by long polling in a background thread and hands each to `handle`."""

    def __init__(self, settings: Settings, handle: Handler, *, wait_seconds: int = WAIT_SECONDS,
                 session: requests.Session | None = None, pause: Callable[[float], object] | None = None) -> None:
        self.settings = settings
        self.handle = handle
        self.wait_seconds = wait_seconds
        self.client = BotClient(settings, session)
        self.offset: int | None = None
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wait = pause or self._stop.wait     # after a failure; stop() cuts it short

    def start(self) -> None:
        """Start polling in a daemon thread."""
        logger.info("Telegram: читаю обновления бота (long polling, getUpdates); webhook не используется")
        self._thread = threading.Thread(target=self._loop, name="omis-telegram-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop polling; a call in flight is left to end on its own."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        logger.info("Telegram: чтение обновлений остановлено")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set() and self.poll_once():
                pass
        finally:
            self.client.close()

    def _pause(self) -> None:
        self.failures += 1
        self._wait(min(MAX_PAUSE, 2.0 ** self.failures))

    def poll_once(self) -> bool:
        """Ask for updates once and handle them; False when polling cannot go on (webhook set, bad token)."""
        try:
            reply = self.client.get_updates(self.offset, self.wait_seconds)
        except TelegramError as exc:
            logger.warning("%s", exc)
            self._pause()
            return True
        if not reply.ok:
            if reply.code == 409 and "webhook" in reply.description.lower():
                logger.error("%s", WEBHOOK_ACTIVE)
                return False
            logger.log(logging.ERROR if reply.code in (401, 404) else logging.WARNING, "%s",
                       explain(reply, "getUpdates"))
            if reply.code in (401, 404):
                return False
            self._pause()
            return True
        self.failures = 0
        for update in reply.result if isinstance(reply.result, list) else []:
            if self._stop.is_set():
                return False
            update_id = update.get("update_id") if isinstance(update, dict) else None
            try:
                self.handle(update)
            except StorageUnavailable as exc:
                logger.warning("Telegram: обновление %s подождёт: %s", update_id, exc)
                self._pause()
                return True   # not confirmed: getUpdates gives it again
            except Exception:
                logger.exception("Telegram: обновление %s не обработано", update_id)
            if isinstance(update_id, int):
                self.offset = max(self.offset or 0, update_id + 1)
        return True


def poller_for_serve(settings: Settings, handle: Handler) -> UpdatePoller | None:
    """Return the poller `serve` runs, or None when updates come by webhook or the bot is not set up."""
    if not settings.telegram_token:
        return None
    if settings.telegram_webhook_secret:
        logger.info("Telegram: задан OMIS_TELEGRAM_WEBHOOK_SECRET — обновления приходят на /telegram/webhook, "
                    "long polling не запускаю")
        return None
    if not settings.telegram_chat_id:
        # Reading the updates would confirm them, and telegram-chats would then find no chat to show.
        logger.warning("Telegram: OMIS_TELEGRAM_CHAT_ID не задан — бот не читает команды; узнайте id чата "
                       "командой python -m functions telegram-chats")
        return None
    return UpdatePoller(settings, handle)
