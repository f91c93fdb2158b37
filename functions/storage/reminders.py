"""Claiming reminders before they go out, and giving them back when they did not.

A reminder pass reads the deadline index (k_ rows before now). Before a request is named in a
digest, the pass notes the reminder on the request's k_ row, guarded by the ETag the pass read,
and on its request row, in one transaction: of two passes that read the same breached request
(a timer run twice, `run` beside the timer), one notes it and names it, the other gets nothing;
a request changed since it was read (its k_ row rewritten or gone) is not noted either.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from azure.data.tables import TableTransactionError, UpdateMode

from . import layout
from .layout import PARTITION
from .requests import RequestStore
from .tables import MAX_ATTEMPTS, as_utc, backoff, if_unchanged, is_conflict

logger = logging.getLogger(__name__)

TEAM, ESCALATION = "LastRemindedAt", "LastEscalatedAt"
_BATCH = 50   # requests per transaction: two operations each


def _claim_ops(row: dict[str, Any], fields: dict[str, Any]) -> list[tuple]:
    return [
        ("update", {"PartitionKey": PARTITION, "RowKey": row["RowKey"], **fields},
         {"mode": UpdateMode.MERGE, **if_unchanged(row)}),
        ("update", {"PartitionKey": PARTITION, "RowKey": layout.request_key(row["Id"]), **fields},
         {"mode": UpdateMode.MERGE}),
    ]


def claim(store: RequestStore, wanted: Iterable[tuple[dict[str, Any], tuple[str, ...]]], at: datetime) -> set[str]:
    """Note reminders at `at` on (k_ row as read, fields) pairs; return the ids noted.

    `fields` names what is claimed: TEAM, ESCALATION or both. A batch that fails whole is
    retried request by request, each against its row as read.
    """
    pending = [(row, dict.fromkeys(names, at)) for row, names in wanted if names]
    claimed: set[str] = set()
    for start in range(0, len(pending), _BATCH):
        chunk = pending[start:start + _BATCH]
        try:
            store.table.submit([op for row, fields in chunk for op in _claim_ops(row, fields)])
            claimed.update(row["Id"] for row, _ in chunk)
        except TableTransactionError:
            for row, fields in chunk:
                try:
                    store.table.submit(_claim_ops(row, fields))
                    claimed.add(row["Id"])
                except TableTransactionError as exc:
                    logger.info("reminder for %s not noted: the request changed (%s)", row["Id"], exc.status_code)
    return claimed


def release(store: RequestStore, rows: Iterable[dict[str, Any]], at: datetime, field: str) -> int:
    """Give back the reminder noted at `at` (in `field`) to requests it did not reach; return how many.

    Each row gets back the value it had when the pass read it, unless it carries another value by
    now (another pass, a change of the request).
    """
    released = 0
    for read in rows:
        for attempt in range(MAX_ATTEMPTS):
            ops = []
            for key in (read["RowKey"], layout.request_key(read["Id"])):
                current = store.table.get(PARTITION, key)
                if current is None or as_utc(current.get(field)) != at:
                    continue
                restored = {k: v for k, v in current.items() if k != field}
                if read.get(field) is not None:
                    restored[field] = read[field]
                ops.append(("update", restored, {"mode": UpdateMode.REPLACE, **if_unchanged(current)}))
            if not ops:
                break
            try:
                store.table.submit(ops)
                released += 1
                break
            except TableTransactionError as exc:
                if not is_conflict(exc):
                    raise
                backoff(attempt)
    return released
