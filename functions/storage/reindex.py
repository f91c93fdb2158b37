"""Keeping the deadline index true when the levels or the calendar change (no migration step)."""
from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from azure.data.tables import UpdateMode

from ..model import FINAL_STATUSES
from ..settings import Settings
from . import layout
from .requests import Change, RequestStore
from .tables import as_utc

logger = logging.getLogger(__name__)

_INDEX_ROW = "deadline-index"


def deadline_fingerprint(settings: Settings) -> str:
    """Return a digest of every setting a deadline depends on."""
    levels = {level_id: [level.title, level.clock, *(str(level.duration(kind) or "") for kind in
                                                     ("accept", "update", "resolve", "clarify"))]
              for level_id, level in settings.sla_levels.items()}
    data = {"levels": levels, "default": settings.sla_default, "tz": settings.timezone_name,
            "hours": repr(settings.work_hours), "holidays": sorted(map(str, settings.holidays))}
    return layout.digest(json.dumps(data, sort_keys=True, ensure_ascii=False))


def reindex(store: RequestStore, request_id: str) -> bool:
    """Recompute a request's deadline index (the levels or the calendar changed); True if it moved."""
    def decide(row: dict[str, Any], _: int) -> Change | None:
        found = store.deadline_of(row)
        stored: datetime | None = as_utc(row.get("Deadline"))
        current = (stored, str(row.get("DeadlineKind"))) if stored is not None else None
        return None if found == current else Change({}, None)
    return store.change(request_id, decide, busy="хранилище занято") is not None

def ensure_deadline_index(store: RequestStore) -> int:
    """Re-index the open requests when the levels or the calendar changed; return how many moved.

    The deadline index holds instants computed under the settings of the time of each change;
    a fingerprint of those settings is kept beside it, so a pass after a change of
    OMIS_SLA_LEVELS, OMIS_WORK_HOURS, OMIS_HOLIDAYS or OMIS_TIMEZONE re-indexes once (one scan).
    """
    fingerprint = deadline_fingerprint(store.settings)
    row = store.table.get(layout.META, _INDEX_ROW)
    if row is not None and row.get("Fingerprint") == fingerprint:
        return 0
    moved = 0
    for prefix in ("k_", "z_"):
        for entity in list(store.iter_rows(prefix, page_size=1000)):
            if entity["Status"] not in FINAL_STATUSES:
                moved += reindex(store, entity["Id"])
    store.table.upsert({"PartitionKey": layout.META, "RowKey": _INDEX_ROW, "Fingerprint": fingerprint},
                      mode=UpdateMode.REPLACE)
    if moved:
        logger.info("deadline index: %d requests re-indexed under new levels or calendar", moved)
    return moved
