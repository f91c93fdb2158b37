"""The row layout of the requests table (schema version 2): keys, and rows ↔ model values.

Every row of every request lives in one partition (PARTITION), so that every change of a request
is one entity-group transaction. Keys are built from the request's immutable id (22 hex digits)
and fixed-width fields, never from its number, so a key range of one request is never a prefix of
another's and numbers can be corrected:

  r_<id>                              the request
  h_<id>_<seq:08>                     history, one row per change
  n_<hash of the case-folded number>  number → id; the current number and every alias (old numbers)
  x_<hash of the look-alike skeleton>_<id>   numbers that look alike across scripts (refusal)
  u_<inverted updated>_<id>           "last updated first" (not archived)
  s_<status>_<inverted updated>_<id>  the same per status (not archived)
  a_<inverted updated>_<id>           archived requests, last updated first
  k_<deadline>_<id>                   deadline index: open requests with a running deadline, earliest first
  z_<inverted updated>_<id>           open or final requests without a running deadline (not archived)
  c_<created>_<id>                    every request by creation time (reports; archived included)
  m_<message key>_<id>                a mail message already applied to that request
  o_<id>_<seq:04>                     the request's outbox mail
  q_<queued>_<id>_<seq:04>            the send queue: outbox mail still to send, oldest first
  t_0                                 status counts up to the last fold
  t_1_<at>_<id>_<seq:08>              a change of the status counts since (written blind, folded later)

Index rows (u s a k z c) carry the request row's fields, so a page is one range query.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..model import FINAL_STATUSES, STATUSES, HistoryEntry, OutboxMail, Request, normalize_number
from .tables import as_utc, inverted_ts_key, ts_key

PARTITION = "main"
META = "meta"
SCHEMA_ROW = "schema"
SCHEMA_VERSION = 2
ID_LENGTH = 22
INDEX_PREFIXES = ("u_", "s_", "a_", "k_", "z_", "c_")
TALLY_SNAPSHOT = "t_0"
TALLY_DELTA = "t_1_"

_DATES = ("CreatedAt", "StatusUpdatedAt", "UpdatedAt", "CommentAt", "Due", "Promised", "FirstNewsAt",
          "LastNewsAt", "ClarifySince", "LastRemindedAt", "LastEscalatedAt", "SnoozedUntil", "Deadline")


def new_id() -> str:
    """Return a new immutable request id (22 hex digits)."""
    return secrets.token_hex(ID_LENGTH // 2)


def digest(text: str, size: int = 32) -> str:
    """Return a hex digest of a text, for keys that stand for text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:size]


def status_code(status: str) -> str:
    return str(STATUSES.index(status))


def request_key(request_id: str) -> str:
    return f"r_{request_id}"


def history_key(request_id: str, seq: int) -> str:
    return f"h_{request_id}_{seq:08d}"


def lookup_key(number: str) -> str:
    return "n_" + digest(normalize_number(number))


def similar_prefix(skeleton: str) -> str:
    return "x_" + digest(skeleton) + "_"


def marker_key(message_key: str, request_id: str) -> str:
    return f"m_{message_key}_{request_id}"


def outbox_key(request_id: str, seq: int) -> str:
    return f"o_{request_id}_{seq:04d}"


def queue_key(queued: datetime, request_id: str, seq: int) -> str:
    return f"q_{ts_key(queued)}_{request_id}_{seq:04d}"


def deadline_key(deadline: datetime, request_id: str) -> str:
    return f"k_{ts_key(deadline)}_{request_id}"


def tally_delta_key(at: datetime, request_id: str, seq: int) -> str:
    return f"{TALLY_DELTA}{ts_key(at)}_{request_id}_{seq:08d}"


def _json_times(pairs: Iterable[tuple[datetime, datetime]]) -> str:
    return json.dumps([[a.isoformat(), b.isoformat()] for a, b in pairs])


def _times_json(text: str | None) -> tuple[tuple[datetime, datetime], ...]:
    if not text:
        return ()
    return tuple((as_utc(datetime.fromisoformat(a)), as_utc(datetime.fromisoformat(b)))
                 for a, b in json.loads(text))


def search_text(row: dict[str, Any]) -> str:
    """Return what the list's text search looks in: numbers (old ones too), position, comment."""
    aliases = json.loads(row.get("Aliases") or "[]")
    return "\n".join([row["Number"], *aliases, row.get("Position") or "", row.get("Comment") or ""]).casefold()


def index_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the index rows a request row needs, each carrying the row's fields."""
    request_id = row["Id"]
    fields = {k: v for k, v in row.items() if k not in ("PartitionKey", "RowKey") and v is not None}
    fields["Search"] = search_text(row)
    updated = inverted_ts_key(row["UpdatedAt"])
    keys = [f"c_{ts_key(row['CreatedAt'])}_{request_id}"]
    if row.get("Archived"):
        keys.append(f"a_{updated}_{request_id}")
    else:
        keys.append(f"u_{updated}_{request_id}")
        keys.append(f"s_{status_code(row['Status'])}_{updated}_{request_id}")
        if row.get("Deadline") is not None:
            keys.append(deadline_key(row["Deadline"], request_id))
        else:
            keys.append(f"z_{updated}_{request_id}")
    return [{"PartitionKey": PARTITION, "RowKey": key, **fields} for key in keys]


def index_ops(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple]:
    """Return the operations that move the index rows from the old request row to the new."""
    from azure.data.tables import UpdateMode

    old_keys = {r["RowKey"] for r in index_rows(old)} if old else set()
    ops: list[tuple] = []
    new_rows = index_rows(new)
    for r in new_rows:
        ops.append(("upsert", r, {"mode": UpdateMode.REPLACE}) if r["RowKey"] in old_keys else ("create", r))
    new_keys = {r["RowKey"] for r in new_rows}
    ops.extend(("delete", {"PartitionKey": PARTITION, "RowKey": k}) for k in sorted(old_keys - new_keys))
    return ops


def row_from_request(request: Request, *, history_seq: int, outbox_seq: int = 0,
                     deadline: tuple[datetime, str] | None = None, extra: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    """Return the request row for a Request value (None fields left out, as Table Storage stores them)."""
    row: dict[str, Any] = {
        "PartitionKey": PARTITION, "RowKey": request_key(request.id), "Id": request.id,
        "Number": request.number, "Position": request.position, "Description": request.description,
        "Author": request.author, "Status": request.status, "Comment": request.comment,
        "CommentAuthor": request.comment_author, "CreatedAt": request.created_at,
        "StatusUpdatedAt": request.status_updated_at, "UpdatedAt": request.updated_at,
        "HistorySeq": history_seq, "OutboxSeq": outbox_seq, "Archived": request.archived,
        "Level": request.level, "Due": request.due, "Promised": request.promised,
        "FirstNewsAt": request.first_news_at, "LastNewsAt": request.last_news_at,
        "ClarifySince": request.clarify_since, "ClarifyAnswered": request.clarify_answered,
        "Pauses": _json_times(request.pauses) if request.pauses else None,
        "Aliases": json.dumps(list(request.aliases), ensure_ascii=False) if request.aliases else None,
        "LastRemindedAt": request.last_reminded_at, "LastEscalatedAt": request.last_escalated_at,
        "SnoozedUntil": request.snoozed_until,
        "Breaches": json.dumps(sorted(request.breaches)) if request.breaches else None,
        "Deadline": deadline[0] if deadline else None, "DeadlineKind": deadline[1] if deadline else None,
        **(extra or {}),
    }
    return {k: v for k, v in row.items() if v is not None}


def request_from_row(entity: dict[str, Any], history: Iterable[HistoryEntry] = (),
                     outbox: Iterable[OutboxMail] = ()) -> Request:
    """Return the Request value of a request row (or of an index row, which carries its fields)."""
    times = {name: as_utc(entity.get(name)) for name in _DATES}
    return Request(
        number=entity["Number"], position=entity.get("Position") or "",
        description=entity.get("Description") or "", author=entity.get("Author") or "",
        status=entity["Status"], comment=entity.get("Comment") or "",
        comment_author=entity.get("CommentAuthor") or "",
        created_at=times["CreatedAt"], status_updated_at=times["StatusUpdatedAt"],  # type: ignore[arg-type]
        updated_at=times["UpdatedAt"],  # type: ignore[arg-type]
        id=entity["Id"], level=entity.get("Level") or "", due=times["Due"], promised=times["Promised"],
        archived=bool(entity.get("Archived")), first_news_at=times["FirstNewsAt"],
        last_news_at=times["LastNewsAt"], clarify_since=times["ClarifySince"],
        clarify_answered=bool(entity.get("ClarifyAnswered")), pauses=_times_json(entity.get("Pauses")),
        aliases=tuple(json.loads(entity.get("Aliases") or "[]")),
        last_reminded_at=times["LastRemindedAt"], last_escalated_at=times["LastEscalatedAt"],
        snoozed_until=times["SnoozedUntil"], breaches=tuple(json.loads(entity.get("Breaches") or "[]")),
        history=tuple(history), outbox=tuple(outbox),
    )


def history_row(request_id: str, seq: int, entry: HistoryEntry) -> dict[str, Any]:
    """Return the history row of one change."""
    data = {
        "PartitionKey": PARTITION, "RowKey": history_key(request_id, seq), "Seq": seq, "At": entry.at,
        "Status": entry.status, "Comment": entry.comment, "Author": entry.author, "Source": entry.source,
        "MessageId": entry.message_id, "Subject": entry.subject, "MailPosition": entry.position,
        "Promised": entry.promised, "To": ", ".join(entry.to) if entry.to else None,
    }
    return {k: v for k, v in data.items() if v is not None}


def history_from_row(entity: dict[str, Any]) -> HistoryEntry:
    """Return the HistoryEntry of a history row."""
    to = entity.get("To") or ""
    return HistoryEntry(
        at=as_utc(entity["At"]), status=entity["Status"], comment=entity.get("Comment") or "",
        author=entity.get("Author") or "", source=entity.get("Source") or "",
        message_id=entity.get("MessageId"), subject=entity.get("Subject"), position=entity.get("MailPosition"),
        promised=as_utc(entity.get("Promised")), to=tuple(a.strip() for a in to.split(",") if a.strip()),
    )


def is_open(row: dict[str, Any]) -> bool:
    """Say whether a request row is neither final nor archived."""
    return row["Status"] not in FINAL_STATUSES and not row.get("Archived")
