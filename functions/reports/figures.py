"""The contractor's record (SPEC §10): figures per month and per level (pure, no I/O).

The figures come from what a request row carries, never from its history: created_at,
status_updated_at (for a final request, the time of its final status), first_news_at, the
level, the deadline facts (due, pauses in «требует уточнения») and `breaches` (kinds whose
deadline had passed before a change). A month is cut in OMIS_TIMEZONE; a request belongs to the
month and the level it was created with, archived or not. Times are counted in the level's
clock (`work`: working minutes only; `24x7`: every minute).

- Time to the first news: created_at → first_news_at, over the requests that had news.
- Time to a final status: created_at → status_updated_at, over the final requests.
- Resolved within `resolve`: a final request is on time when its final status came no later
  than its resolve deadline, computed from its facts as they stand (due or created + resolve,
  moved by the completed pauses); an open one counts as late once that deadline has passed
  (an archived open one: when `resolve` is among its recorded breaches); the rest are not
  decided yet and count neither way. Requests without a resolve deadline count neither way.
- Breaches by kind: the requests whose `breaches` name a kind, whose deadline of that kind has
  passed now, or whose facts show it: the first news after the accept deadline, a late final
  status (resolve). A request counts once per kind.
- Percentiles interpolate between the closest ranks (Excel's PERCENTILE.INC): the median of
  1, 2, 3, 4 is 2.5; the 90th percentile of 1…10 is 9.1.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timezone, tzinfo

from ..deadlines import KINDS, ServiceLevel, clock_for, deadline_state, facts_of, resolve_level
from ..model import FINAL_STATUSES, STATUS_ACCEPTED, STATUS_DONE, STATUS_REJECTED, Request, ValidationError
from ..workhours import WorkingCalendar

DEFAULT_MONTHS = 12
MAX_MONTHS = 60
LONGEST = 10


# ----- the range of months ----------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Month:
    """A calendar month."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """Read `YYYY-MM`; ValueError otherwise."""
        value = text.strip()
        if len(value) != 7 or value[4] != "-" or not (value[:4] + value[5:]).isascii() \
                or not (value[:4] + value[5:]).isdigit():
            raise ValueError(value)
        month = cls(int(value[:4]), int(value[5:]))
        if not 1 <= month.month <= 12 or not 1900 <= month.year <= 2999:
            raise ValueError(value)
        return month

    @classmethod
    def of(cls, moment: datetime, tz: tzinfo) -> Month:
        """Return the month an instant falls in, in a time zone."""
        local = moment.astimezone(tz)
        return cls(local.year, local.month)

    def plus(self, months: int) -> Month:
        """Return the month `months` later (earlier when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def start(self, tz: tzinfo) -> datetime:
        """Return the first instant of the month in a time zone, in UTC."""
        return datetime.combine(date(self.year, self.month, 1), time.min, tz).astimezone(timezone.utc)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class MonthRange:
    """The months a report covers, both ends included."""

    first: Month
    last: Month

    def months(self) -> list[Month]:
        """Return every month of the range, in order."""
        count = (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1
        return [self.first.plus(i) for i in range(count)]

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """Return the half-open span [start, end) of the range in UTC."""
        return self.first.start(tz), self.last.plus(1).start(tz)


def month_range(start: str | None, end: str | None, now: datetime, tz: tzinfo) -> MonthRange:
    """Read `from`/`to` (YYYY-MM, inclusive); a missing end makes the range 12 months long.

    Neither given: the 12 months up to the current one (in tz); only `from`: 12 months from it;
    only `to`: 12 months up to it.

    ValidationError names the field at fault (a bad month, `from` after `to`, more than MAX_MONTHS).
    """
    errors: dict[str, str] = {}
    found: dict[str, Month] = {}
    for name, text in (("from", start), ("to", end)):
        if text is None or not text.strip():
            continue
        try:
            found[name] = Month.parse(text)
        except ValueError:
            errors[name] = f"{name}: месяц в виде ГГГГ-ММ, например 2026-03."
    if errors:
        raise ValidationError(errors)
    if "to" in found:
        last = found["to"]
        first = found.get("from") or last.plus(-(DEFAULT_MONTHS - 1))
    elif "from" in found:
        first = found["from"]
        last = first.plus(DEFAULT_MONTHS - 1)
    else:
        last = Month.of(now, tz)
        first = last.plus(-(DEFAULT_MONTHS - 1))
    if first > last:
        raise ValidationError({"from": "Начало периода (from) позже его конца (to)."})
    if len(MonthRange(first, last).months()) > MAX_MONTHS:
        raise ValidationError({"to": f"Период не длиннее {MAX_MONTHS} месяцев."})
    return MonthRange(first, last)


# ----- figures -----------------------------------------------------------------------------

def percentile(values: Sequence[float], share: float) -> float | None:
    """Return a percentile (share 0…1) interpolated between the closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Spread:
    """How long something took, in minutes of the level's clock: how many, the median, the 90th percentile."""

    count: int = 0
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(len(values), percentile(values, 0.5), percentile(values, 0.9))


@dataclass(frozen=True)
class Outcome:
    """What one request adds to the figures."""

    request: Request
    level: ServiceLevel
    month: Month
    first_news: float | None       # minutes to the first news (None: no news yet)
    resolution: float | None       # minutes to the final status (None: not final)
    on_time: bool | None           # resolved within resolve (None: not decided, or no such deadline)
    breaches: frozenset[str]
    waited: float                  # minutes it waited: to its final status, else until archived or now

    @property
    def open(self) -> bool:
        return self.request.status not in FINAL_STATUSES


@dataclass(frozen=True)
class Group:
    """The figures of one month, one level, or the whole range."""

    key: str
    created: int = 0
    done: int = 0
    rejected: int = 0
    open: int = 0
    first_news: Spread = Spread()
    resolution: Spread = Spread()
    on_time: int = 0
    late: int = 0
    breaches: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    @property
    def on_time_share(self) -> float | None:
        """Return the share resolved within the resolve deadline among those decided (None: none decided)."""
        decided = self.on_time + self.late
        return self.on_time / decided if decided else None


@dataclass(frozen=True)
class Report:
    """The contractor's record over a range of months (one level or all)."""

    range: MonthRange
    level: str | None
    now: datetime
    total: Group
    months: tuple[Group, ...]
    levels: tuple[Group, ...]
    longest: tuple[Outcome, ...]
    known_levels: Mapping[str, ServiceLevel] = field(default_factory=dict)


def _first_deadlines(request: Request, level: ServiceLevel, calendar: WorkingCalendar
                     ) -> tuple[datetime | None, datetime | None]:
    """Return a request's accept and resolve deadlines from its facts as they stand, whatever its status now."""
    # A final or archived request has no running deadlines; as an open one not yet answered it
    # shows where both are (resolve moved by the completed pauses).
    probe = replace(facts_of(request), status=STATUS_ACCEPTED, archived=False, clarify_since=None,
                    clarify_answered=False, first_news_at=None, last_news_at=None)
    running = {d.kind: d.at for d in deadline_state(probe, level, calendar).running}
    return running.get("accept"), running.get("resolve")


def outcome(request: Request, level: ServiceLevel, calendar: WorkingCalendar, tz: tzinfo,
            now: datetime) -> Outcome:
    """Work out what one request adds to the figures (its level already resolved)."""
    clock = clock_for(level, calendar)
    created = request.created_at
    final = request.status in FINAL_STATUSES
    first_news = clock.elapsed_minutes(created, request.first_news_at) if request.first_news_at else None
    resolution = clock.elapsed_minutes(created, request.status_updated_at) if final else None
    state = deadline_state(facts_of(request), level, calendar)
    passed = {d.kind for d in state.passed(now)}
    on_time: bool | None = None
    accept_at, resolve_at = _first_deadlines(request, level, calendar)
    if resolve_at is not None:
        if final:
            on_time = request.status_updated_at <= resolve_at
        elif "resolve" in passed or (request.archived and "resolve" in request.breaches):
            on_time = False
    if final:
        waited = resolution or 0.0
    else:
        waited = clock.elapsed_minutes(created, request.updated_at if request.archived else now)
    # Besides the kinds recorded and those passed now, what the facts show: news after the
    # accept deadline, a final status after resolve (rows imported final record no breaches).
    derived = {"resolve"} if on_time is False else set()
    if accept_at is not None and request.first_news_at is not None and request.first_news_at > accept_at:
        derived.add("accept")
    kinds = frozenset(k for k in (*request.breaches, *passed, *derived) if k in KINDS)
    return Outcome(request, level, Month.of(created, tz), first_news, resolution, on_time, kinds, waited)


def group(key: str, outcomes: Sequence[Outcome]) -> Group:
    """Add up the outcomes of one group."""
    breaches = dict.fromkeys(KINDS, 0)
    for item in outcomes:
        for kind in item.breaches:
            breaches[kind] += 1
    statuses = [item.request.status for item in outcomes]
    return Group(
        key=key, created=len(outcomes), done=statuses.count(STATUS_DONE), rejected=statuses.count(STATUS_REJECTED),
        open=sum(1 for item in outcomes if item.open),
        first_news=Spread.of([item.first_news for item in outcomes if item.first_news is not None]),
        resolution=Spread.of([item.resolution for item in outcomes if item.resolution is not None]),
        on_time=sum(1 for item in outcomes if item.on_time is True),
        late=sum(1 for item in outcomes if item.on_time is False), breaches=breaches,
    )


def build_report(requests: Iterable[Request], *, levels: Mapping[str, ServiceLevel], default_level: str,
                 calendar: WorkingCalendar, tz: tzinfo, now: datetime, months: MonthRange,
                 level: str | None = None, longest: int = LONGEST) -> Report:
    """Work out the figures of the requests created in a range of months (of one level, or of all)."""
    wanted = set(months.months())
    outcomes: list[Outcome] = []
    for request in requests:
        request_level = resolve_level(levels, request.level or None, default_level)
        if level is not None and request_level.id != level:
            continue
        item = outcome(request, request_level, calendar, tz, now)
        if item.month in wanted:
            outcomes.append(item)
    by_month = [group(str(m), [o for o in outcomes if o.month == m]) for m in months.months()]
    level_ids = [level] if level is not None else list(levels)
    by_level = [group(level_id, [o for o in outcomes if o.level.id == level_id]) for level_id in level_ids]
    waited = sorted(outcomes, key=lambda o: (-o.waited, o.request.created_at))[:longest]
    return Report(months, level, now, group("total", outcomes), tuple(by_month), tuple(by_level), tuple(waited),
                  dict(levels))
