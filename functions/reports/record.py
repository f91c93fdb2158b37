"""The contractor's record read from the store, and its JSON form (GET /api/reports, SPEC §10).

A report reads the creation-time index (c_ rows, which carry the request row's fields) over the
range asked for, one range query of a few pages, and never a history row.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..model import ValidationError
from ..storage import Store
from .figures import Group, Outcome, Report, Spread, build_report, month_range


def load_report(store: Store, *, start: str | None, end: str | None, level: str | None, now: datetime) -> Report:
    """Work out the record for `from`/`to` (YYYY-MM) and a level id (None: all); ValidationError names a bad value."""
    settings = store.settings
    tz = settings.timezone
    months = month_range(start, end, now, tz)
    level_id = (level or "").strip() or None
    if level_id is not None and level_id not in settings.sla_levels:
        raise ValidationError({"level": "Неизвестный уровень: выберите из списка (" + ", ".join(settings.sla_levels)
                                        + ")."})
    low, high = months.bounds(tz)
    return build_report(store.requests.created_between(low, high), levels=settings.sla_levels,
                        default_level=settings.sla_default, calendar=settings.calendar, tz=tz, now=now,
                        months=months, level=level_id)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if moment is not None else None


def _minutes(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _spread(spread: Spread) -> dict[str, Any]:
    return {"count": spread.count, "median_minutes": _minutes(spread.median), "p90_minutes": _minutes(spread.p90)}


def group_json(group: Group) -> dict[str, Any]:
    """Return the JSON form of one group's figures."""
    share = group.on_time_share
    return {"created": group.created, "done": group.done, "rejected": group.rejected, "open": group.open,
            "first_news": _spread(group.first_news), "final_status": _spread(group.resolution),
            "resolve": {"on_time": group.on_time, "late": group.late,
                        "share": round(share, 4) if share is not None else None},
            "breaches": dict(group.breaches)}


def waiting_json(item: Outcome) -> dict[str, Any]:
    """Return the JSON form of one of the requests that waited longest."""
    r = item.request
    return {"number": r.number, "position": r.position, "level": item.level.id, "status": r.status,
            "created_at": _iso(r.created_at), "status_updated_at": _iso(r.status_updated_at),
            "archived": r.archived, "open": item.open, "waited_minutes": _minutes(item.waited)}


def report_json(report: Report, timezone_name: str) -> dict[str, Any]:
    """Return the JSON form of a report (its shape is in the README, «Отчёты»)."""
    levels = []
    for group in report.levels:
        level = report.known_levels[group.key]
        levels.append({"level": group.key, "title": level.title, "clock": level.clock, **group_json(group)})
    return {
        "from": str(report.range.first), "to": str(report.range.last), "level": report.level,
        "timezone": timezone_name, "generated_at": _iso(report.now),
        "total": group_json(report.total),
        "months": [{"month": group.key, **group_json(group)} for group in report.months],
        "levels": levels,
        "longest": [waiting_json(item) for item in report.longest],
    }
