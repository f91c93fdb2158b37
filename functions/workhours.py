"""Working hours and holidays (OMIS_WORK_HOURS, OMIS_HOLIDAYS): parsing and working-time arithmetic (pure).

Windows are wall-clock times in the calendar's zone, so a DST change moves no window in
local terms; minutes inside them are counted in real time (UTC instants). Every search
forward or back stops after a horizon (HORIZON_DAYS by default) and answers None, so a
calendar without working time, e.g. holidays typed for decades, cannot loop forever.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import cached_property

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 5 * 366      # how far any search for working time looks before giving up

_UTC = timezone.utc
_ONE_DAY = timedelta(days=1)
_MINUTES_PER_DAY = 24 * 60
_WHOLE_DAY = ((0, _MINUTES_PER_DAY),)

_PART_RE = re.compile(
    r"^(?P<d1>[A-Za-z]{3})(?:-(?P<d2>[A-Za-z]{3}))?\s+(?P<h1>\d{1,2}):(?P<m1>\d{2})-(?P<h2>\d{1,2}):(?P<m2>\d{2})$"
)


@dataclass(frozen=True)
class WorkHours:
    """Working intervals per weekday (0 = Monday), local wall-clock times."""

    intervals: tuple[tuple[int, time, time], ...]

    def windows_on(self, day: date) -> list[tuple[time, time]]:
        """Return the intervals of a day's weekday as written (24:00 is time.max)."""
        return [(start, end) for weekday, start, end in self.intervals if weekday == day.weekday()]

    @cached_property
    def minutes_by_weekday(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Return each weekday's intervals as minutes from midnight (1440 = 24:00), sorted and merged."""
        result = []
        for weekday in range(7):
            spans = sorted((_minute_of_day(start), _minute_of_day(end))
                           for day, start, end in self.intervals if day == weekday)
            merged: list[tuple[int, int]] = []
            for lo, hi in spans:
                if merged and lo <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
                else:
                    merged.append((lo, hi))
            result.append(tuple(merged))
        return tuple(result)


def _minute_of_day(moment: time) -> int:
    return _MINUTES_PER_DAY if moment == time.max else moment.hour * 60 + moment.minute


def parse_work_hours(text: str) -> WorkHours | None:
    """Read `Mon-Fri 09:00-18:00[; Sat 10:00-14:00]`; None for an empty text; ValueError if malformed."""
    text = (text or "").strip()
    if not text:
        return None
    intervals: list[tuple[int, time, time]] = []
    for part in re.split(r"[;,]", text):
        part = " ".join(part.split())
        if not part:
            continue
        m = _PART_RE.match(part)
        if not m:
            raise ValueError(f"не понимаю «{part}», ожидается вида «Mon-Fri 09:00-18:00»")
        try:
            d1 = DAY_NAMES.index(m["d1"].lower())
            d2 = DAY_NAMES.index((m["d2"] or m["d1"]).lower())
        except ValueError:
            raise ValueError(f"неизвестный день недели в «{part}» (Mon, Tue, Wed, Thu, Fri, Sat, Sun)") from None
        try:
            start = time(int(m["h1"]), int(m["m1"]))
            end = time(int(m["h2"]), int(m["m2"])) if m["h2"] != "24" else time.max
        except ValueError:
            raise ValueError(f"неверное время в «{part}»") from None
        if end <= start:
            raise ValueError(f"конец рабочего времени раньше начала в «{part}»")
        days = range(d1, d2 + 1) if d1 <= d2 else [*range(d1, 7), *range(d2 + 1)]
        intervals.extend((day, start, end) for day in days)
    return WorkHours(tuple(intervals)) if intervals else None


def parse_holidays(text: str) -> frozenset[date]:
    """Read `2026-12-31,2027-01-01..2027-01-08`; ValueError if malformed."""
    days: set[date] = set()
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if ".." in part:
                first, last = (date.fromisoformat(p.strip()) for p in part.split("..", 1))
                if last < first:
                    raise ValueError
                days.update(first + timedelta(days=i) for i in range((last - first).days + 1))
            else:
                days.add(date.fromisoformat(part))
        except ValueError:
            raise ValueError(f"не понимаю «{part}», ожидается ГГГГ-ММ-ДД или ГГГГ-ММ-ДД..ГГГГ-ММ-ДД") from None
    return frozenset(days)


def _as_utc(moment: datetime) -> datetime:
    """Return an instant in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=_UTC) if moment.tzinfo is None else moment.astimezone(_UTC)


def _minutes(span: timedelta) -> float:
    return span.total_seconds() / 60


@dataclass(frozen=True)
class WorkingCalendar:
    """Which minutes count: all of them, or only working hours outside holidays.

    With no working hours set, every day not in `holidays` counts wholly (midnight to midnight).
    Instants this class returns are in UTC.
    """

    tz: tzinfo
    hours: WorkHours | None = None
    holidays: frozenset[date] = frozenset()

    @property
    def counts_every_minute(self) -> bool:
        return self.hours is None and not self.holidays

    @cached_property
    def _day_cache(self) -> dict[date, tuple[tuple[tuple[datetime, datetime], ...], timedelta]]:
        return {}

    @cached_property
    def _week_cache(self) -> dict[date, timedelta]:
        return {}

    def instant(self, wall: datetime) -> datetime:
        """Return the UTC instant of a naive wall-clock time in the calendar's zone.

        A time in a DST gap is taken as if before the gap.
        """
        return wall.replace(tzinfo=self.tz).astimezone(_UTC)

    def wall(self, moment: datetime) -> datetime:
        """Return an instant as a naive wall-clock time in the calendar's zone."""
        return _as_utc(moment).astimezone(self.tz).replace(tzinfo=None)

    def local_windows(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Return a day's working windows as naive wall-clock times, sorted and merged (none on a holiday)."""
        if day in self.holidays:
            return ()
        spans = _WHOLE_DAY if self.hours is None else self.hours.minutes_by_weekday[day.weekday()]
        midnight = datetime.combine(day, time.min)
        return tuple((midnight + timedelta(minutes=lo), midnight + timedelta(minutes=hi)) for lo, hi in spans)

    def _day(self, day: date) -> tuple[tuple[tuple[datetime, datetime], ...], timedelta]:
        cached = self._day_cache.get(day)
        if cached is None:
            windows = []
            for lo, hi in self.local_windows(day):
                start, end = self.instant(lo), self.instant(hi)
                if end > start:        # a window wholly inside a DST gap has no real minutes
                    windows.append((start, end))
            cached = (tuple(windows), sum((end - start for start, end in windows), timedelta()))
            self._day_cache[day] = cached
        return cached

    def windows(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Return a day's working windows as UTC instants, half-open [start, end)."""
        return self._day(day)[0]

    def day_minutes(self, day: date) -> float:
        """Count the working minutes of a local day (real minutes: a DST day may have more or fewer)."""
        return _minutes(self._day(day)[1])

    def is_working_day(self, day: date) -> bool:
        """Say whether a local day has any working time."""
        return bool(self._day(day)[0])

    def _week(self, monday: date) -> timedelta:
        cached = self._week_cache.get(monday)
        if cached is None:
            cached = sum((self._day(monday + timedelta(days=i))[1] for i in range(7)), timedelta())
            self._week_cache[monday] = cached
        return cached

    def is_working(self, moment: datetime) -> bool:
        """Say whether a moment falls in working time."""
        moment = _as_utc(moment)
        day = moment.astimezone(self.tz).date()
        return any(start <= moment < end for start, end in self.windows(day))

    def working_minutes(self, start: datetime, end: datetime) -> float:
        """Count the working minutes between two instants (0 when end is not after start)."""
        start, end = _as_utc(start), _as_utc(end)
        if end <= start:
            return 0.0
        if self.counts_every_minute:
            return _minutes(end - start)
        total = timedelta()
        first = day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            if day.weekday() == 0 and first < day and day + timedelta(days=7) <= last:
                total += self._week(day)          # a whole week inside the span
                day += timedelta(days=7)
                continue
            for w_start, w_end in self.windows(day):
                lo, hi = max(w_start, start), min(w_end, end)
                if hi > lo:
                    total += hi - lo
            day += _ONE_DAY
        return _minutes(total)

    def next_working_instant(self, moment: datetime, max_days: int = HORIZON_DAYS) -> datetime | None:
        """Return the first instant at or after `moment` that is working time, or None within max_days."""
        moment = _as_utc(moment)
        if self.counts_every_minute:
            return moment
        day = moment.astimezone(self.tz).date()
        for _ in range(max_days + 1):
            for w_start, w_end in self.windows(day):
                if w_end > moment:
                    return max(w_start, moment)
            day += _ONE_DAY
        return None

    def add_working_minutes(self, start: datetime, minutes: float,
                            max_days: int = HORIZON_DAYS) -> datetime | None:
        """Return the earliest instant with `minutes` working minutes after start, or None within max_days.

        The result may be the end of a window (17:00 + 1 h with work until 18:00 is 18:00, not
        the next morning); a start outside working time counts from the next working instant.
        """
        start = _as_utc(start)
        remaining = timedelta(minutes=minutes)
        if remaining <= timedelta():
            return start
        if self.counts_every_minute:
            return start + remaining
        day = start.astimezone(self.tz).date()
        for _ in range(max_days + 1):
            for w_start, w_end in self.windows(day):
                if w_end <= start:
                    continue
                lo = max(w_start, start)
                if remaining <= w_end - lo:
                    return lo + remaining
                remaining -= w_end - lo
            day += _ONE_DAY
        return None

    def add_working_days(self, start: datetime, days: int, max_days: int = HORIZON_DAYS) -> datetime | None:
        """Return the same point of the working day `days` working days later, or None within max_days.

        A start outside working time is first moved to the next working instant. The point of
        the day is the working time already passed that day, on the wall clock (so a DST night
        shifts nothing); the result is that far into the `days`-th next working day, counted
        window by window (a lunch break is skipped), or the end of that day's last window when
        the day is shorter. A start at the very beginning of a day gives the beginning.
        """
        begin = self.next_working_instant(start, max_days)
        if begin is None or days <= 0:
            return begin
        wall = self.wall(begin)
        day = wall.date()
        point = sum((min(wall, hi) - lo for lo, hi in self.local_windows(day) if wall > lo), timedelta())
        found = 0
        for _ in range(max_days):
            day += _ONE_DAY
            if self.is_working_day(day):
                found += 1
                if found >= days:
                    break
        else:
            return None
        windows = self.local_windows(day)
        for lo, hi in windows:
            if point < hi - lo:
                return self.instant(lo + point)
            point -= hi - lo
        return self.instant(windows[-1][1])

    def cutoff(self, now: datetime, minutes: float, max_days: int = 400) -> datetime | None:
        """Return the latest instant T with working_minutes(T, now) >= minutes, or None if none within max_days."""
        now = _as_utc(now)
        if self.counts_every_minute:
            return now - timedelta(minutes=minutes)
        remaining = timedelta(minutes=minutes)
        day = now.astimezone(self.tz).date()
        for _ in range(max_days):
            for w_start, w_end in reversed(self.windows(day)):
                hi = min(w_end, now)
                if hi <= w_start:
                    continue
                if hi - w_start >= remaining:
                    return hi - remaining
                remaining -= hi - w_start
            day -= _ONE_DAY
        return None
