"""Mail-side storage: unmatched mail, the mailbox position and conversation links (the mail table).

Partitions of the mail table (schema version 2):
  "unmatched": i_<inverted received>_<message key>   mail that named no known request (open)
               d_<same>                              …dismissed by a person
               h_<same>                              …attached to a request or made a request of
               s_<message key>                       a message was kept here once (never again)
  "state":     <name>                                e.g. the Graph resume link of a folder
  "links":     <conversation hash>_<request id>      which requests a conversation is tied to

An unmatched mail's id (in URLs and the API) is `<inverted received>_<message key>`; moving it
between open, dismissed and handled is one transaction in its partition, guarded by ETags.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from azure.data.tables import TableTransactionError, UpdateMode

from ..model import utcnow
from .layout import digest
from .tables import KEY_CHARS, Tables, as_utc, decode_cursor, encode_cursor, fit_text, if_unchanged, inverted_ts_key

UNMATCHED = "unmatched"
STATE = "state"
LINKS = "links"
OPEN, DISMISSED, HANDLED = "i_", "d_", "h_"
_TEXT_MAX = 30_000      # UTF-16 units kept of an unmatched mail's text (a property holds 32K)
_NUMBERS_MAX = 30_000
LINKS_PER_TRANSACTION = 100   # Table Storage's limit of one transaction
CLAIM_SECONDS = 120     # an attach that did not finish in this time may be taken over


class UnmatchedGone(Exception):
    """The unmatched mail is not (or no longer) on the list: handled or dismissed already."""


class UnmatchedBusy(Exception):
    """Someone is attaching this mail to another request right now."""


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
    unique_text: str = ""
    conversation_id: str = ""
    graph_id: str = ""
    sender_address: str = ""
    state: str = "open"            # open | dismissed | attached | created
    handled_by: str = ""
    handled_at: datetime | None = None
    request_number: str = ""
    claim: str = ""                # request id an attach in progress is for

    @property
    def id(self) -> str:
        return f"{inverted_ts_key(self.received)}_{self.message_key}"


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


def _entity(mail: UnmatchedMail, prefix: str) -> dict[str, Any]:
    entity = {
        "PartitionKey": UNMATCHED, "RowKey": prefix + mail.id, "Subject": mail.subject[:2000],
        "Sender": mail.sender[:500], "SenderAddress": mail.sender_address[:500], "Received": mail.received,
        "Numbers": _numbers_json(mail.numbers), "MessageId": mail.message_id[:1000],
        "MessageKey": mail.message_key, "Reason": mail.reason[:2000], "Text": fit_text(mail.text, _TEXT_MAX),
        "UniqueText": fit_text(mail.unique_text, _TEXT_MAX) if mail.unique_text else None,
        "ConversationId": mail.conversation_id[:1000] or None, "GraphId": mail.graph_id[:1000] or None,
        "State": mail.state, "HandledBy": mail.handled_by or None, "HandledAt": mail.handled_at,
        "RequestNumber": mail.request_number or None, "Claim": mail.claim or None,
    }
    return {k: v for k, v in entity.items() if v is not None}


def _mail(entity: dict[str, Any]) -> UnmatchedMail:
    return UnmatchedMail(
        message_key=entity.get("MessageKey", ""), subject=entity.get("Subject", ""),
        sender=entity.get("Sender", ""), received=as_utc(entity["Received"]),
        numbers=tuple(json.loads(entity.get("Numbers") or "[]")), message_id=entity.get("MessageId", ""),
        reason=entity.get("Reason", ""), text=entity.get("Text", ""), unique_text=entity.get("UniqueText", ""),
        conversation_id=entity.get("ConversationId", ""), graph_id=entity.get("GraphId", ""),
        sender_address=entity.get("SenderAddress", ""), state=entity.get("State") or "open",
        handled_by=entity.get("HandledBy", ""), handled_at=as_utc(entity.get("HandledAt")),
        request_number=entity.get("RequestNumber", ""), claim=entity.get("Claim", ""))


def valid_item_id(item_id: object) -> bool:
    """Say whether a text can be an unmatched mail's id (inverted time, "_", 40 hex digits)."""
    return isinstance(item_id, str) and 40 < len(item_id) <= 120 and KEY_CHARS.issuperset(item_id)


class MailStore:
    """The mail table of one storage configuration."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    @property
    def table(self):  # type: ignore[no-untyped-def]
        return self.tables.mail

    # ----- the mailbox position -----------------------------------------------------------

    def get_state(self, name: str) -> str | None:
        """Return a saved piece of sync state (such as a delta link), or None."""
        entity = self.table.get(STATE, name)
        return entity["Value"] if entity else None

    def set_state(self, name: str, value: str | None) -> None:
        """Save (or, with None, forget) a piece of sync state."""
        if not KEY_CHARS.issuperset(name):
            raise ValueError(f"state name {name!r} is not a valid key")
        if value is None:
            self.table.delete(STATE, name)
        else:
            self.table.upsert({"PartitionKey": STATE, "RowKey": name, "Value": value}, mode=UpdateMode.REPLACE)

    # ----- conversations --------------------------------------------------------------------

    def link_conversation(self, conversation_id: str, request_id: str) -> None:
        """Tie a Graph conversation to a request, so that later replies without a number find it."""
        self.link_conversations([(conversation_id, request_id)])

    def link_conversations(self, links: list[tuple[str, str]]) -> None:
        """Tie conversations to requests, (conversation id, request id) each: one transaction per 100."""
        rows = {digest(conversation_id) + "_" + request_id: request_id for conversation_id, request_id in links}
        ops = [("upsert", {"PartitionKey": LINKS, "RowKey": key, "Id": request_id}, {"mode": UpdateMode.REPLACE})
               for key, request_id in rows.items()]
        for start in range(0, len(ops), LINKS_PER_TRANSACTION):
            self.table.submit(ops[start:start + LINKS_PER_TRANSACTION])

    def conversation_requests(self, conversation_id: str) -> list[str]:
        """Return the ids of the requests a conversation is tied to."""
        prefix = digest(conversation_id) + "_"
        return [row["Id"] for row in self.table.range(LINKS, prefix, prefix + "~", select=["Id"])]

    # ----- unmatched mail --------------------------------------------------------------------

    def keep_unmatched(self, mail: UnmatchedMail) -> bool:
        """Keep a mail on the unmatched list; False when this message was kept before (any state)."""
        seen = {"PartitionKey": UNMATCHED, "RowKey": "s_" + mail.message_key, "Item": mail.id}
        try:
            self.table.submit([("create", seen), ("create", _entity(mail, OPEN))])
        except TableTransactionError as exc:
            if exc.status_code == 409:
                return False
            raise
        return True

    def list_unmatched(self, limit: int = 50, cursor: str | None = None,
                       dismissed: bool = False) -> tuple[list[UnmatchedMail], str | None]:
        """Return open (or dismissed) unmatched mail, newest first, and the next page's cursor."""
        if limit < 1:
            raise ValueError("limit должен быть не меньше 1")
        prefix = DISMISSED if dismissed else OPEN
        after = decode_cursor(cursor) if cursor else prefix
        if not after.startswith(prefix):
            raise ValueError("неверный курсор")
        items: list[UnmatchedMail] = []
        last_key = ""
        for entity in self.table.range(UNMATCHED, after, prefix + "~", page_size=limit + 1):
            if len(items) == limit:
                return items, encode_cursor(last_key)
            items.append(_mail(entity))
            last_key = entity["RowKey"]
        return items, None

    def count_unmatched(self, up_to: int = 100) -> int:
        """Count the open unmatched mail, stopping at `up_to` (the menu shows «99+»)."""
        count = 0
        for _ in self.table.range(UNMATCHED, OPEN, OPEN + "~", select=["RowKey"], page_size=up_to):
            count += 1
            if count >= up_to:
                break
        return count

    def get_unmatched(self, item_id: str) -> UnmatchedMail | None:
        """Return an unmatched mail by its id, whatever its state, or None."""
        if not valid_item_id(item_id):
            return None
        for prefix in (OPEN, HANDLED, DISMISSED):
            entity = self.table.get(UNMATCHED, prefix + item_id)
            if entity is not None:
                return _mail(entity)
        return None

    def claim(self, item_id: str, request_id: str, *, by: str, now: datetime | None = None) -> UnmatchedMail:
        """Note that `by` is attaching an open mail to a request; raise UnmatchedGone or UnmatchedBusy.

        The claim is written under the row's ETag: of two people attaching the same mail at once
        to different requests, one gets UnmatchedBusy. A claim older than CLAIM_SECONDS (its attach
        died) may be taken over by the caller, who first checks whether it was applied after all.
        """
        now = now or utcnow()
        entity = self.table.get(UNMATCHED, OPEN + item_id)
        if entity is None:
            raise UnmatchedGone(item_id)
        claimed, at = entity.get("Claim"), as_utc(entity.get("ClaimedAt"))
        if claimed and claimed != request_id and at is not None and now - at < timedelta(seconds=CLAIM_SECONDS):
            raise UnmatchedBusy(claimed)
        entity["Claim"], entity["ClaimedAt"], entity["ClaimedBy"] = request_id, now, by[:200]
        try:
            self.table.update(entity, mode=UpdateMode.REPLACE, **if_unchanged(entity))
        except Exception as exc:
            if getattr(exc, "status_code", None) in (409, 412):
                raise UnmatchedBusy(request_id) from None
            raise
        return _mail(entity)

    def close(self, item_id: str, state: str, *, by: str, request_number: str = "",
              now: datetime | None = None) -> UnmatchedMail:
        """Take a mail off the open list as dismissed/attached/created; raise UnmatchedGone if it is not there."""
        entity = self.table.get(UNMATCHED, OPEN + item_id)
        if entity is None:
            raise UnmatchedGone(item_id)
        mail = _mail(entity)
        done = replace(mail, state=state, handled_by=by[:200], handled_at=now or utcnow(),
                       request_number=request_number, claim="")
        target = DISMISSED if state == "dismissed" else HANDLED
        try:
            self.table.submit([("delete", entity, if_unchanged(entity)),
                               ("upsert", _entity(done, target), {"mode": UpdateMode.REPLACE})])
        except TableTransactionError as exc:
            if exc.status_code in (404, 409, 412):
                raise UnmatchedGone(item_id) from None
            raise
        return done
