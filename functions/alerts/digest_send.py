"""Sending the team digest with its buttons: the digest is kept first, then its parts go out.

The reminder pass (remind.py) sends a digest part by part through a channel; this one keeps
the digest in storage (its requests, and the text and keyboard of its last part, which carries
the buttons) before the first part goes out, so a press that comes at once finds it. A digest
that cannot be kept goes out without buttons: the reminder matters more.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import requests

from ..deadlines import KINDS, deadline_state, facts_of
from ..model import Request, normalize_number
from ..settings import Settings
from ..storage import Store
from ..storage.bot import BotStore, new_digest_id
from .buttons import digest_keyboard
from .digest import split_message
from .presses import digest_kinds
from .telegram import send_message

logger = logging.getLogger(__name__)


def _place(request: Request, settings: Settings) -> tuple[int, datetime, str]:
    """Return where the digest names a request: by the kind of its deadline, then the deadline, then the number."""
    state = deadline_state(facts_of(request), settings.level(request.level), settings.calendar)
    kind = KINDS.index(state.kind) if state.kind in KINDS else len(KINDS)
    return kind, state.deadline or request.created_at, normalize_number(request.number)


def team_digest_channel(store: Store, team: Sequence[Request], text: str, now: datetime, *,
                        session: requests.Session | None = None,
                        sleep: Callable[[float], None] = time.sleep) -> Callable[[str], bool]:
    """Keep the digest of `team` and return the channel that sends its parts, the last with the buttons."""
    settings = store.settings
    parts = split_message(text)
    keyboard = None
    team = sorted(team, key=lambda request: _place(request, settings))
    if parts and team and settings.telegram_chat_id:
        try:
            digest_id = new_digest_id(now)
            numbers = [request.number for request in team]
            keyboard = digest_keyboard(digest_id, numbers, digest_kinds(settings, len(team)))
            BotStore(store.tables.requests).record_digest(
                request_ids=[request.id for request in team], numbers=numbers, chat_id=settings.telegram_chat_id,
                thread_id=settings.telegram_thread_id, text=parts[-1], keyboard=keyboard, now=now,
                digest_id=digest_id)
        except Exception as exc:  # noqa: BLE001 - the reminder goes out all the same, without buttons
            logger.warning("Напоминание уйдёт без кнопок: сводку не удалось записать (%s)", exc)
            keyboard = None
    sent = 0

    def channel(part: str) -> bool:
        nonlocal sent
        sent += 1
        markup = keyboard if sent == len(parts) else None
        return send_message(part, settings=settings, session=session, sleep=sleep, reply_markup=markup)
    return channel
