"""Working hours and holidays: parsing, counting working minutes, and the delay cutoff."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from functions.workhours import WorkingCalendar, parse_holidays, parse_work_hours

MSK = ZoneInfo("Europe/Moscow")


def msk(*args) -> datetime:
    return datetime(*args, tzinfo=MSK)


def test_parse_week_ranges_and_several_parts():
    hours = parse_work_hours("Mon-Fri 09:00-18:00; Sat 10:00-14:00")
    assert hours.windows_on(date(2026, 11, 27)) == [(time(9), time(18))]  # Friday
    assert hours.windows_on(date(2026, 11, 28)) == [(time(10), time(14))]  # Saturday
    assert hours.windows_on(date(2026, 11, 29)) == []  # Sunday
    assert parse_work_hours("") is None


def test_parse_holidays_with_ranges():
    days = parse_holidays("2026-12-31, 2027-01-01..2027-01-03")
    assert days == {date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)}
    with pytest.raises(ValueError):
        parse_holidays("2027-01-08..2027-01-01")


def test_without_hours_every_minute_counts():
    cal = WorkingCalendar(MSK)
    assert cal.working_minutes(msk(2026, 11, 28, 0, 0), msk(2026, 11, 28, 2, 30)) == 150
    assert cal.is_working(msk(2026, 11, 29, 3, 0))


def test_only_working_minutes_count_across_a_weekend():
    cal = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-18:00"))
    # Friday 17:30 -> Monday 09:45: 30 + 45 minutes.
    assert cal.working_minutes(msk(2026, 11, 27, 17, 30), msk(2026, 11, 30, 9, 45)) == 75
    assert not cal.is_working(msk(2026, 11, 28, 12, 0))
    assert cal.is_working(msk(2026, 11, 30, 9, 0))


def test_holidays_do_not_count():
    cal = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-18:00"), parse_holidays("2026-12-31"))
    assert cal.working_minutes(msk(2026, 12, 30, 17, 0), msk(2027, 1, 1, 10, 0)) == 120  # Dec 30 17-18 and Jan 1 9-10
    assert not cal.is_working(msk(2026, 12, 31, 12, 0))


def test_cutoff_is_the_inverse_of_working_minutes():
    cal = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-18:00"))
    now = msk(2026, 11, 30, 9, 45)  # Monday
    cut = cal.cutoff(now, 75)
    assert cut == msk(2026, 11, 27, 17, 30)
    assert cal.working_minutes(cut, now) == 75
    plain = WorkingCalendar(timezone.utc)
    assert plain.cutoff(datetime(2026, 1, 1, 12, tzinfo=timezone.utc), 60) == datetime(2026, 1, 1, 11, tzinfo=timezone.utc)


def test_holidays_alone_do_not_count():
    cal = WorkingCalendar(MSK, None, parse_holidays("2026-12-31"))
    assert cal.working_minutes(msk(2026, 12, 30, 23, 0), msk(2027, 1, 1, 1, 0)) == 120
    assert not cal.is_working(msk(2026, 12, 31, 12, 0)) and cal.is_working(msk(2027, 1, 1, 0, 30))
    assert cal.cutoff(msk(2027, 1, 1, 1, 0), 120) == msk(2026, 12, 30, 23, 0)


def test_working_day_follows_hours_and_holidays():
    plain = WorkingCalendar(MSK, None, parse_holidays("2026-12-31"))
    assert plain.is_working_day(date(2026, 11, 28))  # a Saturday counts without working hours
    assert not plain.is_working_day(date(2026, 12, 31))
    office = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-18:00"), parse_holidays("2026-12-31"))
    assert office.is_working_day(date(2026, 11, 27))
    assert not office.is_working_day(date(2026, 11, 28))
    assert not office.is_working_day(date(2026, 12, 31))  # a Thursday, but a holiday
