"""The list of requests: one range query per page over the index the filters need.

Indexes: u_ (last updated first), s_ (per status), a_ (archived), k_ then z_ (by deadline, then
the requests without a running deadline, last updated first). `breached=1` is the part of k_
before now. Filters without an index of their own (text, level, waiting_on) are applied to the
rows read, reading at most SCAN_BUDGET rows for a page: a page may then come back short, with a
cursor to read on.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..deadlines import deadline_state
from ..model import STATUSES, Request, ValidationError, utcnow
from . import layout
from .errors import RequestPage
from .requests import RequestStore
from .tables import decode_cursor, encode_cursor, ts_key

SCAN_BUDGET = 1000
SORTS = ("updated", "deadline")
WAITING = ("us", "contractor")


@dataclass(frozen=True)
class ListQuery:
    """What the list is asked for (SPEC §5)."""

    status: str | None = None
    q: str | None = None
    limit: int = 50
    cursor: str | None = None
    archived: bool = False
    sort: str = "updated"
    breached: bool = False
    waiting_on: str | None = None
    level: str | None = None

    def validate(self, levels: list[str]) -> None:
        """Raise ValidationError (with the field) for a value the list does not know."""
        errors: dict[str, str] = {}
        if self.status is not None and self.status not in STATUSES:
            errors["status"] = "Неизвестный статус."
        if not 1 <= self.limit <= 100:
            errors["limit"] = "limit: целое число от 1 до 100."
        if self.sort not in SORTS:
            errors["sort"] = "sort: updated или deadline."
        if self.waiting_on is not None and self.waiting_on not in WAITING:
            errors["waiting_on"] = "waiting_on: us или contractor."
        if self.level is not None and self.level not in levels:
            errors["level"] = "Неизвестный уровень."
        if errors:
            raise ValidationError(errors)


def _streams(query: ListQuery, now: datetime) -> list[tuple[str, str]]:
    """Return the (low, high) key ranges to read, in order."""
    if query.archived:
        return [("a_", "a_~")]
    if query.breached:
        return [("k_", "k_" + ts_key(now))]
    if query.sort == "deadline":
        return [("k_", "k_~"), ("z_", "z_~")]
    if query.status is not None:
        prefix = f"s_{layout.status_code(query.status)}_"
        return [(prefix, prefix + "~")]
    return [("u_", "u_~")]


def _predicate(store: RequestStore, query: ListQuery) -> Callable[[dict[str, Any]], bool] | None:
    needle = (query.q or "").strip().casefold()
    status_in_index = query.status is not None and not (query.archived or query.breached or query.sort == "deadline")
    checks: list[Callable[[dict[str, Any]], bool]] = []
    if needle:
        checks.append(lambda e: needle in (e.get("Search") or ""))
    if query.status is not None and not status_in_index:
        checks.append(lambda e: e["Status"] == query.status)
    if query.level is not None:
        checks.append(lambda e: (e.get("Level") or store.settings.sla_default) == query.level)
    if query.waiting_on is not None:
        def waiting(e: dict[str, Any]) -> bool:
            state = deadline_state(store.facts(e), store.settings.level(e.get("Level")), store.settings.calendar)
            return state.waiting_on == query.waiting_on
        checks.append(waiting)
    if not checks:
        return None
    return lambda e: all(check(e) for check in checks)


def list_requests(store: RequestStore, query: ListQuery, now: datetime | None = None) -> RequestPage:
    """Return a page of requests for a list query (validated here; ValidationError names the field)."""
    query.validate(list(store.settings.sla_levels))
    now = now or utcnow()
    streams = _streams(query, now)
    after: str | None = None
    if query.cursor:
        try:
            after = decode_cursor(query.cursor)
        except ValueError:
            raise ValidationError({"cursor": "Неверный курсор."}) from None
        if not any(low < after < high for low, high in streams):
            raise ValidationError({"cursor": "Курсор не от этого списка."})
        streams = [(max(low, after), high) for low, high in streams if after < high]
    keep = _predicate(store, query)
    items: list[Request] = []
    keys: list[str] = []
    scanned = 0
    for low, high in streams:
        page_size = min(query.limit + 1, 1000) if keep is None else 200
        for entity in store.iter_rows("", low=low, high=high, page_size=page_size):
            scanned += 1
            if keep is None or keep(entity):
                if len(items) == query.limit:
                    return RequestPage(items, encode_cursor(keys[-1]))
                items.append(layout.request_from_row(entity))
                keys.append(entity["RowKey"])
            if keep is not None and scanned >= SCAN_BUDGET:
                return RequestPage(items, encode_cursor(entity["RowKey"]))
    return RequestPage(items, None)
