"""The changes people and mail make to a request, each decided from the row as read (see requests.py).

A person's change takes a fresh timestamp at each attempt (never before the request's last
change), so concurrent changes of one request are applied one after another, each in the
history in the order it took effect. Mail happens at its received time: a mail older than the
last status change is recorded in the history but moves neither the status nor the comment.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..deadlines import record_change
from ..model import (
    FINAL_STATUSES,
    ROBOT_AUTHOR,
    HistoryEntry,
    Request,
    normalize_number,
    utcnow,
)
from . import layout
from .errors import ConflictError, DuplicateRequestError, MailApplyResult, RequestNotFound
from .layout import PARTITION
from .requests import Change, RequestStore, _similar_row, facts_fields, fresh_time, later
from .tables import as_utc

UNSET: Any = object()


def _require(store: RequestStore, number: str) -> str:
    request_id = store.resolve(number)
    if request_id is None:
        raise RequestNotFound(number)
    return request_id


def _result(store: RequestStore, done: tuple[dict[str, Any], Change] | None, request_id: str) -> Request:
    if done is None:
        found = store.get_by_id(request_id, with_history=False)
        if found is None:
            raise RequestNotFound(request_id)
        return found
    return layout.request_from_row(done[0])


def _busy(number: str) -> str:
    return f"Не удалось изменить заявку «{number}»: слишком много одновременных изменений, повторите."


def _facts_after(store: RequestStore, row: dict[str, Any], *, at: datetime, status: str, source: str,
                 news: bool) -> dict[str, Any]:
    facts = record_change(store.facts(row), at=at, status=status, source=source, news=news)
    return facts_fields(facts)


def change_status(store: RequestStore, number: str, status: str, comment: str, *, author: str, source: str,
                  now: datetime | None = None) -> Request:
    """Set a request's status (and comment) by hand; values already validated.

    Unchanged status without a comment: ValueError on the first try (nothing to do), ConflictError
    when another change made it so meanwhile. Archived: ConflictError.
    """
    request_id = _require(store, number)

    def decide(row: dict[str, Any], attempt: int) -> Change:
        if row.get("Archived"):
            raise ConflictError(f"Заявка «{row['Number']}» в архиве: верните её из архива, чтобы изменить.")
        if status == row["Status"] and not comment:
            if attempt == 0:
                raise ValueError("Статус не меняется: выберите другой или добавьте комментарий.")
            raise ConflictError(f"Заявку «{row['Number']}» только что изменили: статус уже «{status}».")
        at = fresh_time(row, now)
        note = comment
        if row["Status"] in FINAL_STATUSES and status not in FINAL_STATUSES:
            reopened = f"Заявка открыта снова (была «{row['Status']}»)."
            note = f"{reopened} {comment}".strip()
        fields: dict[str, Any] = {"UpdatedAt": at}
        if status != row["Status"]:
            fields.update(Status=status, StatusUpdatedAt=at)
        if comment:
            fields.update(Comment=comment, CommentAuthor=author, CommentAt=at)
        fields.update(_facts_after(store, row, at=at, status=status, source=source, news=False))
        entry = HistoryEntry(at=at, status=status, comment=note, author=author, source=source)
        return Change(fields, entry, outcome="status_changed" if status != row["Status"] else "recorded")
    return _result(store, store.change(request_id, decide, busy=_busy(number)), request_id)


def apply_mail(store: RequestStore, request_id: str, *, message: str, status: str | None, comment: str,
               received: datetime, message_id: str | None, subject: str | None, position: str | None = None,
               promised: datetime | None = None, sender: str = "", graph_id: str | None = None,
               author: str = ROBOT_AUTHOR, force: bool = False) -> MailApplyResult:
    """Apply one mail message to one request, at most once per (message, request).

    `message` is the message's key: the processed-message marker is the transaction's first
    operation, so a message applied before makes the transaction fail there (nothing written).
    `force` (a person attached the mail): its status takes effect even if it is older than the
    last status change.
    """
    def decide(row: dict[str, Any], _: int) -> Change:
        at = received
        in_order = force or at >= as_utc(row["StatusUpdatedAt"])
        changes = status is not None and status != row["Status"] and in_order
        new_status: str = status if changes and status is not None else row["Status"]
        fields: dict[str, Any] = {"UpdatedAt": later(at, as_utc(row["UpdatedAt"]))}
        if changes:
            fields.update(Status=new_status, StatusUpdatedAt=later(at, as_utc(row["StatusUpdatedAt"])) if force
                          else at)
        if comment and (force or at >= as_utc(row.get("CommentAt") or row["CreatedAt"])):
            fields.update(Comment=comment, CommentAuthor=author, CommentAt=at)
        if promised is not None and (force or row.get("PromisedAt") is None
                                     or at >= as_utc(row["PromisedAt"])):
            fields.update(Promised=promised, PromisedAt=at)
        if row.get("LastMailAt") is None or at >= as_utc(row["LastMailAt"]):
            fields.update(LastMailAt=at, LastMailId=graph_id, LastMailFrom=sender or None,
                          LastMailMessageId=(message_id or "")[:1000] or None,
                          LastMailSubject=(subject or "")[:500] or None)
        # Late mail is still news, but it changes no stage: it comes with the current status.
        fields.update(_facts_after(store, row, at=at, status=new_status, source="mail", news=True))
        entry = HistoryEntry(at=at, status=new_status, comment=comment, author=author, source="mail",
                             message_id=message_id, subject=(subject or "")[:500] or None, position=position,
                             promised=promised)
        marker = {"PartitionKey": PARTITION, "RowKey": layout.marker_key(message, request_id),
                  "AppliedAt": utcnow(), "MessageId": (message_id or "")[:1000]}
        return Change(fields, entry, first_ops=[("create", marker)],
                       outcome="status_changed" if changes else "recorded")
    done = store.change(request_id, decide, busy=_busy(request_id))
    if done is None:
        return MailApplyResult("duplicate", None)
    return MailApplyResult(done[1].outcome, layout.request_from_row(done[0]))


def edit(store: RequestStore, number: str, *, new_number: str | None = None, position: str | None = None,
         description: str | None = None, level: str | None = None, due: Any = UNSET, author: str,
         source: str, confirm_similar: bool = False, now: datetime | None = None) -> Request:
    """Change a request's number, position, description, level or due (values already validated).

    A new number taken by another request (now or before its rename): DuplicateRequestError; one
    that looks like another's: SimilarNumberError unless confirmed; archived: ConflictError;
    `due` before the request was created: ValueError.
    """
    request_id = _require(store, number)
    renaming = new_number is not None
    if renaming:
        other = store.resolve(new_number)
        if other is not None and other != request_id:
            raise DuplicateRequestError(new_number, store._current_number(new_number))   # type: ignore[arg-type]
        if not confirm_similar:
            store._refuse_similar(new_number, request_id)   # type: ignore[arg-type]

    def decide(row: dict[str, Any], _: int) -> Change | None:
        if row.get("Archived"):
            raise ConflictError(f"Заявка «{row['Number']}» в архиве: верните её из архива, чтобы изменить.")
        at = fresh_time(row, now)
        fields: dict[str, Any] = {}
        notes: list[str] = []
        ops: list[tuple] = []
        first: list[tuple] = []
        if renaming and new_number != row["Number"]:
            old_number = row["Number"]
            aliases = [a for a in json.loads(row.get("Aliases") or "[]")
                       if normalize_number(a) != normalize_number(new_number)]   # type: ignore[arg-type]
            if normalize_number(old_number) != normalize_number(new_number):   # type: ignore[arg-type]
                aliases.append(old_number)
                lookup = {"PartitionKey": PARTITION, "RowKey": layout.lookup_key(new_number), "Id": request_id,  # type: ignore[arg-type]
                          "Number": new_number}
                first.append(("upsert", lookup) if store.resolve(new_number) == request_id else ("create", lookup))
                ops.append(("upsert", _similar_row(new_number, request_id)))   # type: ignore[arg-type]
            fields.update(Number=new_number, Aliases=json.dumps(aliases, ensure_ascii=False) if aliases else None)
            notes.append(f"Номер изменён: «{old_number}» → «{new_number}».")
        if position is not None and position != (row.get("Position") or ""):
            fields["Position"] = position
            notes.append(f"Позиция: «{position or '—'}».")
        if description is not None and description != (row.get("Description") or ""):
            fields["Description"] = description
            notes.append("Описание изменено.")
        if level is not None and level != row.get("Level"):
            fields["Level"] = level
            notes.append(f"Уровень: «{store.settings.level(level).title}».")
        if due is not UNSET and as_utc(due) != as_utc(row.get("Due")):
            if due is not None and due < as_utc(row["CreatedAt"]):
                raise ValueError("Срок не может быть раньше, чем заявка создана.")
            fields["Due"] = due
            notes.append("Срок снят." if due is None else "Срок изменён.")
        if not fields:
            return None
        fields["UpdatedAt"] = at
        fields.update(_facts_after(store, row, at=at, status=row["Status"], source=source, news=False))
        entry = HistoryEntry(at=at, status=row["Status"], comment=" ".join(notes), author=author, source=source)
        return Change(fields, entry, ops=ops, first_ops=first,
                       refused=lambda: DuplicateRequestError(new_number, store._current_number(new_number)))  # type: ignore[arg-type]
    done = store.change(request_id, decide, busy=_busy(number))
    if renaming and done is not None:
        store._ids[normalize_number(new_number)] = request_id   # type: ignore[arg-type]
    return _result(store, done, request_id)


def set_archived(store: RequestStore, number: str, archived: bool, *, author: str, source: str,
                 now: datetime | None = None) -> Request:
    """Archive a request (out of the list, the reminders and the counts, kept whole) or bring it back."""
    request_id = _require(store, number)

    def decide(row: dict[str, Any], _: int) -> Change | None:
        if bool(row.get("Archived")) == archived:
            return None
        at = fresh_time(row, now)
        note = "Заявка перенесена в архив." if archived else "Заявка возвращена из архива."
        entry = HistoryEntry(at=at, status=row["Status"], comment=note, author=author, source=source)
        return Change({"Archived": archived, "ArchivedAt": at if archived else None, "UpdatedAt": at}, entry)
    return _result(store, store.change(request_id, decide, busy=_busy(number)), request_id)
