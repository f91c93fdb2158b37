"""Updates as Telegram sends them: a message in the chat, a press of a button (for the fake Bot API)."""
from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .telegram_server import SentMessage

DEFAULT_CHAT_ID = "-1001234567890"
_USER = {"id": 555000111, "is_bot": False, "first_name": "Иван", "last_name": "Петров", "username": "ipetrov"}
_callback_ids = itertools.count(1)


def message_payload(text: str, *, chat_id: str = DEFAULT_CHAT_ID, user: dict[str, Any] | None = None,
                    thread_id: int | None = None, message_id: int = 1) -> dict[str, Any]:
    """Return a `message` as Telegram sends it: a group message (in a forum topic when thread_id is given)."""
    message: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "text": text,
                               "from": _USER if user is None else user,
                               "chat": {"id": int(chat_id), "type": "supergroup", "title": "OMIS test chat"}}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if thread_id is not None:
        message.update(message_thread_id=thread_id, is_topic_message=True)
    return message


def press_payload(message: SentMessage, data: str, *, user: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a `callback_query`: a press of a button under a message the bot sent."""
    held: dict[str, Any] = {"message_id": message.message_id, "date": int(time.time()), "text": message.text,
                            "chat": {"id": int(message.chat_id), "type": "supergroup", "title": "OMIS test chat"}}
    if message.message_thread_id:
        held.update(message_thread_id=int(message.message_thread_id), is_topic_message=True)
    return {"id": f"cb{next(_callback_ids)}", "from": _USER if user is None else user, "chat_instance": "1",
            "message": held, "data": data}


def update(kind: str, payload: dict[str, Any], update_id: int) -> dict[str, Any]:
    """Return an update as a webhook receives it."""
    return {"update_id": update_id, kind: payload}
