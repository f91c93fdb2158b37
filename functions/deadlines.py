"""Service levels, the work/24x7 clock and a request's deadlines (SPEC §4; pure, no I/O).

A request's deadlines are derived from its `Facts` (kept on the request row) and its level:
nothing here reads the clock, the settings or storage. `record_change` folds one change into
the facts; `deadline_state` says what runs, which deadline comes first and who is waited on.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from .model import DEFAULT_STATUS, FINAL_STATUSES, STATUS_CLARIFY, Request
from .workhours import WorkingCalendar

KINDS = ("accept", "update", "resolve", "promise", "clarify")
CONTRACTOR_KINDS = ("accept", "update", "resolve", "promise")   # we wait for the contractor
WAITING_CONTRACTOR, WAITING_US, WAITING_NOBODY = "contractor", "us", "nobody"
CLOCKS = ("work", "24x7")
DURATION_KEYS = ("accept", "update", "resolve", "clarify")
LEVEL_KEYS = ("title", "clock", *DURATION_KEYS)
PERSON_SOURCES = frozenset({"web", "api", "telegram"})
TITLE_MAX = 100

_LEVEL_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_DURATION_RE = re.compile(r"(\d{1,7})([mhd])")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}
_MAX_DURATION_DAYS = 366
_DURATION_HINT = "ожидается длительность вида 15m, 4h или 5d"


@dataclass(frozen=True)
class Duration:
    """A level's duration: `amount` minutes, hours or days (what a day is depends on the clock)."""

    amount: int
    unit: str

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def minutes(self) -> int:
        """Return the duration in minutes, a day taken as 24 h."""
        return self.amount * _UNIT_MINUTES[self.unit]


def parse_duration(text: str) -> Duration:
    """Read `15m`, `4h` or `5d`; raise ValueError (in Russian) on anything else."""
    shown = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{_DURATION_HINT}, получено «{shown}»")
    duration = Duration(int(match[1]), match[2])
    if duration.amount < 1:
        raise ValueError(f"длительность должна быть больше нуля, получено «{shown}»")
    if duration.minutes > _MAX_DURATION_DAYS * 24 * 60:
        raise ValueError(f"длительность не больше {_MAX_DURATION_DAYS} дней, получено «{shown}»")
    return duration


@dataclass(frozen=True)
class ServiceLevel:
    """One service level of OMIS_SLA_LEVELS: its title, clock and durations (None: no such deadline)."""

    id: str
    title: str
    clock: str = "work"
    accept: Duration | None = None
    update: Duration | None = None
    resolve: Duration | None = None
    clarify: Duration | None = None

    def duration(self, kind: str) -> Duration | None:
        """Return the level's duration for a deadline kind (None for promise and for a missing key)."""
        return getattr(self, kind) if kind in DURATION_KEYS else None


def default_levels(delay_minutes: int) -> dict[str, ServiceLevel]:
    """Return the one level used without OMIS_SLA_LEVELS: accept and update after OMIS_DELAY_MINUTES."""
    delay = Duration(delay_minutes, "m")
    return {"normal": ServiceLevel("normal", "Обычная", "work", accept=delay, update=delay)}


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of repeated keys silently; a repeated level or key is a typo.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _parse_level(level_id: str, raw: object) -> ServiceLevel:
    where = f"уровень «{level_id}»"
    if not _LEVEL_ID_RE.fullmatch(level_id):
        raise ValueError(f"{where}: код уровня — от 1 до 32 латинских букв, цифр, «-» и «_»")
    if not isinstance(raw, dict):
        raise ValueError(f'{where}: ожидается объект вида {{"title": "…", "accept": "4h", …}}')
    for key in raw:
        if key not in LEVEL_KEYS:
            raise ValueError(f"{where}, ключ «{key}»: неизвестный ключ (допустимы: {', '.join(LEVEL_KEYS)})")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"{where}, ключ «title»: нужно название уровня (непустой текст)")
    if len(title.strip()) > TITLE_MAX:
        raise ValueError(f"{where}, ключ «title»: название не длиннее {TITLE_MAX} символов")
    clock = raw.get("clock", "work")
    if clock not in CLOCKS:
        shown = clock if isinstance(clock, str) else json.dumps(clock, ensure_ascii=False)
        raise ValueError(f"{where}, ключ «clock»: ожидается «work» или «24x7», получено «{shown}»")
    durations: dict[str, Duration | None] = {}
    for key in DURATION_KEYS:
        value = raw.get(key)
        if value is None:
            durations[key] = None
            continue
        try:
            durations[key] = parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"{where}, ключ «{key}»: {exc}") from None
    return ServiceLevel(level_id, title.strip(), clock, **durations)


def parse_levels(raw: str | None, delay_minutes: int) -> dict[str, ServiceLevel]:
    """Read OMIS_SLA_LEVELS (SPEC §4), keeping its order; None or blank gives the back-compat default level.

    Raises ValueError with a Russian message naming the level and the key at fault.
    """
    if raw is None or not raw.strip():
        return default_levels(delay_minutes)
    try:
        document = json.loads(raw, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise ValueError(f"ключ «{exc.key}» указан дважды") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"не разобрать JSON: ошибка в строке {exc.lineno}, символ {exc.colno}") from None
    if not isinstance(document, dict):
        raise ValueError('ожидается JSON-объект уровней вида {"normal": {"title": "Обычная", "accept": "4h"}}')
    if not document:
        raise ValueError("не задано ни одного уровня")
    return {level_id: _parse_level(level_id, value) for level_id, value in document.items()}


def resolve_level(levels: Mapping[str, ServiceLevel], level_id: str | None, default_id: str) -> ServiceLevel:
    """Return a request's level; an id no longer configured falls back to the default (else the first) level."""
    if level_id is not None and level_id in levels:
        return levels[level_id]
    if default_id in levels:
        return levels[default_id]
    return next(iter(levels.values()))


# ----- the clock ---------------------------------------------------------------------------

class NoWorkingTime(ValueError):
    """The calendar has no working time within the horizon (HORIZON_DAYS): no such deadline can be set."""


@dataclass(frozen=True)
class Clock:
    """The clock of one level: every minute (`24x7`) or only the calendar's working time (`work`).

    `24x7`: `m`/`h` add minutes, `d` adds N × 24 h; hours and holidays are ignored.
    `work`: `m`/`h` add N (× 60) working minutes; `d` is the same point of the working day
    N working days later (WorkingCalendar.add_working_days). `add` raises NoWorkingTime when
    the calendar has no working time within five years; `elapsed_minutes` never raises.
    """

    calendar: WorkingCalendar
    every_minute: bool

    @property
    def counts_working_time_only(self) -> bool:
        """Say whether some minutes do not count (a `work` clock with hours or holidays set)."""
        return not self.every_minute and not self.calendar.counts_every_minute

    def add(self, start: datetime, duration: Duration) -> datetime:
        """Return the instant `duration` after start on this clock."""
        if self.every_minute:
            return _utc(start) + timedelta(minutes=duration.minutes)
        if duration.unit == "d":
            result = self.calendar.add_working_days(start, duration.amount)
        else:
            result = self.calendar.add_working_minutes(start, duration.minutes)
        if result is None:
            raise NoWorkingTime(f"нет рабочего времени после {start.isoformat()}")
        return result

    def add_minutes(self, start: datetime, minutes: float) -> datetime:
        """Return the instant `minutes` counted minutes after start on this clock."""
        if self.every_minute:
            return _utc(start) + timedelta(minutes=minutes)
        result = self.calendar.add_working_minutes(start, minutes)
        if result is None:
            raise NoWorkingTime(f"нет рабочего времени после {start.isoformat()}")
        return result

    def elapsed_minutes(self, start: datetime, end: datetime) -> float:
        """Count the minutes from start to end on this clock (0 when end is not after start)."""
        if self.every_minute:
            return max(0.0, (_utc(end) - _utc(start)).total_seconds() / 60)
        return self.calendar.working_minutes(start, end)


def clock_for(level: ServiceLevel, calendar: WorkingCalendar) -> Clock:
    """Return the clock a level counts its deadlines in."""
    return Clock(calendar, every_minute=level.clock == "24x7")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


# ----- facts and events --------------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """What a request's deadlines depend on, kept on the request row."""

    status: str
    created_at: datetime
    level: str
    archived: bool = False
    due: datetime | None = None             # set by an engineer: overrides resolve
    promised: datetime | None = None        # the latest promise from mail
    first_news_at: datetime | None = None   # None: the contractor has not reacted yet (accept runs)
    last_news_at: datetime | None = None
    clarify_since: datetime | None = None   # when it entered «требует уточнения»; None when not in it
    clarify_answered: bool = False          # a person changed it since it entered «требует уточнения»
    pauses: tuple[tuple[datetime, datetime], ...] = ()   # completed stays in «требует уточнения»


def facts_of(request: Request) -> Facts:
    """Return the deadline facts a stored request carries."""
    return Facts(status=request.status, created_at=request.created_at, level=request.level,
                 archived=request.archived, due=request.due, promised=request.promised,
                 first_news_at=request.first_news_at, last_news_at=request.last_news_at,
                 clarify_since=request.clarify_since, clarify_answered=request.clarify_answered,
                 pauses=request.pauses)


def record_change(facts: Facts, *, at: datetime, status: str, source: str, news: bool) -> Facts:
    """Fold one change, applied at `at` and leaving the request in `status`, into the facts.

    `news`: a contractor mail applied to the request (with or without a status phrase). News or
    a status change moves last_news_at (and sets first_news_at once); entering «требует
    уточнения» starts a pause, leaving it completes one; a person's change (PERSON_SOURCES)
    while in it answers the contractor.

    Late events are folded in without rewinding anything: last_news_at only moves forward,
    first_news_at only back, and a pause never ends before it began. SPEC §3 has late mail
    (received before the last status change) recorded as history only, so the caller passes
    the current status for it: it is then news and nothing else.
    """
    changed = status != facts.status
    first, last = facts.first_news_at, facts.last_news_at
    if news or changed:
        first = at if first is None else min(first, at)
        last = at if last is None else max(last, at)
    since, answered, pauses = facts.clarify_since, facts.clarify_answered, facts.pauses
    if changed and facts.status == STATUS_CLARIFY:
        if since is not None:
            pauses = (*pauses, (since, max(since, at)))
        since, answered = None, False
    if changed and status == STATUS_CLARIFY:
        since, answered = at, False
    elif not changed and status == STATUS_CLARIFY and source in PERSON_SOURCES:
        answered = True
    return replace(facts, status=status, first_news_at=first, last_news_at=last,
                   clarify_since=since, clarify_answered=answered, pauses=pauses)


def facts_from_history(*, created_at: datetime, level: str, status: str,
                       history: Iterable[tuple[datetime, str, str]], archived: bool = False,
                       due: datetime | None = None, promised: datetime | None = None) -> Facts:
    """Rebuild a request's facts from its history: (at, status after the change, source) in the order applied.

    The first entry is the creation; created in a status other than «заявка отправлена» (an
    import), the contractor is taken to have reacted at that entry. A "mail" entry is news.
    `status` is the request's current status: when the history does not end in it, the change
    is taken to have happened at the last entry.
    """
    entries = list(history)
    first_at, first_status = (entries[0][0], entries[0][1]) if entries else (created_at, status)
    facts = Facts(status=DEFAULT_STATUS, created_at=created_at, level=level, archived=archived,
                  due=due, promised=promised)
    if first_status != DEFAULT_STATUS:
        facts = record_change(facts, at=first_at, status=first_status, source="import", news=False)
    for at, entry_status, source in entries[1:]:
        facts = record_change(facts, at=at, status=entry_status, source=source, news=source == "mail")
    if facts.status != status:
        facts = record_change(facts, at=entries[-1][0] if entries else created_at, status=status,
                              source="import", news=False)
    return facts


# ----- a request's deadlines ---------------------------------------------------------------

@dataclass(frozen=True)
class Deadline:
    """One running deadline of a request."""

    kind: str
    at: datetime


@dataclass(frozen=True)
class DeadlineState:
    """A request's running deadlines, the earliest of them and who is waited on."""

    running: tuple[Deadline, ...]
    deadline: datetime | None
    kind: str | None
    waiting_on: str

    def breached(self, now: datetime) -> bool:
        """Say whether the earliest deadline has passed."""
        return self.deadline is not None and _utc(now) > self.deadline

    def passed(self, now: datetime) -> tuple[Deadline, ...]:
        """Return the running deadlines that have passed, earliest first."""
        moment = _utc(now)
        return tuple(item for item in self.running if moment > item.at)


_NOTHING = DeadlineState((), None, None, WAITING_NOBODY)


def _append(running: list[Deadline], kind: str, at: datetime | None) -> None:
    if at is not None:
        running.append(Deadline(kind, _utc(at)))


def _after(clock: Clock, start: datetime, duration: Duration | None) -> datetime | None:
    if duration is None:
        return None
    try:
        return clock.add(start, duration)
    except NoWorkingTime:
        return None     # it could not pass within the horizon either


def _resolve_at(facts: Facts, level: ServiceLevel, clock: Clock) -> datetime | None:
    base = facts.due if facts.due is not None else _after(clock, facts.created_at, level.resolve)
    if base is None:
        return None
    paused = sum(clock.elapsed_minutes(start, end) for start, end in facts.pauses)
    if paused <= 0:
        return base
    try:
        return clock.add_minutes(base, paused)
    except NoWorkingTime:
        return None


def deadline_state(facts: Facts, level: ServiceLevel, calendar: WorkingCalendar) -> DeadlineState:
    """Work out a request's running deadlines (SPEC §4), each in its level's clock.

    A deadline the calendar cannot reach within its horizon (no working time) is left out.
    Facts in «требует уточнения» without clarify_since (rows older than the facts) count the
    stay from the last news, else from the creation.
    """
    if facts.archived or facts.status in FINAL_STATUSES:
        return _NOTHING
    clock = clock_for(level, calendar)
    running: list[Deadline] = []
    if facts.status == STATUS_CLARIFY:
        if facts.clarify_answered:
            return DeadlineState((), None, None, WAITING_CONTRACTOR)
        since = facts.clarify_since or facts.last_news_at or facts.created_at
        _append(running, "clarify", _after(clock, since, level.clarify))
        waiting = WAITING_US
    else:
        if facts.first_news_at is None:
            _append(running, "accept", _after(clock, facts.created_at, level.accept))
        else:
            _append(running, "update", _after(clock, facts.last_news_at or facts.first_news_at, level.update))
        _append(running, "resolve", _resolve_at(facts, level, clock))
        _append(running, "promise", facts.promised)
        waiting = WAITING_CONTRACTOR
    running.sort(key=lambda item: (item.at, KINDS.index(item.kind)))
    first = running[0] if running else None
    return DeadlineState(tuple(running), first.at if first else None, first.kind if first else None, waiting)


def overdue_minutes(state: DeadlineState, now: datetime, level: ServiceLevel, calendar: WorkingCalendar) -> float:
    """Return how long ago the deadline passed, counted in the level's clock (0 if it has not)."""
    if state.deadline is None or not state.breached(now):
        return 0.0
    return clock_for(level, calendar).elapsed_minutes(state.deadline, now)
