"""Working hours and holidays (OMIS_WORK_HOURS, OMIS_HOLIDAYS): parsing and minute counting (pure)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_PART_RE = re.compile(
    r"^(?P<d1>[A-Za-z]{3})(?:-(?P<d2>[A-Za-z]{3}))?\s+(?P<h1>\d{1,2}):(?P<m1>\d{2})-(?P<h2>\d{1,2}):(?P<m2>\d{2})$"
)


@dataclass(frozen=True)
class WorkHours:
    """Working intervals per weekday (0 = Monday), local wall-clock times."""

    intervals: tuple[tuple[int, time, time], ...]

    def windows_on(self, day: date) -> list[tuple[time, time]]:
        return [(start, end) for weekday, start, end in self.intervals if weekday == day.weekday()]


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


@dataclass(frozen=True)
class WorkingCalendar:
    """Which minutes count: all of them, or only working hours outside holidays."""

    tz: tzinfo
    hours: WorkHours | None = None
    holidays: frozenset[date] = frozenset()

    @property
    def counts_every_minute(self) -> bool:
        return self.hours is None and not self.holidays

    def _windows(self, day: date) -> list[tuple[datetime, datetime]]:
        if day in self.holidays:
            return []
        if self.hours is None:
            return [(datetime.combine(day, time.min, self.tz),
                     datetime.combine(day + timedelta(days=1), time.min, self.tz))]
        result = []
        for start, end in self.hours.windows_on(day):
            end_dt = (datetime.combine(day + timedelta(days=1), time.min, self.tz)
                      if end == time.max else datetime.combine(day, end, self.tz))
            result.append((datetime.combine(day, start, self.tz), end_dt))
        return result

    def is_working(self, moment: datetime) -> bool:
        """Say whether a moment falls in working time."""
        local = moment.astimezone(self.tz)
        return any(start <= local < end for start, end in self._windows(local.date()))

    def working_minutes(self, start: datetime, end: datetime) -> float:
        """Count the working minutes between two instants (0 when end is not after start)."""
        if end <= start:
            return 0.0
        if self.counts_every_minute:
            return (end - start).total_seconds() / 60
        total = 0.0
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            for w_start, w_end in self._windows(day):
                lo, hi = max(w_start, start), min(w_end, end)
                if hi > lo:
                    total += (hi - lo).total_seconds() / 60
            day += timedelta(days=1)
        return total

    def cutoff(self, now: datetime, minutes: float, max_days: int = 400) -> datetime | None:
        """Return the latest instant T with working_minutes(T, now) >= minutes, or None if none within max_days."""
        if self.counts_every_minute:
            return now - timedelta(minutes=minutes)
        remaining = minutes
        day = now.astimezone(self.tz).date()
        for _ in range(max_days):
            for w_start, w_end in reversed(self._windows(day)):
                hi = min(w_end, now)
                if hi <= w_start:
                    continue
                available = (hi - w_start).total_seconds() / 60
                if available >= remaining:
                    return hi - timedelta(minutes=remaining)
                remaining -= available
            day -= timedelta(days=1)
        return None
