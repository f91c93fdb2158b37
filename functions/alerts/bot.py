"""The bot: act on one Telegram update — a command or a pressed digest button — at most once (SPEC §9).

The same `handle_update` serves the webhook (alerts/webhook.py) and long polling under `serve`
(alerts/polling.py). Only updates from OMIS_TELEGRAM_CHAT_ID and OMIS_ESCALATION_CHAT_ID are
obeyed; nothing is written for others. An update is claimed in storage before anything is done
(storage/bot.py), so a redelivered update, or two deliveries at once, act once. Answers go to
the chat and forum topic the update came from, as replies, with short timeouts. Nothing slow
(a mail pass) runs here.

Outcomes: "done", "duplicate" (acted on already, or being acted on), "foreign" (another chat),
"ignored" (not a command or button for OMIS), "unreadable", "failed" (an error, logged; the
update counts as acted on, so Telegram does not deliver it for ever). StorageUnavailable is
raised after giving the claim back: the caller has the update delivered again later.
"""
from __future__ import annotations

import contextlib
import json
import logging
from datetime import datetime, timezone

from ..model import utcnow
from ..settings import Settings
from ..storage import StorageUnavailable, Store, get_store
from ..storage.bot import DIGEST_KEEP, BotStore, snooze_request, update_key
from .botapi import BotClient
from .buttons import read_callback_data
from .digest import TELEGRAM_LIMIT, DigestItem, telegram_length
from .presses import ACTIONS, Press
from .remind import Breach, read_breaches, working_hours_limit
from .replies import (
    delayed_text,
    help_text,
    not_found_text,
    snooze_note,
    snoozed_reply,
    status_text,
    usage_text,
)
from .snoozing import parse_choice, snooze_until
from .telegram import escape_html
from .updates import Command, Incoming, UnreadableUpdate, is_obeyed, read_update

logger = logging.getLogger(__name__)

COMMANDS = frozenset({"help", "start", "delayed", "status", "snooze"})
PRUNE_EVERY = 50          # update markers are pruned when an update id is a multiple of this


def _excerpt(data: object) -> str:
    try:
        return json.dumps(data, ensure_ascii=False)[:200]
    except (TypeError, ValueError):
        return repr(data)[:200]


def _for_us(command: Command, client: BotClient) -> bool:
    """Say whether a command is OMIS's to answer (`/cmd@otherbot` is not; an unknown one only if named to us)."""
    if command.bot is None:
        return command.name in COMMANDS
    ours = client.username()
    if ours is None:
        return command.name in COMMANDS
    return command.bot == ours.lower()


def handle_update(data: object, *, store: Store | None = None, now: datetime | None = None,
                  client: BotClient | None = None) -> str:
    """Act on one update at most once; return the outcome (see the module docstring)."""
    store = store or get_store()
    settings = store.settings
    now = (now or utcnow()).astimezone(timezone.utc)
    try:
        incoming = read_update(data)
    except UnreadableUpdate:
        logger.warning("Telegram: обновление не прочитано (нет update_id), пропущено: %s", _excerpt(data))
        return "unreadable"
    if incoming.kind == "other":
        return "ignored"
    if not is_obeyed(incoming, (settings.telegram_chat_id, settings.escalation_chat_id)):
        logger.info("Telegram: обновление %d из чата %s, который OMIS не слушает, — без действия",
                    incoming.update_id, incoming.chat_id)
        return "foreign"
    own_client = client is None
    bot = client if client is not None else BotClient(settings)
    try:
        if incoming.command is not None and not _for_us(incoming.command, bot):
            return "ignored"
        bots = BotStore(store.tables.requests)
        at = bots.claim_update(incoming.update_id, now)
        if at is None:
            logger.info("Telegram: обновление %d уже обработано или обрабатывается", incoming.update_id)
            return "duplicate"
        outcome = _act_once(incoming, store, bot, bots, at)
        if outcome == "done" and incoming.update_id % PRUNE_EVERY == 0:
            _prune(bots, now)
        return outcome
    finally:
        if own_client:
            bot.close()


def _act_once(incoming: Incoming, store: Store, bot: BotClient, bots: BotStore, at: datetime) -> str:
    try:
        if incoming.command is not None:
            _command(incoming, incoming.command, store, bot, at)
        else:
            _button(incoming, store, bot, bots, at)
    except StorageUnavailable:
        with contextlib.suppress(StorageUnavailable):   # else the claim's lease runs out
            bots.release_update(incoming.update_id)
        raise
    except Exception:
        logger.exception("Telegram: обновление %d не обработано", incoming.update_id)
        bots.finish_update(incoming.update_id)
        return "failed"
    bots.finish_update(incoming.update_id)
    return "done"


def _prune(bots: BotStore, now: datetime) -> None:
    try:
        bots.prune_updates(now)
    except Exception as exc:  # noqa: BLE001 - old markers can wait for the next prune
        logger.warning("Telegram: старые отметки обновлений не удалены: %s", exc)


# ----- commands -------------------------------------------------------------------------------

def _command(incoming: Incoming, command: Command, store: Store, bot: BotClient, at: datetime) -> None:
    if incoming.chat_id is None:   # read_update gives commands with their chat; this keeps the type honest
        return
    if command.name in ("help", "start"):
        text = help_text(command.bot)
    elif command.name == "delayed":
        text = delayed_reply(store, at)
    elif command.name == "status":
        text = _status(command, store, at)
    elif command.name == "snooze":
        text = _snooze(command, incoming, store, at)
    else:
        text = f"Не знаю команды /{command.name}. Список команд — /help."
    bot.reply(incoming.chat_id, text, thread_id=incoming.thread_id, reply_to=incoming.message_id)
    logger.info("Telegram: /%s в чате %s", command.name, incoming.chat_id)


def delayed_reply(store: Store, now: datetime) -> str:
    """Return the answer to /delayed: every request whose deadline has passed, snoozed ones named."""
    settings = store.settings
    breaches = read_breaches(store.requests.deadline_rows(now), now, settings)
    snoozed: list[tuple[str, datetime]] = []
    for breach in breaches:
        until = breach.request.snoozed_until
        if until is not None and until > now:
            snoozed.append((breach.request.number, until))
    return delayed_text([_item(b, settings) for b in breaches], snoozed, settings, now)


def _item(breach: Breach, settings: Settings) -> DigestItem:
    request, level = breach.request, settings.level(breach.request.level)
    # A breach always has its deadline and kind; the fallbacks only satisfy the Optional types.
    return DigestItem(number=request.number, position=request.position, level_title=level.title,
                      status=request.status, kind=breach.state.kind or "accept",
                      deadline=breach.state.deadline or request.created_at,
                      overdue_minutes=breach.overdue,
                      working_time=level.clock == "work" and working_hours_limit(settings),
                      last_news_at=request.last_news_at, comment=request.comment)


def _status(command: Command, store: Store, now: datetime) -> str:
    if not command.args:
        return usage_text("status")
    number = command.args[0]
    request = store.get_request(number)
    if request is None:
        return not_found_text(number)
    return status_text(request, number, store.settings, now)


def _snooze(command: Command, incoming: Incoming, store: Store, at: datetime) -> str:
    settings = store.settings
    choice = parse_choice(command.args[1]) if len(command.args) == 2 else None
    if choice is None:
        return usage_text("snooze")
    number = command.args[0]
    request = store.get_request(number, with_history=False)
    if request is None:
        return not_found_text(number)
    until = snooze_until(choice, at, settings.calendar)
    outcome = snooze_request(store.requests, request.id, until, author=incoming.user or "Telegram",
                             note=snooze_note(until, settings.timezone), now=at, extend_only=False)
    if outcome == "gone":
        return not_found_text(number)
    if outcome == "closed":
        return f"Заявка «{escape_html(request.number)}» в архиве или закрыта: напоминаний о ней и так нет."
    return snoozed_reply(request.number, until, settings.timezone, at)


# ----- buttons --------------------------------------------------------------------------------

def _button(incoming: Incoming, store: Store, bot: BotClient, bots: BotStore, at: datetime) -> None:
    if incoming.callback_id is None:
        return
    pressed = read_callback_data(incoming.callback_data)
    digest = bots.get_digest(pressed.digest_id) if pressed is not None else None
    action = ACTIONS.get(pressed.code) if pressed is not None else None
    if pressed is None or action is None:
        bot.answer_callback(incoming.callback_id, "Эта кнопка больше не работает.")
        return
    if digest is None:
        bot.answer_callback(incoming.callback_id, f"Сводка устарела: кнопки работают {DIGEST_KEEP.days} дней. "
                                                  "Просроченные заявки сейчас — /delayed.")
        return
    if pressed.index is not None and not 0 <= pressed.index < len(digest.request_ids):
        bot.answer_callback(incoming.callback_id, "Эта кнопка больше не работает.")
        return
    result = action(Press(store, digest, pressed.index, incoming.user or "Telegram",
                          update_key(incoming.update_id), at))
    bot.answer_callback(incoming.callback_id, result.answer)
    logger.info("Telegram: кнопка %s сводки %s — %s", pressed.code, digest.id, result.answer)
    if result.note is None or incoming.chat_id is None or incoming.message_id is None:
        return
    digest = bots.set_note(digest.id, *result.note)
    notes = "\n".join(line for _, line in digest.notes)
    text = f"{digest.text}\n\n{notes}"
    if telegram_length(text) <= TELEGRAM_LIMIT and bot.edit(incoming.chat_id, incoming.message_id, text,
                                                            digest.keyboard):
        return
    # The digest's part was full (or cannot be edited): say it beside the message instead.
    bot.reply(incoming.chat_id, result.note[1], thread_id=incoming.thread_id, reply_to=incoming.message_id)

