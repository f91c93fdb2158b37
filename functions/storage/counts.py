"""Status counts without a shared hot row: a delta row per change, folded into a snapshot by readers.

  t_0                        the counts up to the last fold
  t_1_<at>_<id>_<seq:08>     ±1 of one change of a request's status or archive flag

Every change that moves a request between statuses (or in or out of the archive) writes its own
delta row blind, in its own transaction: writers never contend for one row. A reader adds the
snapshot and the deltas; once there are FOLD_AT of them it folds them in (the reminder pass folds
too), under the snapshot's ETag, so each delta is counted once.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from azure.data.tables import TableTransactionError, UpdateMode

from ..model import STATUSES
from . import layout
from .layout import PARTITION
from .tables import if_unchanged

if TYPE_CHECKING:
    from .requests import RequestStore

logger = logging.getLogger(__name__)

FOLD_AT = 50            # status-count deltas that make a reader fold them into the snapshot
FOLD_CHUNK = 98         # deltas folded per transaction (with the snapshot row: ≤ 100 operations)


def tally_op(at: datetime, request_id: str, seq: int, old: dict[str, Any] | None,
         new: dict[str, Any]) -> list[tuple]:
    """Return the blind-written count delta of a change of status or archive flag (none if neither)."""
    def bucket(row: dict[str, Any] | None) -> str | None:
        if row is None:
            return None
        return "A" if row.get("Archived") else "S" + layout.status_code(row["Status"])
    before, after = bucket(old), bucket(new)
    if before == after:
        return []
    delta: dict[str, Any] = {"PartitionKey": PARTITION, "RowKey": layout.tally_delta_key(at, request_id, seq)}
    if before:
        delta[before] = -1
    if after:
        delta[after] = delta.get(after, 0) + 1
    return [("create", delta)]


def read_counts(store: RequestStore) -> dict[str, int]:
    """Return how many requests there are in each status (archived ones under "archived")."""
    totals: dict[str, int] = dict.fromkeys(STATUSES, 0)
    totals["archived"] = 0
    deltas: list[dict[str, Any]] = []
    for entity in store.iter_rows("t_"):
        if entity["RowKey"] != layout.TALLY_SNAPSHOT:
            deltas.append(entity)
        for status in STATUSES:
            totals[status] += int(entity.get("S" + layout.status_code(status), 0))
        totals["archived"] += int(entity.get("A", 0))
    if len(deltas) >= FOLD_AT:
        fold_counts(store)
    return totals

def fold_counts(store: RequestStore) -> int:
    """Fold every status-count delta into the snapshot row; return how many were folded.

    Each chunk of deltas is folded in one transaction with the snapshot, written under its
    ETag: two folds at once count each delta once (the loser's transaction fails whole and
    it stops).
    """
    rows = list(store.iter_rows("t_"))
    snapshot = next((e for e in rows if e["RowKey"] == layout.TALLY_SNAPSHOT), None)
    deltas = [e for e in rows if e["RowKey"] != layout.TALLY_SNAPSHOT]
    keys = ["S" + layout.status_code(s) for s in STATUSES] + ["A"]
    folded = 0
    for start in range(0, len(deltas), FOLD_CHUNK):
        chunk = deltas[start:start + FOLD_CHUNK]
        totals = {k: int((snapshot or {}).get(k, 0)) + sum(int(d.get(k, 0)) for d in chunk) for k in keys}
        entity = {"PartitionKey": PARTITION, "RowKey": layout.TALLY_SNAPSHOT, **totals}
        first = (("update", entity, {"mode": UpdateMode.REPLACE, **if_unchanged(snapshot)}) if snapshot
                 else ("create", entity))
        try:
            store.table.submit([first, *(("delete", d, if_unchanged(d)) for d in chunk)])
        except TableTransactionError as exc:
            logger.info("status counts: another fold won (%s)", exc.status_code)
            break
        folded += len(chunk)
        snapshot = store.table.get(PARTITION, layout.TALLY_SNAPSHOT)
    return folded
