"""Reading Telegram updates: who wrote, in which chat and topic, which command or button (pure).

Only two kinds of update are acted on: a new message that starts with a command (`/status 101`,
`/status@omis_bot 101`) and a pressed inline button (callback_query). Everything else — edited
messages, plain text, members joining — is read as "other" and left alone.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

NAME_MAX = 100
_COMMAND_RE = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?$")


class UnreadableUpdate(ValueError):
    """The body is not a Telegram update (no object, no integer update_id)."""


@dataclass(frozen=True)
class Command:
    """A command as typed: its name in lower case, the bot it names (if any) and its words."""

    name: str
    bot: str | None
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Incoming:
    """One update, as much of it as OMIS acts on."""

    update_id: int
    kind: str                          # "command", "callback" or "other"
    chat_id: str | None = None
    chat_username: str | None = None
    chat_type: str = ""
    thread_id: int | None = None       # the forum topic to answer in (only for topic messages)
    message_id: int | None = None      # the message with the command, or the one carrying the button
    user: str = ""                     # the sender's name as history records it
    command: Command | None = None
    callback_id: str | None = None
    callback_data: str | None = None


def _clean(text: str) -> str:
    """Drop control and format characters (a name becomes a history author and a line of a message)."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))


def sender_name(user: object) -> str:
    """Return a Telegram user's first and last name, else @username, else «id N»."""
    if not isinstance(user, dict):
        return ""
    parts = [_clean(str(user[key])).strip() for key in ("first_name", "last_name") if isinstance(user.get(key), str)]
    name = " ".join(" ".join(p for p in parts if p).split())
    if not name and isinstance(user.get("username"), str) and _clean(user["username"]).strip():
        name = "@" + _clean(user["username"]).strip()
    if not name and isinstance(user.get("id"), int):
        name = f"id {user['id']}"
    return name[:NAME_MAX]


def parse_command(text: object) -> Command | None:
    """Read `/name[@bot] words…` at the start of a message; None when it is not a command."""
    if not isinstance(text, str):
        return None
    words = text.strip().split()
    if not words:
        return None
    match = _COMMAND_RE.match(words[0])
    if match is None:
        return None
    bot = match.group(2).lower() if match.group(2) else None
    return Command(match.group(1).lower(), bot, tuple(words[1:]))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _chat(message: dict[str, Any]) -> tuple[str | None, str | None, str]:
    chat = message.get("chat")
    if not isinstance(chat, dict) or _int(chat.get("id")) is None:
        return None, None, ""
    username = chat.get("username") if isinstance(chat.get("username"), str) else None
    return str(chat["id"]), username, str(chat.get("type") or "")


def _topic(message: dict[str, Any]) -> int | None:
    # A reply thread of an ordinary group has a message_thread_id too; only forum topics take one back.
    return _int(message.get("message_thread_id")) if message.get("is_topic_message") is True else None


def read_update(data: object) -> Incoming:
    """Read an update; UnreadableUpdate when it is not one at all."""
    if not isinstance(data, dict) or _int(data.get("update_id")) is None or data["update_id"] < 0:
        raise UnreadableUpdate("no update_id")
    update_id = data["update_id"]
    message = data.get("message")
    if isinstance(message, dict):
        command = parse_command(message.get("text"))
        chat_id, username, chat_type = _chat(message)
        if command is None or chat_id is None:
            return Incoming(update_id, "other", chat_id, username, chat_type)
        return Incoming(update_id, "command", chat_id, username, chat_type, thread_id=_topic(message),
                        message_id=_int(message.get("message_id")), user=sender_name(message.get("from")),
                        command=command)
    callback = data.get("callback_query")
    if isinstance(callback, dict) and isinstance(callback.get("id"), str):
        held = callback.get("message")
        held = held if isinstance(held, dict) else {}
        chat_id, username, chat_type = _chat(held)
        data_text = callback.get("data") if isinstance(callback.get("data"), str) else None
        return Incoming(update_id, "callback", chat_id, username, chat_type, thread_id=_topic(held),
                        message_id=_int(held.get("message_id")), user=sender_name(callback.get("from")),
                        callback_id=callback["id"], callback_data=data_text)
    return Incoming(update_id, "other")


def is_obeyed(incoming: Incoming, chats: Iterable[str | None]) -> bool:
    """Say whether an update comes from one of the chats OMIS obeys (ids, or @channel names)."""
    for chat in chats:
        if not chat:
            continue
        if chat.startswith("@"):
            if incoming.chat_username and chat[1:].lower() == incoming.chat_username.lower():
                return True
        elif incoming.chat_id is not None and chat.strip() == incoming.chat_id:
            return True
    return False
