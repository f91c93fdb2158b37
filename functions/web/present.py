"""A request as the pages and the API show it: its deadlines under the current levels (pure).

The stored deadline index only orders requests; what a page or the API says about a request's
deadlines is computed here, from its facts and the settings in force, at the moment of asking.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Any

from ..alerts.digest import format_quiet
from ..deadlines import Deadline, DeadlineState, ServiceLevel, deadline_state, facts_of, overdue_minutes
from ..model import HistoryEntry, Request
from ..settings import Settings

KIND_TITLES = {
    "accept": "Ответ подрядчика",
    "update": "Новости от подрядчика",
    "resolve": "Выполнение",
    "promise": "Обещанный срок",
    "clarify": "Наше уточнение",
}
WAITING_TITLES = {"contractor": "Ждём подрядчика", "us": "Ждут нас", "nobody": "—"}
WEEKDAYS = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")


@dataclass(frozen=True)
class RequestView:
    """A request with what the pages say about its deadlines."""

    request: Request
    level: ServiceLevel
    state: DeadlineState
    now: datetime
    overdue: float          # minutes past the deadline in the level's clock (0 when not breached)

    @property
    def breached(self) -> bool:
        return self.state.breached(self.now)

    @property
    def waiting_title(self) -> str:
        return WAITING_TITLES[self.state.waiting_on]

    @property
    def quiet_minutes(self) -> float:
        """Minutes since the contractor's last news (or since the request was created)."""
        since = self.request.last_news_at or self.request.created_at
        return max(0.0, (self.now - since).total_seconds() / 60)

    def relative(self, deadline: Deadline | None = None) -> str:
        """Say when a deadline is: «через 3 ч 10 мин» or «просрочено на 1 дн 2 ч»."""
        at = deadline.at if deadline is not None else self.state.deadline
        if at is None:
            return "—"
        minutes = (at - self.now).total_seconds() / 60
        if minutes >= 0:
            return f"через {format_quiet(max(minutes, 1))}"
        return f"просрочено на {format_quiet(max(-minutes, 1))}"

    def deadlines(self) -> list[tuple[str, Deadline, str]]:
        """Return every running deadline with its title in words and its relative time."""
        return [(KIND_TITLES[d.kind], d, self.relative(d)) for d in self.state.running]


def present(request: Request, settings: Settings, now: datetime) -> RequestView:
    """Return the view of a request under the current settings at `now`."""
    level = settings.level(request.level)
    state = deadline_state(facts_of(request), level, settings.calendar)
    overdue = overdue_minutes(state, now, level, settings.calendar) if state.breached(now) else 0.0
    return RequestView(request, level, state, now, overdue)


def promised_text(moment: datetime | None, tz: tzinfo) -> str:
    """Say a promised instant the short way: «пт 05.12 до конца дня» or «пт 05.12 к 10:00»."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    day = f"{WEEKDAYS[local.weekday()]} {local:%d.%m}"
    if (local.hour, local.minute) == (23, 59):
        return f"{day} до конца дня"
    return f"{day} к {local:%H:%M}"


def iso(moment: datetime | None) -> str | None:
    """Format an instant as ISO 8601 in UTC with Z."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _history_json(entry: HistoryEntry) -> dict[str, Any]:
    data = {"at": iso(entry.at), "status": entry.status, "comment": entry.comment, "author": entry.author,
            "source": entry.source, "message_id": entry.message_id, "subject": entry.subject,
            "position": entry.position, "promised": iso(entry.promised), "to": list(entry.to) or None}
    return {k: v for k, v in data.items() if v is not None}


def request_json(view: RequestView, with_history: bool = False) -> dict[str, Any]:
    """Return the JSON form of a request (SPEC §1, §5)."""
    r, state = view.request, view.state
    data: dict[str, Any] = {
        "number": r.number, "position": r.position, "description": r.description, "author": r.author,
        "status": r.status, "comment": r.comment, "comment_author": r.comment_author,
        "created_at": iso(r.created_at), "status_updated_at": iso(r.status_updated_at),
        "updated_at": iso(r.updated_at), "level": view.level.id, "due": iso(r.due), "promised": iso(r.promised),
        "last_news_at": iso(r.last_news_at), "deadline": iso(state.deadline), "deadline_kind": state.kind,
        "waiting_on": state.waiting_on, "breached": view.breached, "delayed": view.breached,
        "archived": r.archived, "aliases": list(r.aliases), "snoozed_until": iso(r.snoozed_until),
        "deadlines": [{"kind": d.kind, "at": iso(d.at)} for d in state.running],
    }
    if with_history:
        data["history"] = [_history_json(h) for h in r.history]
        data["outbox"] = [{"subject": m.subject, "to": list(m.to), "state": m.state, "at": iso(m.at),
                           "error": m.error or None} for m in r.outbox]
    return data
