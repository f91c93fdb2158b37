"""The requests data layer on Azure Table Storage.

All rows of all requests live in one partition of the requests table, so that every change
of a request (its row, its index rows, a history row, a processed-mail marker) is a single
entity-group transaction, and the list and delay indexes are single range queries:

  r_<num>                      the request
  u_<inverted updated>_<num>   "last updated first" index (carries the listed fields)
  s_<status>_<inv upd>_<num>   the same index per status (status filter)
  d_<status updated>_<num>     delay index: non-final requests, oldest status change first
  h_<num>_<seq>                history, one row per change
  m_<message>_<num>            a mail message already applied to that request
  c_counts                     number of requests per status
"""
from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError, ResourceModifiedError
from azure.data.tables import TableTransactionError, UpdateMode

from .model import (
    DEFAULT_STATUS,
    FINAL_STATUSES,
    MAIL_COMMENT_MAX,
    ROBOT_AUTHOR,
    STATUSES,
    HistoryEntry,
    Request,
    ValidationError,
    normalize_number,
    utcnow,
    validate_new_request,
    validate_status_change,
)
from .settings import get_settings
from .tables import (
    REQUESTS_TABLE,
    TABLE_SUFFIXES,
    StorageBusy,
    StorageUnavailable,
    StoreError,
    as_utc,
    decode_cursor,
    encode_cursor,
    inverted_ts_key,
    number_key,
    table,
    translate_errors,
    ts_key,
)

__all__ = [
    "DEFAULT_STATUS",
    "ROBOT_AUTHOR",
    "STATUSES",
    "StoreError",
    "StorageUnavailable",
    "StorageBusy",
    "DuplicateRequestError",
    "RequestNotFound",
    "ValidationError",
    "RequestPage",
    "MailApplyResult",
    "init_db",
    "add_request",
    "get_request",
    "get_requests",
    "update_status",
    "update_comment",
    "get_delayed_requests",
    "claim_reminders",
    "release_reminders",
    "status_counts",
    "apply_mail",
    "message_key",
    "ping",
]

logger = logging.getLogger(__name__)

PARTITION = "R"
COUNTS_ROW = "c_counts"
MAX_ATTEMPTS = 8

# Fields of the request row that the index rows copy, so a page needs no second read.
_LISTED = ("Number", "Position", "Description", "Author", "Status", "Comment", "CommentAuthor",
           "CreatedAt", "StatusUpdatedAt", "UpdatedAt")


class DuplicateRequestError(StoreError):
    """A request with this number (in any letter case) already exists."""

    def __init__(self, number: str) -> None:
        self.number = number
        super().__init__(f"Заявка с номером «{number}» уже есть.")


class RequestNotFound(StoreError):
    """No request has this number."""

    def __init__(self, number: str) -> None:
        self.number = number
        super().__init__(f"Заявка «{number}» не найдена.")


@dataclass(frozen=True)
class RequestPage:
    """One page of the list and the cursor of the next page (None on the last)."""

    items: list[Request]
    next_cursor: str | None


@dataclass(frozen=True)
class MailApplyResult:
    """What applying one mail message to one request did."""

    outcome: str  # "status_changed", "recorded" (history/comment only) or "duplicate"
    request: Request | None


def _status_code(status: str) -> str:
    return str(STATUSES.index(status))


def _requests_table():
    return table(REQUESTS_TABLE)


def init_db() -> list[str]:
    """Create the OMIS tables if they do not exist; return their names."""
    names = []
    for suffix in TABLE_SUFFIXES:
        names.append(table(suffix).table_name)
    return names


def ping() -> None:
    """Raise StorageUnavailable unless storage answers a read."""
    with translate_errors():
        next(iter(_requests_table().query_entities(
            "PartitionKey eq @pk and RowKey eq @rk", parameters={"pk": PARTITION, "rk": COUNTS_ROW},
            select=["RowKey"])), None)


# ----- reading ---------------------------------------------------------------------------

def _to_request(entity: dict[str, Any], history: Iterable[HistoryEntry] = ()) -> Request:
    return Request(
        number=entity["Number"],
        position=entity.get("Position") or "",
        description=entity.get("Description") or "",
        author=entity.get("Author") or "",
        status=entity["Status"],
        comment=entity.get("Comment") or "",
        comment_author=entity.get("CommentAuthor") or "",
        created_at=as_utc(entity["CreatedAt"]),
        status_updated_at=as_utc(entity["StatusUpdatedAt"]),
        updated_at=as_utc(entity["UpdatedAt"]),
        last_reminded_at=as_utc(entity.get("LastRemindedAt")),
        history=tuple(history),
    )


def _to_history(entity: dict[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        at=as_utc(entity["At"]),
        status=entity["Status"],
        comment=entity.get("Comment") or "",
        author=entity.get("Author") or "",
        source=entity.get("Source") or "",
        message_id=entity.get("MessageId"),
        subject=entity.get("Subject"),
        position=entity.get("MailPosition"),
    )


def _range(prefix: str, after: str | None = None, select: list[str] | None = None,
           limit: int | None = None, before: str | None = None):
    query = "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi"
    params = {"pk": PARTITION, "lo": after or prefix, "hi": before or prefix + "~"}
    return _requests_table().query_entities(query, parameters=params, select=select,
                                            results_per_page=limit)


def _read_row(number: str) -> dict[str, Any] | None:
    try:
        return _requests_table().get_entity(PARTITION, "r_" + number_key(number))
    except ResourceNotFoundError:
        return None


def get_request(number: str, with_history: bool = True) -> Request | None:
    """Return one request (with its history, oldest first), or None if there is none."""
    if not isinstance(number, str) or not number.strip():
        return None
    with translate_errors():
        row = _read_row(number)
        if row is None:
            return None
        history: list[HistoryEntry] = []
        if with_history:
            rows = list(_range(f"h_{number_key(number)}_"))
            rows.sort(key=lambda e: (as_utc(e["At"]), e.get("Seq", 0)))
            history = [_to_history(e) for e in rows]
    return _to_request(row, history)


def get_requests(status: str | None = None, q: str | None = None, limit: int = 50,
                 cursor: str | None = None) -> RequestPage:
    """Return a page of requests, last updated first, filtered by status and by text."""
    if status is not None and status not in STATUSES:
        raise ValidationError({"status": "Неизвестный статус."})
    if not 1 <= limit <= 100:
        raise ValidationError({"limit": "limit: от 1 до 100."})
    prefix = f"s_{_status_code(status)}_" if status else "u_"
    after = None
    if cursor:
        try:
            after = decode_cursor(cursor)
        except ValueError:
            raise ValidationError({"cursor": "Неверный курсор."}) from None
        if not after.startswith(prefix):
            raise ValidationError({"cursor": "Курсор не от этого списка."})
    needle = (q or "").strip().casefold()
    items: list[Request] = []
    keys: list[str] = []
    with translate_errors():
        for entity in _range(prefix, after=after, limit=min(limit + 1, 1000) if not needle else 1000):
            if needle and needle not in entity.get("Search", ""):
                continue
            if len(items) == limit:
                return RequestPage(items, encode_cursor(keys[-1]))
            items.append(_to_request(entity))
            keys.append(entity["RowKey"])
    return RequestPage(items, None)


def status_counts() -> dict[str, int]:
    """Return how many requests there are in each status."""
    with translate_errors():
        try:
            row = _requests_table().get_entity(PARTITION, COUNTS_ROW)
        except ResourceNotFoundError:
            row = {}
    return {status: int(row.get(f"S{_status_code(status)}", 0)) for status in STATUSES}


def get_delayed_requests(minutes: int | None = None, now: datetime | None = None,
                         cutoff: datetime | None = None) -> list[Request]:
    """Return non-final requests whose status last changed before the cutoff, oldest first.

    The cutoff defaults to `now - minutes` (minutes: OMIS_DELAY_MINUTES); callers that count
    only working minutes pass their own cutoff.
    """
    if cutoff is None:
        minutes = get_settings().delay_minutes if minutes is None else minutes
        cutoff = (now or utcnow()) - timedelta(minutes=minutes)
    with translate_errors():
        rows = list(_range("d_", before=f"d_{ts_key(cutoff)}"))
    return [_to_request(e) for e in rows]


# ----- writing ---------------------------------------------------------------------------

def _index_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the index rows a request row needs, each carrying the listed fields."""
    key = number_key(row["Number"])
    listed = {name: row.get(name) for name in _LISTED}
    search = "\n".join((row["Number"], row.get("Position") or "", row.get("Comment") or "")).casefold()
    updated = inverted_ts_key(row["UpdatedAt"])
    rows = [
        {"PartitionKey": PARTITION, "RowKey": f"u_{updated}_{key}", **listed, "Search": search},
        {"PartitionKey": PARTITION, "RowKey": f"s_{_status_code(row['Status'])}_{updated}_{key}",
         **listed, "Search": search},
    ]
    if row["Status"] not in FINAL_STATUSES:
        rows.append({"PartitionKey": PARTITION, "RowKey": f"d_{ts_key(row['StatusUpdatedAt'])}_{key}",
                     **listed, "LastRemindedAt": row.get("LastRemindedAt")})
    return [{k: v for k, v in r.items() if v is not None} for r in rows]


def _index_ops(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple]:
    """Return the operations that move the index rows from the old request row to the new."""
    old_rows = {r["RowKey"]: r for r in _index_rows(old)} if old else {}
    ops: list[tuple] = []
    for r in _index_rows(new):
        ops.append(("upsert", r, {"mode": UpdateMode.REPLACE}) if r["RowKey"] in old_rows else ("create", r))
    new_keys = {op[1]["RowKey"] for op in ops}
    ops.extend(("delete", {"PartitionKey": PARTITION, "RowKey": k}) for k in old_rows if k not in new_keys)
    return ops


def _counts_ops(old_status: str | None, new_status: str) -> list[tuple]:
    if old_status == new_status:
        return []
    tbl = _requests_table()
    try:
        row = tbl.get_entity(PARTITION, COUNTS_ROW)
    except ResourceNotFoundError:
        row = None
    counts = {f"S{i}": int((row or {}).get(f"S{i}", 0)) for i in range(len(STATUSES))}
    if old_status is not None:
        counts[f"S{_status_code(old_status)}"] -= 1
    counts[f"S{_status_code(new_status)}"] += 1
    entity = {"PartitionKey": PARTITION, "RowKey": COUNTS_ROW, **counts}
    if row is None:
        return [("create", entity)]
    return [("update", entity, {"mode": UpdateMode.REPLACE, "etag": row.metadata["etag"],
                                "match_condition": MatchConditions.IfNotModified})]


def _history_row(row: dict[str, Any], seq: int, entry: HistoryEntry) -> dict[str, Any]:
    data = {
        "PartitionKey": PARTITION,
        "RowKey": f"h_{number_key(row['Number'])}_{seq:08d}",
        "Seq": seq, "At": entry.at, "Status": entry.status, "Comment": entry.comment,
        "Author": entry.author, "Source": entry.source, "MessageId": entry.message_id,
        "Subject": entry.subject, "MailPosition": entry.position,
    }
    return {k: v for k, v in data.items() if v is not None}


def _submit(ops: list[tuple]) -> None:
    _requests_table().submit_transaction(ops)


def _backoff(attempt: int) -> None:
    """Wait a little before retrying a conflicting transaction, more after each try (with jitter)."""
    time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))


def _is_conflict(exc: Exception) -> bool:
    code = getattr(exc, "status_code", None)
    return code in (409, 412) or isinstance(exc, (ResourceModifiedError, ResourceExistsError))


def add_request(number: str, position: str = "", description: str = "", author: str | None = None,
                source: str = "web", now: datetime | None = None) -> Request:
    """Store a new request with the default status; raise ValidationError or DuplicateRequestError."""
    number, position, description = validate_new_request(number, position, description)
    author = (author or get_settings().dev_user).strip()[:200]
    at = now or utcnow()
    row = {
        "PartitionKey": PARTITION, "RowKey": "r_" + number_key(number), "Number": number,
        "Position": position, "Description": description, "Author": author, "Status": DEFAULT_STATUS,
        "Comment": "", "CommentAuthor": "", "CreatedAt": at, "StatusUpdatedAt": at, "UpdatedAt": at,
        "CommentAt": at, "HistorySeq": 1,
    }
    entry = HistoryEntry(at=at, status=DEFAULT_STATUS, comment="Заявка зарегистрирована.",
                         author=author, source=source)
    with translate_errors():
        for attempt in range(MAX_ATTEMPTS):
            if _read_row(number) is not None:
                raise DuplicateRequestError(number)
            ops = [("create", row), *_index_ops(None, row), ("create", _history_row(row, 1, entry)),
                   *_counts_ops(None, DEFAULT_STATUS)]
            try:
                _submit(ops)
                break
            except TableTransactionError as exc:
                if not _is_conflict(exc):
                    raise
                logger.info("add_request %s: conflict, retrying (%d)", number, attempt + 1)
                _backoff(attempt)
        else:
            raise StorageBusy(f"Не удалось сохранить заявку «{number}»: слишком много одновременных изменений.")
    return _to_request(row, (entry,))


def _change(number: str, *, at: datetime, status: str | None, comment: str, author: str, source: str,
            message_id: str | None = None, subject: str | None = None, mail_position: str | None = None,
            marker: str | None = None) -> MailApplyResult:
    """Apply one change to a request in one transaction, retrying on concurrent writers.

    A change dated before the last status change is still recorded in the history but moves
    neither the status nor the latest comment (mail may arrive out of order).
    """
    with translate_errors():
        for attempt in range(MAX_ATTEMPTS):
            old = _read_row(number)
            if old is None:
                raise RequestNotFound(number)
            if marker is not None and _marker_exists(marker, old["Number"]):
                return MailApplyResult("duplicate", None)
            new = dict(old)
            in_order = at >= as_utc(old["StatusUpdatedAt"])
            changes_status = status is not None and status != old["Status"] and in_order
            if changes_status:
                new["Status"] = status
                new["StatusUpdatedAt"] = at
                new.pop("LastRemindedAt", None)
            if comment and at >= as_utc(old.get("CommentAt") or old["CreatedAt"]):
                new["Comment"], new["CommentAuthor"], new["CommentAt"] = comment, author, at
            new["UpdatedAt"] = max(at, as_utc(old["UpdatedAt"]))
            seq = int(old.get("HistorySeq", 0)) + 1
            new["HistorySeq"] = seq
            entry = HistoryEntry(at=at, status=new["Status"], comment=comment, author=author, source=source,
                                 message_id=message_id, subject=subject, position=mail_position)
            new_row = {k: v for k, v in new.items() if v is not None}
            ops: list[tuple] = [("update", new_row, {"mode": UpdateMode.REPLACE, "etag": old.metadata["etag"],
                                                     "match_condition": MatchConditions.IfNotModified})]
            ops += _index_ops(old, new_row)
            ops.append(("create", _history_row(new_row, seq, entry)))
            ops += _counts_ops(old["Status"], new_row["Status"])
            if marker is not None:
                ops.append(("create", {"PartitionKey": PARTITION, "RowKey": _marker_key(marker, old["Number"]),
                                       "AppliedAt": utcnow(), "MessageId": message_id or ""}))
            try:
                _submit(ops)
            except TableTransactionError as exc:
                if not _is_conflict(exc):
                    raise
                logger.info("change of %s: conflict, retrying (%d)", number, attempt + 1)
                _backoff(attempt)
                continue
            outcome = "status_changed" if changes_status else "recorded"
            return MailApplyResult(outcome, _to_request(new_row))
    raise StorageBusy(f"Не удалось изменить заявку «{number}»: слишком много одновременных изменений.")


def update_status(number: str, status: str, comment: str = "", author: str = ROBOT_AUTHOR,
                  source: str = "web", now: datetime | None = None) -> Request:
    """Set a request's status (and comment) by hand; raise ValidationError or RequestNotFound."""
    status, comment = validate_status_change(status, comment)
    current = get_request(number, with_history=False)
    if current is None:
        raise RequestNotFound(number)
    if status == current.status and not comment:
        raise ValidationError({"comment": "Статус не меняется: добавьте комментарий."})
    result = _change(number, at=now or utcnow(), status=status, comment=comment, author=author, source=source)
    return result.request


def update_comment(number: str, comment: str, author: str = ROBOT_AUTHOR, source: str = "web",
                   now: datetime | None = None) -> Request:
    """Record a note about a request without changing its status."""
    _, comment = validate_status_change(DEFAULT_STATUS, comment)
    if not comment:
        raise ValidationError({"comment": "Комментарий пуст."})
    result = _change(number, at=now or utcnow(), status=None, comment=comment, author=author, source=source)
    return result.request


def message_key(internet_message_id: str | None, graph_id: str | None) -> str:
    """Return the stable key of a mail message: its internetMessageId, else its Graph id."""
    raw = (internet_message_id or "").strip() or (graph_id or "").strip()
    if not raw:
        raise ValueError("у письма нет ни internetMessageId, ни id")
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]


def _marker_key(marker: str, number: str) -> str:
    return f"m_{marker}_{number_key(number)}"


def _marker_exists(marker: str, number: str) -> bool:
    try:
        _requests_table().get_entity(PARTITION, _marker_key(marker, number), select=["RowKey"])
        return True
    except ResourceNotFoundError:
        return False


def apply_mail(number: str, *, message: str, status: str | None, comment: str, received: datetime,
               author: str, message_id: str | None, subject: str | None,
               position: str | None = None) -> MailApplyResult:
    """Apply one mail message to one request, at most once per (message, request).

    `message` is message_key(...); the processed-message marker is written in the same
    transaction as the change, so a retried or overlapping pass finds it and skips.
    """
    if status is not None and status not in STATUSES:
        raise ValidationError({"status": "Неизвестный статус."})
    comment = " ".join((comment or "").split())[:MAIL_COMMENT_MAX]
    return _change(number, at=received, status=status, comment=comment, author=author or ROBOT_AUTHOR,
                   source="mail", message_id=message_id, subject=(subject or "")[:500],
                   mail_position=position, marker=message)


def _delay_key(request: Request) -> str:
    return f"d_{ts_key(request.status_updated_at)}_{number_key(request.number)}"


def _get_row(row_key: str) -> dict[str, Any] | None:
    try:
        return _requests_table().get_entity(PARTITION, row_key)
    except ResourceNotFoundError:
        return None


def _claim_ops(request: Request, delay_row: dict[str, Any], at: datetime) -> list[tuple]:
    """Merge the reminder time into a request's delay row (guarded by its ETag) and request row."""
    return [
        ("update", {"PartitionKey": PARTITION, "RowKey": delay_row["RowKey"], "LastRemindedAt": at},
         {"mode": UpdateMode.MERGE, "etag": delay_row.metadata["etag"],
          "match_condition": MatchConditions.IfNotModified}),
        ("update", {"PartitionKey": PARTITION, "RowKey": "r_" + number_key(request.number), "LastRemindedAt": at},
         {"mode": UpdateMode.MERGE}),
    ]


def _still_as_read(request: Request, delay_row: dict[str, Any] | None) -> bool:
    """Say whether a delay row still shows the request as the pass read it (same status, same reminder)."""
    return delay_row is not None and as_utc(delay_row.get("LastRemindedAt")) == request.last_reminded_at


def _retrying(build: Callable[[], list[tuple] | None]) -> bool:
    """Build and submit a transaction, rebuilding it after each conflict.

    False when `build` finds nothing to do (None or no operations), a row it names is gone,
    or the conflicts outlast MAX_ATTEMPTS.
    """
    for attempt in range(MAX_ATTEMPTS):
        ops = build()
        if not ops:
            return False
        try:
            _submit(ops)
            return True
        except TableTransactionError as exc:
            if getattr(exc, "status_code", None) == 404:
                return False
            if not _is_conflict(exc):
                raise
            _backoff(attempt)
    return False


def _claim_one(request: Request, at: datetime) -> bool:
    def build() -> list[tuple] | None:
        row = _get_row(_delay_key(request))
        return _claim_ops(request, row, at) if _still_as_read(request, row) else None
    return _retrying(build)


def claim_reminders(requests: Iterable[Request], at: datetime) -> list[Request]:
    """Note a reminder at `at` before it goes out; return the requests this call noted.

    A request is noted only while its delay row still carries the reminder time the pass read
    (checked against the row's ETag in the same transaction): of two passes that read the same
    delayed request, one notes it and sends, the other gets nothing. A request whose status
    changed since it was read is not noted (its delay row is gone). Batches of 50 requests; a
    batch that fails whole is retried request by request.
    """
    pending = [r for r in requests if r.status not in FINAL_STATUSES]
    if not pending:
        return []
    claimed: list[Request] = []
    with translate_errors():
        oldest = min(r.status_updated_at for r in pending)
        newest = max(r.status_updated_at for r in pending)
        rows = {e["RowKey"]: e for e in _range("d_", after=f"d_{ts_key(oldest)}", before=f"d_{ts_key(newest)}_~")}
        ready = [(r, rows[_delay_key(r)]) for r in pending if _still_as_read(r, rows.get(_delay_key(r)))]
        for start in range(0, len(ready), 50):
            chunk = ready[start:start + 50]
            try:
                _submit([op for request, row in chunk for op in _claim_ops(request, row, at)])
                claimed += [request for request, _ in chunk]
            except TableTransactionError:
                claimed += [request for request, _ in chunk if _claim_one(request, at)]
    return claimed


def _release_one(request: Request, at: datetime) -> bool:
    def build() -> list[tuple]:
        ops = []
        for row in (_get_row(_delay_key(request)), _get_row("r_" + number_key(request.number))):
            if row is None or as_utc(row.get("LastRemindedAt")) != at:
                continue
            restored = {k: v for k, v in row.items() if k != "LastRemindedAt"}
            if request.last_reminded_at is not None:
                restored["LastRemindedAt"] = request.last_reminded_at
            ops.append(("update", restored, {"mode": UpdateMode.REPLACE, "etag": row.metadata["etag"],
                                             "match_condition": MatchConditions.IfNotModified}))
        return ops
    return _retrying(build)


def release_reminders(requests: Iterable[Request], at: datetime) -> int:
    """Take back the reminder noted at `at` from requests it did not reach; return how many.

    Each request gets back the reminder time it had when the pass read it, unless its rows
    carry another reminder time by now (another pass, a status change).
    """
    with translate_errors():
        return sum(_release_one(request, at) for request in requests)
