"""How long a snooze from Telegram lasts (pure).

`1h`, `4h` and `1d` are that many hours of the wall clock from the moment of asking (`1d` is
24 hours, whatever the working hours). «завтра» is the start of the next working day when
OMIS_WORK_HOURS is set (its first working window, holidays skipped), else 09:00 of the next day
that is not in OMIS_HOLIDAYS, in OMIS_TIMEZONE; "next" is after today, also before today's
working hours have begun.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from ..workhours import HORIZON_DAYS, WorkingCalendar

TOMORROW = "tomorrow"
MORNING = time(9, 0)
DURATIONS = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "1d": timedelta(days=1)}
_WORDS = {"1h": "1h", "1ч": "1h", "4h": "4h", "4ч": "4h", "1d": "1d", "1д": "1d", "24h": "1d", "24ч": "1d",
          "завтра": TOMORROW, "tomorrow": TOMORROW}


def parse_choice(word: str) -> str | None:
    """Read a snooze as typed (`1h`, `4ч`, `1d`, `завтра`…); return its key or None."""
    return _WORDS.get(word.strip().lower().replace("ё", "е"))


def next_morning(now: datetime, calendar: WorkingCalendar) -> datetime:
    """Return the start of the next working day after today (09:00 of the next non-holiday without hours)."""
    today = now.astimezone(calendar.tz).date()
    for offset in range(1, HORIZON_DAYS):
        day = today + timedelta(days=offset)
        if calendar.hours is not None:
            windows = calendar.windows(day)
            if windows:
                return windows[0][0]
        elif day not in calendar.holidays:
            return calendar.instant(datetime.combine(day, MORNING))
    # A calendar without a working day for years: tomorrow morning all the same.
    return calendar.instant(datetime.combine(today + timedelta(days=1), MORNING))


def snooze_until(choice: str, now: datetime, calendar: WorkingCalendar) -> datetime:
    """Return when a snooze chosen at `now` ends (UTC)."""
    now = now.astimezone(timezone.utc)
    if choice == TOMORROW:
        return next_morning(now, calendar)
    return now + DURATIONS[choice]
