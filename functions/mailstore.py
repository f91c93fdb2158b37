"""Mail-side storage: unmatched mail, the mailbox sync state and conversation links.

Rows of the mail table:
  partition "unmatched": <inverted received>_<message>   mail that named no known request
  partition "state":     <name>                          e.g. the Graph delta link of a folder
  partition "conv":      <conversation hash>_<number>    which requests a conversation is tied to
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from .tables import (
    MAIL_TABLE,
    as_utc,
    decode_cursor,
    encode_cursor,
    fit_text,
    inverted_ts_key,
    number_key,
    table,
    translate_errors,
)

UNMATCHED = "unmatched"
STATE = "state"
CONVERSATIONS = "conv"
# What is kept of an unmatched mail's text and numbers, in UTF-16 units (a property holds 32K).
_TEXT_MAX = 30_000
_NUMBERS_MAX = 30_000


@dataclass(frozen=True)
class UnmatchedMail:
    """A mail that named no known request, kept for a person to look at."""

    message_key: str
    subject: str
    sender: str
    received: datetime
    numbers: tuple[str, ...]
    message_id: str
    reason: str = ""
    text: str = ""


def _row_key(mail: UnmatchedMail) -> str:
    return f"{inverted_ts_key(mail.received)}_{mail.message_key}"


def _numbers_json(numbers: tuple[str, ...]) -> str:
    """Return the numbers as JSON, as many of them as fit one property."""
    kept: list[str] = []
    size = 2
    for number in numbers:
        size += len(json.dumps(number)) + 2   # ASCII-escaped: one UTF-16 unit per character
        if size > _NUMBERS_MAX:
            break
        kept.append(number)
    return json.dumps(kept)


def save_unmatched_mail(mail: UnmatchedMail) -> None:
    """Keep an unmatched mail (saving the same message again changes nothing); any size fits."""
    entity = {
        "PartitionKey": UNMATCHED, "RowKey": _row_key(mail), "Subject": mail.subject[:2000],
        "Sender": mail.sender[:500], "Received": mail.received, "Numbers": _numbers_json(mail.numbers),
        "MessageId": mail.message_id[:1000], "MessageKey": mail.message_key, "Reason": mail.reason[:2000],
        "Text": fit_text(mail.text, _TEXT_MAX),
    }
    with translate_errors():
        table(MAIL_TABLE).upsert_entity(entity, mode=UpdateMode.REPLACE)


def list_unmatched_mail(limit: int = 50, cursor: str | None = None) -> tuple[list[UnmatchedMail], str | None]:
    """Return unmatched mail, newest first, and the cursor of the next page (None on the last)."""
    if limit < 1:
        raise ValueError("limit должен быть не меньше 1")
    after = decode_cursor(cursor) if cursor else ""
    query = "PartitionKey eq @pk and RowKey gt @after"
    items: list[UnmatchedMail] = []
    with translate_errors():
        for entity in table(MAIL_TABLE).query_entities(query, parameters={"pk": UNMATCHED, "after": after},
                                                        results_per_page=limit + 1):
            if len(items) == limit:
                return items, encode_cursor(last_key)
            items.append(UnmatchedMail(
                message_key=entity.get("MessageKey", ""), subject=entity.get("Subject", ""),
                sender=entity.get("Sender", ""), received=as_utc(entity["Received"]),
                numbers=tuple(json.loads(entity.get("Numbers") or "[]")),
                message_id=entity.get("MessageId", ""), reason=entity.get("Reason", ""),
                text=entity.get("Text", "")))
            last_key = entity["RowKey"]
    return items, None


def get_state(name: str) -> str | None:
    """Return a saved piece of sync state (such as a delta link), or None."""
    with translate_errors():
        try:
            return table(MAIL_TABLE).get_entity(STATE, name)["Value"]
        except ResourceNotFoundError:
            return None


def set_state(name: str, value: str | None) -> None:
    """Save (or, with None, forget) a piece of sync state."""
    with translate_errors():
        if value is None:
            table(MAIL_TABLE).delete_entity(STATE, name)
        else:
            table(MAIL_TABLE).upsert_entity({"PartitionKey": STATE, "RowKey": name, "Value": value},
                                            mode=UpdateMode.REPLACE)


def _conversation_prefix(conversation_id: str) -> str:
    return hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()[:32] + "_"


def link_conversation(conversation_id: str, number: str) -> None:
    """Tie a Graph conversation to a request, so that later replies without a number find it."""
    with translate_errors():
        table(MAIL_TABLE).upsert_entity({"PartitionKey": CONVERSATIONS,
                                         "RowKey": _conversation_prefix(conversation_id) + number_key(number),
                                         "Number": number}, mode=UpdateMode.REPLACE)


def conversation_numbers(conversation_id: str) -> list[str]:
    """Return the request numbers a conversation is tied to."""
    prefix = _conversation_prefix(conversation_id)
    query = "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi"
    with translate_errors():
        rows = table(MAIL_TABLE).query_entities(query, parameters={"pk": CONVERSATIONS, "lo": prefix,
                                                                   "hi": prefix + "~"}, select=["Number"])
        return [row["Number"] for row in rows]
