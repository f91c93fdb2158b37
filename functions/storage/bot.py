"""What the Telegram bot keeps: the updates it acted on, the digests it sent with buttons, snoozes.

Rows live in partition "bot" of the requests table (keys within [A-Za-z0-9_-]):

  u_<update_id>              a Telegram update being or having been acted on (State claimed|done)
  d_<digest id>              a team digest with buttons: its requests, the text and keyboard of the
                             message that carries the buttons, the latest snooze and the notes added

An update is claimed (the u_ row created) before anything is done about it, so of two deliveries
of one update — Telegram redelivering, two instances at once — one acts and the other finds the
row. A claim that was never finished (the instance died) may be taken over after CLAIM_LEASE; the
taker acts with the first claim's time, so what it decides (a snooze's end) is what the first
would have decided, and a snooze that is already there is not written again.

A digest id is the zero-padded time it was sent and a random tail, so expired digests are one
key range; the buttons of a digest work for DIGEST_KEEP.
"""
from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from ..model import FINAL_STATUSES, HistoryEntry
from .requests import Change, RequestNotFound, RequestStore, fresh_time
from .tables import KEY_CHARS, StorageBusy, Table, as_utc, fit_text, ts_key

logger = logging.getLogger(__name__)

BOT_PARTITION = "bot"
CLAIM_LEASE = timedelta(minutes=5)
UPDATE_KEEP = timedelta(days=3)        # Telegram keeps an undelivered update for 24 hours
DIGEST_KEEP = timedelta(days=30)
REPEAT_WINDOW = timedelta(minutes=5)   # a press this close to the last snooze's end is the same press again
_CHUNK = 30_000                        # UTF-16 units per property (a property holds 32K)
_ATTEMPTS = 8


@dataclass(frozen=True)
class Digest:
    """A team digest with buttons, as stored."""

    id: str
    created_at: datetime
    chat_id: str
    thread_id: int | None
    request_ids: tuple[str, ...]
    numbers: tuple[str, ...]
    text: str
    keyboard: dict[str, Any] | None
    snoozed_until: datetime | None = None
    snoozed_by: str = ""
    snooze_update: str = ""
    notes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SnoozeClaim:
    """The snooze a press applies: the one it claimed, or the later one already there (`repeat`)."""

    until: datetime
    by: str
    repeat: bool


def update_key(update_id: int) -> str:
    """Return the RowKey of an update's marker."""
    return f"u_{update_id}"


def new_digest_id(now: datetime) -> str:
    """Return a new digest id: the send time (17 digits) and 6 random hex digits."""
    return ts_key(now) + secrets.token_hex(3)


def is_digest_id(text: str) -> bool:
    """Say whether a text can be a digest id (as callback data carries it)."""
    return 18 <= len(text) <= 40 and KEY_CHARS.issuperset(text)


def _etag(row: Any) -> dict[str, Any]:   # a TableEntity: its ETag is in .metadata
    return {"etag": row.metadata["etag"], "match_condition": MatchConditions.IfNotModified}


def _put_json(entity: dict[str, Any], name: str, value: object) -> None:
    """Store a JSON value in as many properties as it needs (`Name`, `Name1`, …)."""
    text = json.dumps(value, ensure_ascii=False)
    chunks = [text[i:i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    for index, chunk in enumerate(chunks):
        entity[name + (str(index) if index else "")] = chunk


def _get_json(entity: dict[str, Any], name: str, default: object) -> Any:
    parts, index = [], 0
    while (part := entity.get(name + (str(index) if index else ""))) is not None:
        parts.append(part)
        index += 1
    return json.loads("".join(parts)) if parts else default


def _digest(row: dict[str, Any]) -> Digest:
    thread = row.get("ThreadId")
    return Digest(id=row["RowKey"][2:], created_at=as_utc(row["CreatedAt"]), chat_id=row.get("ChatId") or "",
                  thread_id=int(thread) if thread is not None else None,
                  request_ids=tuple(_get_json(row, "Ids", [])), numbers=tuple(_get_json(row, "Numbers", [])),
                  text=row.get("Text") or "", keyboard=_get_json(row, "Keyboard", None),
                  snoozed_until=as_utc(row.get("SnoozedUntil")), snoozed_by=row.get("SnoozedBy") or "",
                  snooze_update=row.get("SnoozeUpdate") or "",
                  notes=tuple((k, v) for k, v in _get_json(row, "Notes", [])))


class BotStore:
    """The bot's rows in one table."""

    def __init__(self, table: Table) -> None:
        self.table = table

    # ----- updates ------------------------------------------------------------------------

    def claim_update(self, update_id: int, now: datetime) -> datetime | None:
        """Claim an update for acting on it; return the time to act at (None: done or being done)."""
        key = update_key(update_id)
        for _ in range(_ATTEMPTS):
            try:
                self.table.create({"PartitionKey": BOT_PARTITION, "RowKey": key, "State": "claimed",
                                   "ClaimedAt": now, "LeaseAt": now})
                return now
            except ResourceExistsError:
                pass
            row = self.table.get(BOT_PARTITION, key)
            if row is None:
                continue   # pruned meanwhile: claim it afresh
            if row.get("State") == "done" or now - as_utc(row["LeaseAt"]) < CLAIM_LEASE:
                return None
            try:
                self.table.update({"PartitionKey": BOT_PARTITION, "RowKey": key, "LeaseAt": now},
                                  mode=UpdateMode.MERGE, **_etag(row))
            except (ResourceModifiedError, ResourceNotFoundError):
                return None   # another delivery took it over first
            logger.warning("Telegram: обновление %s не было доведено до конца, выполняю его снова", update_id)
            return as_utc(row["ClaimedAt"])
        return None

    def finish_update(self, update_id: int) -> None:
        """Note that an update has been acted on."""
        self.table.upsert({"PartitionKey": BOT_PARTITION, "RowKey": update_key(update_id), "State": "done"},
                          mode=UpdateMode.MERGE)

    def release_update(self, update_id: int) -> None:
        """Give up a claim (acting failed), so a redelivery of the update acts on it."""
        self.table.delete(BOT_PARTITION, update_key(update_id))

    def prune_updates(self, now: datetime) -> int:
        """Delete update markers older than UPDATE_KEEP; return how many."""
        old = self.table.query("PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi and ClaimedAt lt @before",
                               {"pk": BOT_PARTITION, "lo": "u_", "hi": "u_~", "before": now - UPDATE_KEEP},
                               select=["RowKey"])
        return self._delete([row["RowKey"] for row in old])

    def _delete(self, keys: list[str]) -> int:
        for start in range(0, len(keys), 100):
            chunk = keys[start:start + 100]
            self.table.submit([("delete", {"PartitionKey": BOT_PARTITION, "RowKey": k}) for k in chunk])
        return len(keys)

    # ----- digests ------------------------------------------------------------------------

    def record_digest(self, *, request_ids: list[str], numbers: list[str], chat_id: str, thread_id: int | None,
                      text: str, keyboard: dict[str, Any] | None, now: datetime, digest_id: str | None = None
                      ) -> Digest:
        """Keep a digest that is about to go out with buttons (and drop the expired ones)."""
        digest_id = digest_id or new_digest_id(now)
        entity: dict[str, Any] = {"PartitionKey": BOT_PARTITION, "RowKey": "d_" + digest_id, "CreatedAt": now,
                                  "ChatId": chat_id, "ThreadId": thread_id, "Text": fit_text(text, _CHUNK)}
        _put_json(entity, "Ids", request_ids)
        _put_json(entity, "Numbers", numbers)
        _put_json(entity, "Keyboard", keyboard)
        entity = {k: v for k, v in entity.items() if v is not None}
        self.table.create(entity)
        try:
            self.prune_digests(now)
        except Exception as exc:  # noqa: BLE001 - a digest that outlived its time must not stop this one
            logger.warning("Telegram: старые сводки не удалены: %s", exc)
        return _digest(entity)

    def get_digest(self, digest_id: str) -> Digest | None:
        """Return a digest by its id, None when there is none (or it expired and was dropped)."""
        if not is_digest_id(digest_id):
            return None
        row = self.table.get(BOT_PARTITION, "d_" + digest_id)
        return _digest(row) if row is not None else None

    def prune_digests(self, now: datetime) -> int:
        """Delete the digests sent more than DIGEST_KEEP ago; return how many."""
        old = self.table.range(BOT_PARTITION, "d_", "d_" + ts_key(now - DIGEST_KEEP), select=["RowKey"])
        return self._delete([row["RowKey"] for row in old])

    def _modify(self, digest_id: str, change: Any) -> Any:
        """Read a digest row, let `change(row)` return (fields to merge or None, result), write under its ETag."""
        for _ in range(_ATTEMPTS):
            row = self.table.get(BOT_PARTITION, "d_" + digest_id)
            if row is None:
                raise RequestNotFound(digest_id)
            fields, result = change(row)
            if fields is None:
                return result
            try:
                self.table.update({"PartitionKey": BOT_PARTITION, "RowKey": "d_" + digest_id, **fields},
                                  mode=UpdateMode.MERGE, **_etag(row))
                return result
            except ResourceModifiedError:
                continue
        raise StorageBusy("Не удалось записать нажатие кнопки: слишком много нажатий сразу, повторите.")

    def claim_snooze(self, digest_id: str, *, until: datetime, by: str, update: str, now: datetime) -> SnoozeClaim:
        """Claim a snooze of a digest's requests; a snooze already there that ends as late wins (`repeat`)."""
        def change(row: dict[str, Any]) -> tuple[dict[str, Any] | None, SnoozeClaim]:
            current = as_utc(row.get("SnoozedUntil"))
            if current is not None and row.get("SnoozeUpdate") == update:
                return None, SnoozeClaim(current, row.get("SnoozedBy") or "", False)   # our own claim, retaken
            if current is not None and current >= until - REPEAT_WINDOW:
                return None, SnoozeClaim(current, row.get("SnoozedBy") or "", True)
            return ({"SnoozedUntil": until, "SnoozedBy": by, "SnoozedAt": now, "SnoozeUpdate": update},
                    SnoozeClaim(until, by, False))
        result: SnoozeClaim = self._modify(digest_id, change)
        return result

    def set_note(self, digest_id: str, key: str, line: str) -> Digest:
        """Add (or replace) a line the digest's message shows under its text; return the digest."""
        def change(row: dict[str, Any]) -> tuple[dict[str, Any] | None, Digest]:
            notes = dict(_get_json(row, "Notes", []))
            if notes.get(key) == line:
                return None, _digest(row)
            notes[key] = line
            fields: dict[str, Any] = {}
            _put_json(fields, "Notes", list(notes.items()))
            return fields, _digest({**row, **fields})
        result: Digest = self._modify(digest_id, change)
        return result


def snooze_request(requests: RequestStore, request_id: str, until: datetime, *, author: str, note: str,
                   now: datetime, extend_only: bool) -> str:
    """Hold the reminders about one request until `until`; return "snoozed", "already" or "closed".

    A request snoozed until that very instant is left as it is (a retried update writes nothing
    twice); `extend_only` also leaves a later snooze in place (a digest's button never shortens one).
    A final or archived request is not snoozed ("closed"), nor one that is gone ("gone").
    """
    outcome = "snoozed"

    def decide(row: dict[str, Any], _: int) -> Change | None:
        nonlocal outcome
        if row.get("Archived") or row["Status"] in FINAL_STATUSES:
            outcome = "closed"
            return None
        current = as_utc(row.get("SnoozedUntil"))
        if current == until or (extend_only and current is not None and current >= until):
            outcome = "already"
            return None
        outcome = "snoozed"
        at = fresh_time(row, now)
        entry = HistoryEntry(at=at, status=row["Status"], comment=note, author=author, source="telegram")
        return Change({"SnoozedUntil": until, "UpdatedAt": at}, entry)
    try:
        requests.change(request_id, decide, busy="Не удалось отложить напоминания: хранилище занято, повторите.")
    except RequestNotFound:
        return "gone"
    return outcome
