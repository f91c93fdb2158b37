"""The outbox: mail OMIS is to send about a request, written with the change that asked for it.

  o_<id>_<seq:04>             one mail: its fixed Message-ID, recipients, subject, text, HTML, state
  q_<queued>_<id>_<seq:04>    the send queue: present while the mail is queued, oldest first

Both live in the request's partition, so queueing a mail is part of the change's transaction
(a request created with «Отправить подрядчику», a nudge). Sending is claimed on the o_ row under
its ETag before the mail goes out, and recorded (state, history entry, queue row gone) in one
transaction after; see functions/mail/outbox.py for the pass and its exactly-once rules.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.data.tables import UpdateMode

from ..model import HistoryEntry
from . import layout
from .layout import PARTITION
from .requests import Change, RequestStore
from .tables import as_utc, if_unchanged, is_conflict

QUEUED, SENT, FAILED = "queued", "sent", "failed"


@dataclass(frozen=True)
class OutgoingMail:
    """What to send: fixed when it is queued, so a retry sends the very same mail."""

    kind: str                              # "request" or "nudge"
    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    message_id: str                        # our Message-ID, <…@domain>
    reply_to: str | None = None            # Graph id of the mail to answer (the `reply` action)
    in_reply_to: str | None = None         # its internetMessageId
    references: tuple[str, ...] = ()
    requested_by: str = ""
    nudge_for: str | None = None           # "<kind>@<deadline>" of the deadline an automatic nudge answers
    extra: dict[str, Any] = field(default_factory=dict)


def queue_ops(request_id: str, seq: int, mail: OutgoingMail, at: datetime) -> list[tuple]:
    """Return the operations that queue a mail as the request's outbox mail number `seq`."""
    entity = {
        "PartitionKey": PARTITION, "RowKey": layout.outbox_key(request_id, seq), "Id": request_id, "Seq": seq,
        "Kind": mail.kind, "To": json.dumps(list(mail.to)), "Subject": mail.subject[:1000], "Text": mail.text,
        "Html": mail.html, "MessageId": mail.message_id, "ReplyTo": mail.reply_to, "InReplyTo": mail.in_reply_to,
        "References": json.dumps(list(mail.references)) if mail.references else None,
        "RequestedBy": mail.requested_by[:200], "NudgeFor": mail.nudge_for, "State": QUEUED, "QueuedAt": at,
        "StateAt": at, "Attempts": 0,
    }
    queue = {"PartitionKey": PARTITION, "RowKey": layout.queue_key(at, request_id, seq), "Id": request_id, "Seq": seq}
    return [("create", {k: v for k, v in entity.items() if v is not None}), ("create", queue)]


def queued(store: RequestStore, limit: int = 50) -> list[dict[str, Any]]:
    """Return the queue rows of mail still to send, oldest first."""
    rows = []
    for entity in store.iter_rows("q_", page_size=limit):
        rows.append(entity)
        if len(rows) >= limit:
            break
    return rows


def mail_row(store: RequestStore, request_id: str, seq: int) -> dict[str, Any] | None:
    """Return an outbox row, or None."""
    return store.table.get(PARTITION, layout.outbox_key(request_id, seq))


def outgoing(entity: dict[str, Any]) -> OutgoingMail:
    """Return the mail an outbox row holds."""
    return OutgoingMail(kind=entity.get("Kind") or "request", to=tuple(json.loads(entity.get("To") or "[]")),
                        subject=entity.get("Subject") or "", text=entity.get("Text") or "",
                        html=entity.get("Html") or "", message_id=entity["MessageId"], reply_to=entity.get("ReplyTo"),
                        in_reply_to=entity.get("InReplyTo"),
                        references=tuple(json.loads(entity.get("References") or "[]")),
                        requested_by=entity.get("RequestedBy") or "", nudge_for=entity.get("NudgeFor"))


def claim(store: RequestStore, entity: dict[str, Any], *, by: str, at: datetime) -> dict[str, Any] | None:
    """Note an attempt to send on the outbox row, under the ETag it was read with; None if another pass did first."""
    claimed = dict(entity)
    claimed.update(Attempts=int(entity.get("Attempts") or 0) + 1, ClaimedAt=at, ClaimedBy=by[:200])
    try:
        store.table.update(claimed, mode=UpdateMode.REPLACE, **if_unchanged(entity))
    except Exception as exc:
        if is_conflict(exc):
            return None
        raise
    return mail_row(store, entity["Id"], int(entity["Seq"]))


def finish(store: RequestStore, entity: dict[str, Any], *, state: str, at: datetime, error: str = "",
           conversation_id: str | None = None, graph_id: str | None = None) -> bool:
    """Record a mail as sent or failed for good: its row, the queue row gone, a history entry.

    One transaction in the request's partition (the change engine: the request row moves too),
    so a mail is never "sent" without its history entry or still queued after it. False when
    the row was finished meanwhile (another pass).
    """
    request_id, seq = entity["Id"], int(entity["Seq"])
    mail = outgoing(entity)

    def decide(row: dict[str, Any], _: int) -> Change | None:
        current = mail_row(store, request_id, seq)
        if current is None or current.get("State") != QUEUED:
            return None
        done = dict(current)
        done.update(State=state, StateAt=at, Error=error[:2000] or None, ConversationId=conversation_id,
                    SentGraphId=graph_id)
        done = {k: v for k, v in done.items() if v is not None}
        ops: list[tuple] = [("update", done, {"mode": UpdateMode.REPLACE, **if_unchanged(current)})]
        ops.append(("delete", {"PartitionKey": PARTITION,
                               "RowKey": layout.queue_key(as_utc(current["QueuedAt"]), request_id, seq)}))
        who = "подрядчику" if mail.kind == "request" else "подрядчику (напоминание)"
        comment = (f"Письмо {who} отправлено." if state == SENT else f"Письмо {who} не отправлено: {error}")
        entry = HistoryEntry(at=at, status=row["Status"], comment=comment, author=mail.requested_by or "Робот",
                             source="outbox", message_id=mail.message_id, subject=mail.subject, to=mail.to)
        fields: dict[str, Any] = {"UpdatedAt": max(at, as_utc(row["UpdatedAt"]))}
        if state == SENT:
            fields.update(LastSentId=mail.message_id, LastSentAt=at)
        return Change(fields, entry, ops=ops)
    return store.change(request_id, decide, busy="хранилище занято, письмо будет отмечено в следующий раз") is not None


def drop_queue_row(store: RequestStore, queue_row: dict[str, Any]) -> None:
    """Remove a queue row whose mail is no longer queued (left behind by nothing: kept tidy)."""
    store.table.delete(PARTITION, queue_row["RowKey"])

