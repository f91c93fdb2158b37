"""The store's layout version and `init`: create the tables, upgrade older layouts in place.

Version 1 (OMIS before immutable ids) kept every request's rows in partition "R" keyed by its
percent-encoded, case-folded number (r_<num>, h_<num>_<seq>, m_<message>_<num>, u_/s_/d_ indexes,
one c_counts row), and in the mail table unmatched mail keyed <inverted received>_<message>,
state rows named "graph-resume:…" and "unmatched:…", conversation links "conv"/<hash>_<num>.

The upgrade gives each request an id derived from its old key (so a rerun after a crash writes
the same rows again), writes the version-2 rows with upserts — history and markers first, the
request row and its number lookup last, so a request whose lookup exists is done — then moves
the mail-table rows, recounts the statuses, deletes every version-1 row and writes the version
row. Running it again changes nothing.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from azure.data.tables import UpdateMode

from ..deadlines import facts_from_history
from ..model import STATUSES, HistoryEntry, Request
from . import layout
from .layout import META, PARTITION, SCHEMA_ROW, SCHEMA_VERSION
from .mail import LINKS, OPEN, STATE, UNMATCHED
from .reindex import ensure_deadline_index
from .requests import RequestStore, facts_fields
from .tables import Table, Tables, as_utc

logger = logging.getLogger(__name__)

V1_PARTITION = "R"
V1_CONVERSATIONS = "conv"
_V1_HISTORY_RE = re.compile(r"^[0-9]{8}$")
_V1_UNMATCHED_RE = re.compile(r"^[0-9]{17}_[0-9a-f]{40}$")
_CHUNK = 100
_UPSERT = {"mode": UpdateMode.REPLACE}


@dataclass
class InitReport:
    """What `init` did."""

    tables: list[str] = field(default_factory=list)
    upgraded_from: int | None = None
    requests: int = 0
    history: int = 0
    markers: int = 0
    unmatched: int = 0
    links: int = 0
    state: int = 0
    removed: int = 0
    reindexed: int = 0

    def lines(self) -> list[str]:
        """Describe what was done, in Russian, one fact a line."""
        out = [f"Таблица {name}: готова" for name in self.tables]
        if self.upgraded_from is not None:
            out.append(f"Хранилище обновлено с версии {self.upgraded_from} до {SCHEMA_VERSION}: заявок "
                       f"{self.requests}, записей истории {self.history}, отметок писем {self.markers}, "
                       f"неразобранных писем {self.unmatched}, связей переписки {self.links}, "
                       f"состояний почты {self.state}; старых строк удалено {self.removed}.")
        else:
            out.append(f"Версия хранилища: {SCHEMA_VERSION} (обновление не нужно).")
        if self.reindexed:
            out.append(f"Сроки пересчитаны у {self.reindexed} заявок (изменились уровни или рабочее время).")
        return out


def stored_version(tables: Tables) -> int | None:
    """Return the layout version a store says it holds (None: a new or a version-1 store)."""
    row = tables.requests.get(META, SCHEMA_ROW)
    return int(row["Version"]) if row else None


def _partition(table: Table, pk: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    return table.query("PartitionKey eq @pk", {"pk": pk}, **kwargs)


def _submit_chunks(table: Table, ops: list[tuple]) -> None:
    for start in range(0, len(ops), _CHUNK):
        table.submit(ops[start:start + _CHUNK])


def v1_id(number_key: str) -> str:
    """Return the id an upgraded version-1 request gets (the same on every run)."""
    return layout.digest("v1:" + number_key, layout.ID_LENGTH)


def _has_v1_rows(tables: Tables) -> bool:
    return next(iter(_partition(tables.requests, V1_PARTITION, select=["RowKey"], page_size=1)), None) is not None


def init_store(tables: Tables, requests: RequestStore) -> InitReport:
    """Create the tables, upgrade a version-1 store in place, and write the version row."""
    report = InitReport(tables=tables.ensure())
    version = stored_version(tables)
    if version == SCHEMA_VERSION and not _has_v1_rows(tables):
        report.reindexed = ensure_deadline_index(requests)
        return report
    if version is not None and version > SCHEMA_VERSION:
        raise RuntimeError(f"хранилище версии {version} новее этой версии OMIS ({SCHEMA_VERSION})")
    if _has_v1_rows(tables):
        report.upgraded_from = 1
        _upgrade_requests(tables, requests, report)
        _upgrade_mail(tables, report)
        _recount(tables, requests)
        report.removed = _drop_v1(tables)
    tables.requests.upsert({"PartitionKey": META, "RowKey": SCHEMA_ROW, "Version": SCHEMA_VERSION}, **_UPSERT)
    report.reindexed = ensure_deadline_index(requests)
    return report


def _upgrade_requests(tables: Tables, requests: RequestStore, report: InitReport) -> None:
    table = tables.requests
    markers: dict[str, list[dict[str, Any]]] = {}
    for entity in table.range(V1_PARTITION, "m_", "m_~"):
        number_key = entity["RowKey"][2 + 40 + 1:]
        markers.setdefault(number_key, []).append(entity)
    for entity in list(table.range(V1_PARTITION, "r_", "r_~")):
        number_key = entity["RowKey"][2:]
        request_id = v1_id(number_key)
        history = [e for e in table.range(V1_PARTITION, f"h_{number_key}_", f"h_{number_key}_~")
                   if _V1_HISTORY_RE.match(e["RowKey"][len(f"h_{number_key}_"):])]
        history.sort(key=lambda e: int(e["Seq"]))
        report.history += len(history)
        report.markers += len(markers.get(number_key, []))
        report.requests += 1
        if table.get(PARTITION, layout.lookup_key(entity["Number"])) is not None:
            continue   # converted by an earlier run
        ops: list[tuple] = [("upsert", _v2_history(request_id, e), _UPSERT) for e in history]
        ops += [("upsert", {"PartitionKey": PARTITION, "RowKey": layout.marker_key(m["RowKey"][2:42], request_id),
                            "AppliedAt": m.get("AppliedAt"), "MessageId": m.get("MessageId", "")}, _UPSERT)
                for m in markers.get(number_key, [])]
        _submit_chunks(table, ops)
        row = _v2_request_row(requests, entity, request_id, history)
        final: list[tuple] = [("upsert", row, _UPSERT),
                              ("upsert", {"PartitionKey": PARTITION, "RowKey": layout.similar_prefix(
                                  _skeleton(entity["Number"])) + request_id, "Number": entity["Number"]}, _UPSERT)]
        final += [("upsert", r, _UPSERT) for r in layout.index_rows(row)]
        final.append(("upsert", {"PartitionKey": PARTITION, "RowKey": layout.lookup_key(entity["Number"]),
                                 "Id": request_id, "Number": entity["Number"]}, _UPSERT))
        table.submit(final)


def _skeleton(number: str) -> str:
    from ..lookalike import skeleton

    return skeleton(number)


def _v2_history(request_id: str, entity: dict[str, Any]) -> dict[str, Any]:
    entry = HistoryEntry(at=as_utc(entity["At"]), status=entity["Status"], comment=entity.get("Comment") or "",
                         author=entity.get("Author") or "", source=entity.get("Source") or "",
                         message_id=entity.get("MessageId"), subject=entity.get("Subject"),
                         position=entity.get("MailPosition"))
    return layout.history_row(request_id, int(entity["Seq"]), entry)


def _v2_request_row(requests: RequestStore, entity: dict[str, Any], request_id: str,
                    history: list[dict[str, Any]]) -> dict[str, Any]:
    level = requests.settings.sla_default
    created = as_utc(entity["CreatedAt"])
    facts = facts_from_history(created_at=created, level=level, status=entity["Status"],
                               history=[(as_utc(h["At"]), h["Status"], h.get("Source") or "") for h in history])
    request = Request(
        number=entity["Number"], position=entity.get("Position") or "", description=entity.get("Description") or "",
        author=entity.get("Author") or "", status=entity["Status"], comment=entity.get("Comment") or "",
        comment_author=entity.get("CommentAuthor") or "", created_at=created,
        status_updated_at=as_utc(entity["StatusUpdatedAt"]), updated_at=as_utc(entity["UpdatedAt"]),
        id=request_id, level=level, last_reminded_at=as_utc(entity.get("LastRemindedAt")))
    row = layout.row_from_request(request, history_seq=int(entity.get("HistorySeq") or len(history)),
                                  extra={"CommentAt": entity.get("CommentAt")})
    row.update({k: v for k, v in facts_fields(facts).items() if v is not None})
    return requests._with_deadline(row)


def _upgrade_mail(tables: Tables, report: InitReport) -> None:
    mail = tables.mail
    for entity in list(_partition(mail, UNMATCHED)):
        key = entity["RowKey"]
        if not _V1_UNMATCHED_RE.match(key):
            continue
        fields = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")}
        mail.submit([("upsert", {"PartitionKey": UNMATCHED, "RowKey": OPEN + key, **fields, "State": "open"}, _UPSERT),
                     ("upsert", {"PartitionKey": UNMATCHED, "RowKey": "s_" + key.split("_", 1)[1], "Item": key},
                      _UPSERT),
                     ("delete", {"PartitionKey": UNMATCHED, "RowKey": key})])
        report.unmatched += 1
    for entity in list(_partition(mail, STATE)):
        name = entity["RowKey"]
        if name.startswith("unmatched:"):
            mail.upsert({"PartitionKey": UNMATCHED, "RowKey": "s_" + name.split(":", 1)[1]}, mode=UpdateMode.MERGE)
        elif ":" in name:
            mail.upsert({"PartitionKey": STATE, "RowKey": name.replace(":", "-"), "Value": entity["Value"]},
                        mode=UpdateMode.REPLACE)
        else:
            continue
        mail.delete(STATE, name)
        report.state += 1
    for entity in list(_partition(mail, V1_CONVERSATIONS)):
        conversation_hash, _, number_key = entity["RowKey"].partition("_")
        request_id = v1_id(number_key)
        mail.upsert({"PartitionKey": LINKS, "RowKey": f"{conversation_hash}_{request_id}", "Id": request_id},
                    mode=UpdateMode.REPLACE)
        mail.delete(V1_CONVERSATIONS, entity["RowKey"])
        report.links += 1


def _recount(tables: Tables, requests: RequestStore) -> None:
    """Write the status counts from the request rows themselves (the upgrade's one full scan)."""
    totals = {"S" + layout.status_code(s): 0 for s in STATUSES}
    totals["A"] = 0
    for entity in tables.requests.range(PARTITION, "r_", "r_~", select=["Status", "Archived"]):
        totals["A" if entity.get("Archived") else "S" + layout.status_code(entity["Status"])] += 1
    deltas = [("delete", e) for e in tables.requests.range(PARTITION, layout.TALLY_DELTA, layout.TALLY_DELTA + "~",
                                                          select=["RowKey"])]
    _submit_chunks(tables.requests, deltas)
    tables.requests.upsert({"PartitionKey": PARTITION, "RowKey": layout.TALLY_SNAPSHOT, **totals}, **_UPSERT)
    del requests


def _drop_v1(tables: Tables) -> int:
    rows = [("delete", {"PartitionKey": V1_PARTITION, "RowKey": e["RowKey"]})
            for e in _partition(tables.requests, V1_PARTITION, select=["RowKey"])]
    _submit_chunks(tables.requests, rows)
    return len(rows)
