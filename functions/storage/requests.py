"""Requests on Table Storage: create, read, list, change, rename, archive (layout in layout.py).

Every change of a request is one entity-group transaction: the request row (guarded by its ETag),
its index rows, its history row, a status-count delta and whatever the change brings along (a
processed-mail marker, a number lookup, an outbox mail). A concurrent writer gets a clean
conflict and the change is rebuilt from fresh reads; a change made by a person then takes a
fresh timestamp, so it is applied in order or answered with an error, never recorded and lost.
Mail keeps its own rule: a mail received before the last status change is history only.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from azure.data.tables import TableTransactionError, UpdateMode

from ..deadlines import Facts, deadline_state, facts_of, record_change
from ..lookalike import skeleton
from ..model import (
    DEFAULT_STATUS,
    HistoryEntry,
    OutboxMail,
    Request,
    normalize_number,
    utcnow,
)
from ..settings import Settings
from . import layout
from .counts import tally_op
from .errors import DuplicateRequestError, RequestNotFound, SimilarNumberError
from .layout import PARTITION
from .tables import Table, Tables, as_utc, failed_index, if_unchanged, retrying, ts_key

logger = logging.getLogger(__name__)

# What reports read of a request: its times, level, deadline facts and breaches, and what names it
# (index rows carry more: description, comment, search text, mail and reminder state).
REPORT_FIELDS = ("Id", "Number", "Position", "Status", "CreatedAt", "StatusUpdatedAt", "UpdatedAt", "Archived",
                 "Level", "Due", "Promised", "FirstNewsAt", "LastNewsAt", "ClarifySince", "ClarifyAnswered",
                 "Pauses", "Breaches")




@dataclass
class Change:
    """What one change does to a request row, decided from the row as read."""

    fields: dict[str, Any]
    entry: HistoryEntry | None
    ops: list[tuple] = field(default_factory=list)      # more operations of the same transaction
    first_ops: list[tuple] = field(default_factory=list)  # operations whose failure means "done already"
    refused: Callable[[], Exception] | None = None       # …or, when set, means this error instead
    outcome: str = "recorded"


class RequestStore:
    """The requests of one set of tables, under one set of settings (levels, calendar)."""

    def __init__(self, tables: Tables, settings: Settings) -> None:
        self.tables = tables
        self.settings = settings
        self._ids: dict[str, str] = {}   # case-folded number → id; never stale: numbers stay their request's

    @property
    def table(self) -> Table:
        return self.tables.requests

    # ----- deadlines --------------------------------------------------------------------

    def facts(self, row: dict[str, Any] | Request) -> Facts:
        """Return the deadline facts of a request row or value."""
        return facts_of(layout.request_from_row(row) if isinstance(row, dict) else row)

    def deadline_of(self, row: dict[str, Any]) -> tuple[datetime, str] | None:
        """Return a request row's deadline and its kind under the current levels, or None."""
        state = deadline_state(self.facts(row), self.settings.level(row.get("Level")), self.settings.calendar)
        return (state.deadline, state.kind) if state.deadline is not None and state.kind else None

    def _with_deadline(self, row: dict[str, Any]) -> dict[str, Any]:
        row = {k: v for k, v in row.items() if v is not None and k not in ("Deadline", "DeadlineKind")}
        found = self.deadline_of(row)
        if found:
            row["Deadline"], row["DeadlineKind"] = found
        return row

    # ----- reading ----------------------------------------------------------------------

    def resolve(self, number: object) -> str | None:
        """Return the id of the request that has (or had) this number, or None."""
        if not isinstance(number, str) or not number.strip() or len(number) > 200:
            return None
        key = normalize_number(number)
        found = self._ids.get(key)
        if found is None:
            row = self.table.get(PARTITION, layout.lookup_key(number), select=["Id"])
            if row is None:
                return None
            found = self._ids[key] = row["Id"]
        return found

    def row(self, request_id: str) -> dict[str, Any] | None:
        """Return the request row of an id, or None."""
        return self.table.get(PARTITION, layout.request_key(request_id))

    def _prefix(self, prefix: str) -> Iterator[dict[str, Any]]:
        return self.table.range(PARTITION, prefix, prefix + "~")

    def get(self, number: str, with_history: bool = True) -> Request | None:
        """Return the request that has (or had) this number, with its history and outbox; None if none."""
        request_id = self.resolve(number)
        return self.get_by_id(request_id, with_history) if request_id else None

    def get_by_id(self, request_id: str, with_history: bool = True) -> Request | None:
        """Return a request by its id, with its history (oldest first) and outbox when asked."""
        row = self.row(request_id)
        if row is None:
            return None
        if not with_history:
            return layout.request_from_row(row)
        history = [layout.history_from_row(e) for e in self._prefix(f"h_{request_id}_")]
        history.sort(key=lambda h: h.at)
        outbox = [outbox_from_row(e) for e in self._prefix(f"o_{request_id}_")] if row.get("OutboxSeq") else []
        return layout.request_from_row(row, history, outbox)

    def iter_rows(self, prefix: str, low: str | None = None, high: str | None = None,
                  page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield rows of one index, in key order, between low and high (exclusive)."""
        return self.table.range(PARTITION, low or prefix, high or prefix + "~", page_size=page_size)

    def created_between(self, start: datetime, end: datetime) -> Iterator[Request]:
        """Yield the requests created in [start, end), archived ones too, oldest first (reads the c_ index only).

        Only REPORT_FIELDS are read: description, comment and author come back empty.
        """
        rows = self.table.range(PARTITION, "c_" + ts_key(start), "c_" + ts_key(end), select=list(REPORT_FIELDS),
                                page_size=1000)
        return (layout.request_from_row(e) for e in rows)

    def breached(self, now: datetime) -> list[Request]:
        """Return the open requests whose deadline has passed, earliest first (reads only those)."""
        return [layout.request_from_row(e) for e in self.iter_rows("k_", high="k_" + ts_key(now))]

    def deadline_rows(self, now: datetime) -> list[dict[str, Any]]:
        """Return the deadline index rows of the requests whose deadline has passed (with ETags)."""
        return list(self.iter_rows("k_", high="k_" + ts_key(now)))

    # ----- writing ----------------------------------------------------------------------

    def create(self, number: str, position: str, description: str, *, author: str, source: str,
               level: str, due: datetime | None = None, now: datetime | None = None,
               confirm_similar: bool = False, comment: str = "Заявка зарегистрирована.",
               status: str = DEFAULT_STATUS, created_at: datetime | None = None,
               status_updated_at: datetime | None = None, outbox: Callable[[Request], list[tuple]] | None = None,
               updated_at: datetime | None = None, promised: datetime | None = None,
               current_comment: tuple[str, str] = ("", "")) -> Request:
        """Store a new request (fields already validated); raise DuplicateRequestError or SimilarNumberError.

        `outbox(request)` returns outbox operations to write in the same transaction (a mail to send).
        `created_at`/`status_updated_at`/`updated_at`/`status`/`promised`/`comment` and
        `current_comment` (the request's comment and its author) serve the import of older data;
        `comment` is the text of the first history entry.
        """
        at = now or utcnow()
        created = created_at or at
        request_id = layout.new_id()
        if self.resolve(number) is not None:
            raise DuplicateRequestError(number, self._current_number(number))
        if not confirm_similar:
            self._refuse_similar(number, None)
        request = Request(number=number, position=position, description=description, author=author,
                          status=status, comment=current_comment[0], comment_author=current_comment[1],
                          created_at=created, status_updated_at=status_updated_at or created,
                          updated_at=updated_at or max(at, created), id=request_id, level=level, due=due,
                          promised=promised)
        if status != DEFAULT_STATUS:
            # Created past its first status (an import): the contractor reacted when that status was set.
            facts = record_change(replace(self.facts(request), status=DEFAULT_STATUS), at=request.status_updated_at,
                                  status=status, source=source, news=False)
            request = _with_facts(request, facts)
        # An imported comment is as recent as the request's last change: older mail read again keeps it.
        comment_at = {"CommentAt": request.updated_at} if request.comment else None
        row = self._with_deadline(layout.row_from_request(request, history_seq=1, extra=comment_at))
        entry = HistoryEntry(at=created, status=status, comment=comment, author=author, source=source)
        ops: list[tuple] = [
            ("create", {"PartitionKey": PARTITION, "RowKey": layout.lookup_key(number), "Id": request_id,
                        "Number": number}),
            ("create", row),
            ("create", _similar_row(number, request_id)),
            *layout.index_ops(None, row),
            ("create", layout.history_row(request_id, 1, entry)),
            *tally_op(at, request_id, 1, None, row),
        ]
        stored = layout.request_from_row(row, (entry,))
        if outbox is not None:
            extra = outbox(stored)
            ops += extra
            row["OutboxSeq"] = sum(1 for op in extra if op[1]["RowKey"].startswith("o_"))
            ops[1] = ("create", row)

        def attempt(_: int) -> None:
            try:
                self.table.submit(ops)
            except TableTransactionError as exc:
                if failed_index(exc) == 0 or (exc.status_code == 409 and failed_index(exc) is None):
                    raise DuplicateRequestError(number, self._current_number(number)) from None
                raise
        retrying(attempt, busy_message=f"Не удалось сохранить заявку «{number}»: хранилище занято, повторите.")
        self._ids[normalize_number(number)] = request_id
        return layout.request_from_row(row, (entry,))

    def _current_number(self, number: str) -> str:
        request_id = self.resolve(number)
        row = self.row(request_id) if request_id else None
        return row["Number"] if row else number

    def look_alike(self, number: str, own_id: str | None = None) -> str | None:
        """Return the number of another request that looks like `number` (other scripts' letters), or None."""
        prefix = layout.similar_prefix(skeleton(number))
        for entity in self._prefix(prefix):
            if entity["RowKey"][len(prefix):] != own_id:
                existing = self.row(entity["RowKey"][len(prefix):])
                if existing is not None and normalize_number(existing["Number"]) != normalize_number(number):
                    return str(existing["Number"])
        return None

    def _refuse_similar(self, number: str, own_id: str | None) -> None:
        existing = self.look_alike(number, own_id)
        if existing is not None:
            raise SimilarNumberError(number, existing)

    def change(self, request_id: str, decide: Callable[[dict[str, Any], int], Change | None], *,
               busy: str) -> tuple[dict[str, Any], Change] | None:
        """Apply one change to a request in one transaction, deciding it afresh after each conflict.

        `decide(row, attempt)` returns what the change does to the row as read, or None for nothing.
        Here, for every change: the history sequence, the deadline and its index, the reminder
        state (cleared when the deadline moves), the breaches so far (a running deadline that had
        passed before the change) and the status-count delta. Returns the new row and the change,
        or None when `decide` found nothing to do or the change's first operations say it was made
        already.
        """
        def attempt(n: int) -> tuple[dict[str, Any], Change] | None:
            old = self.row(request_id)
            if old is None:
                raise RequestNotFound(request_id)
            change = decide(old, n)
            if change is None:
                return None
            new = self._next_row(old, change)
            seq = int(new.get("HistorySeq", 0))
            ops: list[tuple] = list(change.first_ops)
            ops.append(("update", new, {"mode": UpdateMode.REPLACE, **if_unchanged(old)}))
            ops += layout.index_ops(old, new)
            if change.entry is not None:
                ops.append(("create", layout.history_row(request_id, seq, change.entry)))
            ops += tally_op(change.entry.at if change.entry else utcnow(), request_id, seq, old, new)
            ops += change.ops
            try:
                self.table.submit(ops)
            except TableTransactionError as exc:
                index = failed_index(exc)
                if change.first_ops and index is not None and index < len(change.first_ops):
                    if change.refused is not None:
                        raise change.refused() from None
                    return None
                raise
            return new, change
        return retrying(attempt, busy_message=busy)

    def _next_row(self, old: dict[str, Any], change: Change) -> dict[str, Any]:
        """Return the request row after a change: its fields, then what every change maintains."""
        new = dict(old)
        new.update(change.fields)
        if change.entry is not None:
            new["HistorySeq"] = int(old.get("HistorySeq", 0)) + 1
            passed = [d.kind for d in deadline_state(self.facts(old), self.settings.level(old.get("Level")),
                                                     self.settings.calendar).running if d.at < change.entry.at]
            breaches = sorted(set(json.loads(old.get("Breaches") or "[]")) | set(passed))
            new["Breaches"] = json.dumps(breaches) if breaches else None
        new = self._with_deadline(new)
        if (as_utc(new.get("Deadline")), new.get("DeadlineKind")) != (as_utc(old.get("Deadline")),
                                                                      old.get("DeadlineKind")):
            new.pop("LastRemindedAt", None)
            new.pop("LastEscalatedAt", None)
        return new

def _with_facts(request: Request, facts: Facts) -> Request:
    return replace(request, first_news_at=facts.first_news_at, last_news_at=facts.last_news_at,
                   clarify_since=facts.clarify_since, clarify_answered=facts.clarify_answered,
                   pauses=tuple(facts.pauses), promised=facts.promised, due=facts.due)


def facts_fields(facts: Facts) -> dict[str, Any]:
    """Return the request-row fields that hold deadline facts (None to clear)."""
    return {"FirstNewsAt": facts.first_news_at, "LastNewsAt": facts.last_news_at,
            "ClarifySince": facts.clarify_since, "ClarifyAnswered": facts.clarify_answered or None,
            "Pauses": layout._json_times(facts.pauses) if facts.pauses else None}


def _similar_row(number: str, request_id: str) -> dict[str, Any]:
    return {"PartitionKey": PARTITION, "RowKey": layout.similar_prefix(skeleton(number)) + request_id,
            "Number": number}


def outbox_from_row(entity: dict[str, Any]) -> OutboxMail:
    """Return the OutboxMail value of an outbox row."""
    return OutboxMail(seq=int(entity["Seq"]), kind=entity.get("Kind") or "request",
                      subject=entity.get("Subject") or "", to=tuple(json.loads(entity.get("To") or "[]")),
                      state=entity.get("State") or "queued", at=as_utc(entity.get("StateAt") or entity["QueuedAt"]),
                      error=entity.get("Error") or "")


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    """Return the later of two instants, either may be None."""
    if a is None or b is None:
        return a or b
    return max(a, b)


def fresh_time(row: dict[str, Any], now: datetime | None = None) -> datetime:
    """Return a timestamp for a person's change: now, but never before the request's last change."""
    moment = now or utcnow()
    floor = max(as_utc(row["UpdatedAt"]), as_utc(row["StatusUpdatedAt"]))
    return moment if moment >= floor else floor + timedelta(microseconds=1)
