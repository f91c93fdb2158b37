"""Service levels, the work/24x7 clock, facts of a request and its deadlines (SPEC §4)."""
from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from functions.deadlines import (
    KINDS,
    WAITING_CONTRACTOR,
    WAITING_NOBODY,
    WAITING_US,
    Deadline,
    Duration,
    Facts,
    NoWorkingTime,
    ServiceLevel,
    clock_for,
    deadline_state,
    facts_from_history,
    overdue_minutes,
    parse_duration,
    parse_levels,
    record_change,
    resolve_level,
)
from functions.model import DEFAULT_STATUS, STATUS_ACCEPTED, STATUS_CLARIFY, STATUS_DONE, STATUS_REJECTED
from functions.workhours import WorkingCalendar, parse_holidays, parse_work_hours

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc

SPEC_LEVELS_JSON = """
{"normal": {"title": "Обычная", "accept": "4h", "update": "1d", "resolve": "5d", "clarify": "1d", "clock": "work"},
 "urgent": {"title": "Срочная", "accept": "1h", "update": "4h", "resolve": "1d", "clock": "work"},
 "crash":  {"title": "Авария",  "accept": "15m", "update": "1h", "resolve": "8h", "clock": "24x7"}}
"""
LEVELS = parse_levels(SPEC_LEVELS_JSON, 60)
NORMAL, URGENT, CRASH = LEVELS["normal"], LEVELS["urgent"], LEVELS["crash"]

# 2026-11-04 is a Russian public holiday (a Wednesday); the New Year holidays run to 2027-01-08.
WORK_MSK = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-18:00"),
                           parse_holidays("2026-11-04,2026-12-31..2027-01-08"))
LUNCH_MSK = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-13:00; Mon-Fri 14:00-18:00"))
SHORT_SATURDAY_MSK = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-18:00; Sat 10:00-14:00"))
WORK_BERLIN = WorkingCalendar(BERLIN, parse_work_hours("Mon-Fri 09:00-18:00"))
WHOLE_DAYS_BERLIN = WorkingCalendar(BERLIN)
EVERY_MINUTE_MSK = WorkingCalendar(MSK)


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


WORK = "work"
ROUND_CLOCK = ServiceLevel("round", "Круглосуточно", "24x7")


# ----- durations and levels -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("15m", Duration(15, "m")), ("4h", Duration(4, "h")), ("5d", Duration(5, "d")), (" 1d ", Duration(1, "d")),
    ("366d", Duration(366, "d")),
])
def test_duration_reads_number_and_unit_and_prints_back(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected
    assert str(parse_duration(text)) == text.strip()


@pytest.mark.parametrize(("text", "message"), [
    ("4 hours", "ожидается длительность вида 15m, 4h или 5d, получено «4 hours»"),
    ("4H", "получено «4H»"),
    ("1w", "получено «1w»"),
    ("", "получено «»"),
    ("-5m", "получено «-5m»"),
    ("0m", "длительность должна быть больше нуля, получено «0m»"),
    ("367d", "не больше 366 дней"),
    (60, "получено «60»"),
])
def test_bad_duration_is_refused_in_russian(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)  # type: ignore[arg-type]


def test_the_three_spec_levels_are_read_in_order() -> None:
    assert list(LEVELS) == ["normal", "urgent", "crash"]
    assert ServiceLevel("normal", "Обычная", "work", accept=Duration(4, "h"), update=Duration(1, "d"),
                                  resolve=Duration(5, "d"), clarify=Duration(1, "d")) == NORMAL
    assert ServiceLevel("urgent", "Срочная", "work", accept=Duration(1, "h"), update=Duration(4, "h"),
                                  resolve=Duration(1, "d")) == URGENT
    assert ServiceLevel("crash", "Авария", "24x7", accept=Duration(15, "m"), update=Duration(1, "h"),
                                 resolve=Duration(8, "h")) == CRASH
    assert [NORMAL.duration(kind) for kind in KINDS] == [Duration(4, "h"), Duration(1, "d"), Duration(5, "d"),
                                                          None, Duration(1, "d")]
    assert URGENT.duration("clarify") is None


@pytest.mark.parametrize("raw", [None, "", "   \n"])
def test_without_levels_one_normal_level_waits_the_delay_for_accept_and_update(raw: str | None) -> None:
    levels = parse_levels(raw, 90)
    assert levels == {"normal": ServiceLevel("normal", "Обычная", "work",
                                             accept=Duration(90, "m"), update=Duration(90, "m"))}


def test_level_keys_are_optional_and_null_means_unset() -> None:
    levels = parse_levels('{"plain": {"title": " Без сроков ", "clarify": null}, "z-9_x": {"title": "Z"}}', 60)
    assert levels["plain"] == ServiceLevel("plain", "Без сроков")
    assert list(levels) == ["plain", "z-9_x"]


@pytest.mark.parametrize(("raw", "message"), [
    ("{not json", "не разобрать JSON: ошибка в строке 1, символ 2"),
    ('["normal"]', "ожидается JSON-объект уровней"),
    ("{}", "не задано ни одного уровня"),
    ('{"сроч ная": {"title": "x"}}', "уровень «сроч ная»: код уровня — от 1 до 32 латинских букв"),
    ('{"' + "a" * 33 + '": {"title": "x"}}', "код уровня — от 1 до 32"),
    ('{"normal": "4h"}', "уровень «normal»: ожидается объект"),
    ('{"normal": {"accept": "4h"}}', "уровень «normal», ключ «title»: нужно название уровня"),
    ('{"normal": {"title": "  "}}', "уровень «normal», ключ «title»: нужно название"),
    ('{"normal": {"title": 5}}', "уровень «normal», ключ «title»"),
    ('{"normal": {"title": "' + "я" * 101 + '"}}', "уровень «normal», ключ «title»: название не длиннее 100"),
    ('{"normal": {"title": "x", "acept": "4h"}}', "уровень «normal», ключ «acept»: неизвестный ключ"),
    ('{"normal": {"title": "x", "promise": "4h"}}', "уровень «normal», ключ «promise»: неизвестный ключ"),
    ('{"urgent": {"title": "x", "accept": "4 hours"}}',
     "^уровень «urgent», ключ «accept»: ожидается длительность вида 15m, 4h или 5d, получено «4 hours»$"),
    ('{"urgent": {"title": "x", "update": "0h"}}', "уровень «urgent», ключ «update»: длительность должна быть больше нуля"),
    ('{"urgent": {"title": "x", "resolve": "-1d"}}', "уровень «urgent», ключ «resolve»: .*получено «-1d»"),
    ('{"urgent": {"title": "x", "clarify": 30}}', "уровень «urgent», ключ «clarify»: .*получено «30»"),
    ('{"urgent": {"title": "x", "clock": "weekdays"}}',
     "уровень «urgent», ключ «clock»: ожидается «work» или «24x7», получено «weekdays»"),
    ('{"urgent": {"title": "x", "accept": "1h", "accept": "2h"}}', "ключ «accept» указан дважды"),
])
def test_bad_levels_are_refused_naming_level_and_key(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_levels(raw, 60)


def test_a_level_no_longer_configured_falls_back_to_the_default() -> None:
    assert resolve_level(LEVELS, "urgent", "normal") is URGENT
    assert resolve_level(LEVELS, "vip", "crash") is CRASH
    assert resolve_level(LEVELS, None, "normal") is NORMAL
    assert resolve_level(LEVELS, None, "gone") is NORMAL        # and the first one if the default is gone too


# ----- the clock ----------------------------------------------------------------------------

@pytest.mark.parametrize(("calendar", "start", "duration", "expected"), [
    # hours: working minutes, across the weekend, a holiday and the New Year holidays
    (WORK_MSK, msk(2026, 11, 27, 17, 0), "4h", msk(2026, 11, 30, 12, 0)),     # Fri 17:00 -> Mon 12:00
    (WORK_MSK, msk(2026, 11, 27, 17, 0), "1h", msk(2026, 11, 27, 18, 0)),     # the end of the day, not Monday
    (WORK_MSK, msk(2026, 11, 27, 18, 0), "15m", msk(2026, 11, 30, 9, 15)),
    (WORK_MSK, msk(2026, 11, 28, 12, 0), "1h", msk(2026, 11, 30, 10, 0)),     # from Saturday
    (WORK_MSK, msk(2026, 11, 3, 15, 0), "4h", msk(2026, 11, 5, 10, 0)),       # 4 November is a holiday
    (WORK_MSK, msk(2026, 12, 30, 17, 0), "2h", msk(2027, 1, 11, 10, 0)),
    (WORK_MSK, msk(2026, 11, 27, 9, 0), "45h", msk(2026, 12, 3, 18, 0)),      # five working days of 9 h
    # days: the same point of the working day N working days later
    (WORK_MSK, msk(2026, 11, 27, 10, 30), "1d", msk(2026, 11, 30, 10, 30)),   # Fri -> Mon
    (WORK_MSK, msk(2026, 11, 27, 10, 30), "5d", msk(2026, 12, 4, 10, 30)),
    (WORK_MSK, msk(2026, 11, 28, 12, 0), "1d", msk(2026, 12, 1, 9, 0)),       # Sat: from Mon 09:00, so Tue 09:00
    (WORK_MSK, msk(2026, 11, 27, 18, 0), "1d", msk(2026, 12, 1, 9, 0)),       # after hours counts as Monday morning
    (WORK_MSK, msk(2026, 11, 27, 6, 0), "1d", msk(2026, 11, 30, 9, 0)),       # before hours: the start of that day
    (WORK_MSK, msk(2026, 11, 3, 15, 0), "1d", msk(2026, 11, 5, 15, 0)),       # over the holiday
    (WORK_MSK, msk(2026, 12, 30, 16, 0), "1d", msk(2027, 1, 11, 16, 0)),      # over the New Year holidays
    (WORK_MSK, msk(2026, 12, 30, 16, 0), "3d", msk(2027, 1, 13, 16, 0)),
    # a lunch break
    (LUNCH_MSK, msk(2026, 11, 30, 12, 0), "2h", msk(2026, 11, 30, 15, 0)),
    (LUNCH_MSK, msk(2026, 11, 30, 12, 0), "1h", msk(2026, 11, 30, 13, 0)),
    (LUNCH_MSK, msk(2026, 11, 30, 13, 30), "1d", msk(2026, 12, 1, 14, 0)),    # in the break: from 14:00
    (LUNCH_MSK, msk(2026, 11, 30, 15, 0), "1d", msk(2026, 12, 1, 15, 0)),
    (LUNCH_MSK, msk(2026, 11, 27, 12, 59), "1d", msk(2026, 11, 30, 12, 59)),
    # a shorter day: capped at its end
    (SHORT_SATURDAY_MSK, msk(2026, 11, 27, 17, 0), "1d", msk(2026, 11, 28, 14, 0)),
    (SHORT_SATURDAY_MSK, msk(2026, 11, 27, 10, 0), "1d", msk(2026, 11, 28, 11, 0)),
    (SHORT_SATURDAY_MSK, msk(2026, 11, 27, 17, 0), "2d", msk(2026, 11, 30, 17, 0)),
    # Berlin across the DST changes: windows stay where the wall clock has them
    (WORK_BERLIN, berlin(2026, 3, 27, 10, 0), "1d", berlin(2026, 3, 30, 10, 0)),
    (WORK_BERLIN, berlin(2026, 3, 27, 17, 0), "2h", berlin(2026, 3, 30, 10, 0)),
    (WORK_BERLIN, berlin(2026, 10, 23, 17, 0), "2h", berlin(2026, 10, 26, 10, 0)),
    (WORK_BERLIN, berlin(2026, 10, 23, 11, 15), "1d", berlin(2026, 10, 26, 11, 15)),
    # every day counts wholly: a day is the same wall-clock time, hours are real hours
    (WHOLE_DAYS_BERLIN, berlin(2026, 3, 28, 10, 0), "1d", berlin(2026, 3, 29, 10, 0)),   # 23 real hours
    (WHOLE_DAYS_BERLIN, berlin(2026, 10, 24, 10, 0), "1d", berlin(2026, 10, 25, 10, 0)), # 25 real hours
    (WHOLE_DAYS_BERLIN, berlin(2026, 3, 28, 10, 0), "24h", berlin(2026, 3, 29, 11, 0)),
    (EVERY_MINUTE_MSK, msk(2026, 11, 28, 23, 30), "1h", msk(2026, 11, 29, 0, 30)),
])
def test_work_clock_adds_working_time(calendar: WorkingCalendar, start: datetime, duration: str,
                                      expected: datetime) -> None:
    result = clock_for(ServiceLevel("l", "L", WORK), calendar).add(start, parse_duration(duration))
    assert result == expected
    assert result.tzinfo is UTC
    assert result.astimezone(calendar.tz).replace(tzinfo=None) == expected.replace(tzinfo=None)


@pytest.mark.parametrize(("start", "duration", "expected"), [
    (msk(2026, 11, 27, 17, 0), "4h", msk(2026, 11, 27, 21, 0)),       # after hours and
    (msk(2026, 11, 28, 3, 0), "15m", msk(2026, 11, 28, 3, 15)),       # at night on Saturday count
    (msk(2026, 12, 31, 10, 0), "1d", msk(2027, 1, 1, 10, 0)),         # holidays count
    (berlin(2026, 3, 28, 10, 0), "1d", berlin(2026, 3, 29, 11, 0)),   # a day is 24 h, DST or not
    (berlin(2026, 10, 24, 10, 0), "1d", berlin(2026, 10, 25, 9, 0)),
])
def test_round_the_clock_counts_every_minute(start: datetime, duration: str, expected: datetime) -> None:
    clock = clock_for(CRASH, WORK_MSK)
    assert clock.add(start, parse_duration(duration)) == expected
    assert clock.elapsed_minutes(start, expected) == parse_duration(duration).minutes


def test_elapsed_counts_working_minutes_on_a_work_clock_and_all_minutes_round_the_clock() -> None:
    start, end = msk(2026, 11, 27, 17, 30), msk(2026, 11, 30, 9, 45)
    assert clock_for(NORMAL, WORK_MSK).elapsed_minutes(start, end) == 75
    assert clock_for(CRASH, WORK_MSK).elapsed_minutes(start, end) == (end - start).total_seconds() / 60
    assert clock_for(NORMAL, WORK_MSK).elapsed_minutes(end, start) == 0
    assert clock_for(CRASH, WORK_MSK).elapsed_minutes(end, start) == 0
    assert not clock_for(CRASH, WORK_MSK).counts_working_time_only
    assert clock_for(NORMAL, WORK_MSK).counts_working_time_only
    assert not clock_for(NORMAL, EVERY_MINUTE_MSK).counts_working_time_only


def test_a_dst_day_has_its_real_number_of_minutes() -> None:
    whole_days = WorkingCalendar(BERLIN, None, parse_holidays("2026-01-01"))
    assert whole_days.day_minutes(date(2026, 3, 29)) == 23 * 60
    assert whole_days.day_minutes(date(2026, 10, 25)) == 25 * 60
    assert whole_days.working_minutes(berlin(2026, 3, 28, 12, 0), berlin(2026, 3, 30, 12, 0)) == 47 * 60
    night = WorkingCalendar(BERLIN, parse_work_hours("Sun 00:00-06:00"))
    assert night.day_minutes(date(2026, 3, 29)) == 5 * 60
    assert night.day_minutes(date(2026, 10, 25)) == 7 * 60


def test_a_year_of_working_minutes_matches_the_weekdays() -> None:
    # 2026 has 261 weekdays; 4 November and 31 December are holidays.
    assert WORK_MSK.working_minutes(msk(2026, 1, 1), msk(2027, 1, 1)) == 259 * 9 * 60


def test_a_calendar_without_working_time_stops_at_the_horizon() -> None:
    first = date(2026, 1, 1)
    never = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-18:00"),
                            frozenset(first + timedelta(days=i) for i in range(6 * 366)))
    clock = clock_for(NORMAL, never)
    with pytest.raises(NoWorkingTime):
        clock.add(msk(2026, 2, 2, 10, 0), Duration(4, "h"))
    with pytest.raises(NoWorkingTime):
        clock.add(msk(2026, 2, 2, 10, 0), Duration(1, "d"))
    assert never.next_working_instant(msk(2026, 2, 2, 10, 0)) is None
    state = deadline_state(Facts(DEFAULT_STATUS, msk(2026, 2, 2, 10, 0), "normal"), NORMAL, never)
    assert state.running == () and state.deadline is None and state.waiting_on == WAITING_CONTRACTOR


moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),  # noqa: DTZ001 - hypothesis bounds are naive
                       timezones=st.just(UTC))


@hypothesis_settings(max_examples=150, deadline=None)
@given(moments, st.integers(min_value=1, max_value=60 * 24 * 40), st.sampled_from([WORK_MSK, LUNCH_MSK, WORK_BERLIN]))
def test_adding_working_minutes_is_the_inverse_of_counting_them(start: datetime, minutes: int,
                                                                calendar: WorkingCalendar) -> None:
    clock = clock_for(NORMAL, calendar)
    end = clock.add_minutes(start, minutes)
    assert clock.elapsed_minutes(start, end) == pytest.approx(minutes)
    assert clock.elapsed_minutes(start, end - timedelta(seconds=1)) < minutes


@hypothesis_settings(max_examples=150, deadline=None)
@given(moments, st.integers(min_value=0, max_value=60 * 24 * 120), st.sampled_from([WORK_MSK, WORK_BERLIN]))
def test_counting_a_long_span_equals_counting_it_day_by_day(start: datetime, minutes: int,
                                                            calendar: WorkingCalendar) -> None:
    end = start + timedelta(minutes=minutes)
    cuts = [start]
    day = start.astimezone(calendar.tz).date() + timedelta(days=1)
    while (midnight := calendar.instant(datetime.combine(day, datetime.min.time()))) < end:
        cuts.append(midnight)
        day += timedelta(days=1)
    cuts.append(end)
    by_day = sum(calendar.working_minutes(a, b) for a, b in itertools.pairwise(cuts))
    assert calendar.working_minutes(start, end) == pytest.approx(by_day)


@hypothesis_settings(max_examples=150, deadline=None)
@given(moments, st.integers(min_value=1, max_value=30), st.sampled_from([WORK_MSK, LUNCH_MSK, WORK_BERLIN]))
def test_a_working_day_later_is_in_working_time_and_n_working_days_on(start: datetime, days: int,
                                                                      calendar: WorkingCalendar) -> None:
    end = clock_for(NORMAL, calendar).add(start, Duration(days, "d"))
    begin = calendar.next_working_instant(start)
    assert calendar.is_working(end) or end == calendar.windows(end.astimezone(calendar.tz).date())[-1][1]
    first, last = begin.astimezone(calendar.tz).date(), end.astimezone(calendar.tz).date()
    between = [first + timedelta(days=i) for i in range(1, (last - first).days + 1)]
    assert sum(calendar.is_working_day(day) for day in between) == days


# ----- facts --------------------------------------------------------------------------------

CREATED = msk(2026, 11, 26, 10, 0)      # a Thursday
NEW = Facts(DEFAULT_STATUS, CREATED, "normal")


def test_a_status_change_or_news_moves_last_news_and_sets_first_news_once() -> None:
    first = record_change(NEW, at=msk(2026, 11, 26, 11, 0), status=DEFAULT_STATUS, source="mail", news=True)
    assert (first.first_news_at, first.last_news_at) == (msk(2026, 11, 26, 11, 0), msk(2026, 11, 26, 11, 0))
    second = record_change(first, at=msk(2026, 11, 27, 9, 0), status=STATUS_ACCEPTED, source="web", news=False)
    assert (second.first_news_at, second.last_news_at) == (msk(2026, 11, 26, 11, 0), msk(2026, 11, 27, 9, 0))
    assert second.status == STATUS_ACCEPTED


def test_a_person_note_outside_clarification_changes_no_facts() -> None:
    assert record_change(NEW, at=msk(2026, 11, 26, 12, 0), status=DEFAULT_STATUS, source="web", news=False) == NEW


def test_late_mail_moves_nothing_back() -> None:
    facts = record_change(NEW, at=msk(2026, 11, 27, 12, 0), status=STATUS_ACCEPTED, source="mail", news=True)
    late = record_change(facts, at=msk(2026, 11, 26, 15, 0), status=STATUS_ACCEPTED, source="mail", news=True)
    assert late.last_news_at == msk(2026, 11, 27, 12, 0)
    assert late.first_news_at == msk(2026, 11, 26, 15, 0)     # the contractor had reacted earlier
    assert late.status == STATUS_ACCEPTED and late.pauses == ()


def test_clarification_is_entered_answered_by_a_person_and_left_as_a_pause() -> None:
    t1, t2, t3, t4 = (msk(2026, 11, 30, 12, 0), msk(2026, 11, 30, 13, 0), msk(2026, 12, 1, 10, 0),
                      msk(2026, 12, 2, 15, 0))
    entered = record_change(NEW, at=t1, status=STATUS_CLARIFY, source="mail", news=True)
    assert (entered.clarify_since, entered.clarify_answered) == (t1, False)
    mail_again = record_change(entered, at=t2, status=STATUS_CLARIFY, source="mail", news=True)
    assert not mail_again.clarify_answered and mail_again.last_news_at == t2
    for source in ("web", "api", "telegram"):
        assert record_change(mail_again, at=t3, status=STATUS_CLARIFY, source=source, news=False).clarify_answered
    assert not record_change(mail_again, at=t3, status=STATUS_CLARIFY, source="outbox", news=False).clarify_answered
    answered = record_change(mail_again, at=t3, status=STATUS_CLARIFY, source="web", news=False)
    left = record_change(answered, at=t4, status=STATUS_ACCEPTED, source="mail", news=True)
    assert left.pauses == ((t1, t4),)
    assert (left.clarify_since, left.clarify_answered, left.last_news_at) == (None, False, t4)
    again = record_change(left, at=t4 + timedelta(hours=1), status=STATUS_CLARIFY, source="web", news=False)
    assert (again.clarify_since, again.clarify_answered) == (t4 + timedelta(hours=1), False)


def test_a_late_change_never_makes_a_negative_pause() -> None:
    entered = record_change(NEW, at=msk(2026, 11, 30, 12, 0), status=STATUS_CLARIFY, source="mail", news=True)
    left = record_change(entered, at=msk(2026, 11, 30, 11, 0), status=STATUS_ACCEPTED, source="web", news=False)
    assert left.pauses == ((msk(2026, 11, 30, 12, 0), msk(2026, 11, 30, 12, 0)),)


HISTORY = [
    (CREATED, DEFAULT_STATUS, "web"),
    (msk(2026, 11, 26, 11, 30), DEFAULT_STATUS, "mail"),
    (msk(2026, 11, 30, 12, 0), STATUS_CLARIFY, "mail"),
    (msk(2026, 11, 30, 14, 0), STATUS_CLARIFY, "mail"),
    (msk(2026, 12, 1, 10, 0), STATUS_CLARIFY, "telegram"),
    (msk(2026, 12, 2, 15, 0), STATUS_ACCEPTED, "mail"),
    (msk(2026, 11, 29, 9, 0), STATUS_ACCEPTED, "mail"),          # late mail, applied last: history only
    (msk(2026, 12, 3, 9, 0), STATUS_ACCEPTED, "outbox"),
]


def test_facts_from_history_agree_with_recording_each_change() -> None:
    facts = NEW
    for at, status, source in HISTORY[1:]:
        facts = record_change(facts, at=at, status=status, source=source, news=source == "mail")
    rebuilt = facts_from_history(created_at=CREATED, level="normal", status=STATUS_ACCEPTED, history=HISTORY)
    assert rebuilt == facts
    assert rebuilt == Facts(STATUS_ACCEPTED, CREATED, "normal", first_news_at=msk(2026, 11, 26, 11, 30),
                            last_news_at=msk(2026, 12, 2, 15, 0),
                            pauses=((msk(2026, 11, 30, 12, 0), msk(2026, 12, 2, 15, 0)),))


def test_facts_from_history_keep_the_stored_fields() -> None:
    due, promised = msk(2026, 12, 11, 18, 0), msk(2026, 12, 4, 18, 0)
    facts = facts_from_history(created_at=CREATED, level="urgent", status=DEFAULT_STATUS, history=HISTORY[:1],
                               archived=True, due=due, promised=promised)
    assert facts == Facts(DEFAULT_STATUS, CREATED, "urgent", archived=True, due=due, promised=promised)


def test_an_imported_request_in_work_has_had_news_at_its_first_entry() -> None:
    facts = facts_from_history(created_at=CREATED, level="normal", status=STATUS_ACCEPTED,
                               history=[(msk(2026, 11, 27, 9, 0), STATUS_ACCEPTED, "import")])
    assert (facts.first_news_at, facts.last_news_at) == (msk(2026, 11, 27, 9, 0), msk(2026, 11, 27, 9, 0))
    clarify = facts_from_history(created_at=CREATED, level="normal", status=STATUS_CLARIFY, history=[])
    assert clarify.clarify_since == CREATED and clarify.first_news_at == CREATED


def test_the_current_status_wins_over_a_history_that_ends_elsewhere() -> None:
    facts = facts_from_history(created_at=CREATED, level="normal", status=STATUS_CLARIFY, history=HISTORY[:2])
    assert facts.status == STATUS_CLARIFY and facts.clarify_since == msk(2026, 11, 26, 11, 30)


# ----- deadlines ----------------------------------------------------------------------------

def state_of(facts: Facts, level: ServiceLevel = NORMAL, calendar: WorkingCalendar = WORK_MSK):
    return deadline_state(facts, level, calendar)


def running(facts: Facts, level: ServiceLevel = NORMAL, calendar: WorkingCalendar = WORK_MSK) -> dict[str, datetime]:
    return {item.kind: item.at for item in state_of(facts, level, calendar).running}


NEWS = replace(NEW, status=STATUS_ACCEPTED, first_news_at=msk(2026, 11, 26, 11, 30),
               last_news_at=msk(2026, 11, 27, 16, 0))
IN_CLARIFY = replace(NEWS, status=STATUS_CLARIFY, clarify_since=msk(2026, 11, 30, 12, 0),
                     last_news_at=msk(2026, 11, 30, 12, 0))
PAUSED = replace(NEWS, last_news_at=msk(2026, 12, 2, 15, 0),
                 pauses=((msk(2026, 11, 30, 12, 0), msk(2026, 12, 2, 15, 0)),))   # 21 working hours


@pytest.mark.parametrize(("facts", "level", "calendar", "expected", "waiting"), [
    # not answered yet: accept runs from creation; resolve from creation (Thu 10:00 + 5 working days)
    (NEW, NORMAL, WORK_MSK, {"accept": msk(2026, 11, 26, 14, 0), "resolve": msk(2026, 12, 3, 10, 0)}, "contractor"),
    # once there is news: update from the last news, accept is met
    (NEWS, NORMAL, WORK_MSK, {"update": msk(2026, 11, 30, 16, 0), "resolve": msk(2026, 12, 3, 10, 0)}, "contractor"),
    # an engineer's due overrides resolve, earlier or later
    (replace(NEWS, due=msk(2026, 11, 27, 12, 0)), NORMAL, WORK_MSK,
     {"update": msk(2026, 11, 30, 16, 0), "resolve": msk(2026, 11, 27, 12, 0)}, "contractor"),
    (replace(NEWS, due=msk(2026, 12, 25, 18, 0)), NORMAL, WORK_MSK,
     {"update": msk(2026, 11, 30, 16, 0), "resolve": msk(2026, 12, 25, 18, 0)}, "contractor"),
    # a promise runs beside them
    (replace(NEWS, promised=msk(2026, 11, 28, 23, 59, 59)), NORMAL, WORK_MSK,
     {"update": msk(2026, 11, 30, 16, 0), "resolve": msk(2026, 12, 3, 10, 0),
      "promise": msk(2026, 11, 28, 23, 59, 59)}, "contractor"),
    # in clarification only clarify runs, and we are waited on
    (IN_CLARIFY, NORMAL, WORK_MSK, {"clarify": msk(2026, 12, 1, 12, 0)}, "us"),
    (replace(IN_CLARIFY, promised=msk(2026, 11, 30, 13, 0), due=msk(2026, 11, 30, 13, 0)), NORMAL, WORK_MSK,
     {"clarify": msk(2026, 12, 1, 12, 0)}, "us"),
    # answered by a person: nothing runs, the contractor is waited on
    (replace(IN_CLARIFY, clarify_answered=True), NORMAL, WORK_MSK, {}, "contractor"),
    # a level without clarify sets no clarify deadline
    (IN_CLARIFY, URGENT, WORK_MSK, {}, "us"),
    # after clarification: resolve moved by the working time spent in it (21 h), update from leaving it
    (PAUSED, NORMAL, WORK_MSK, {"update": msk(2026, 12, 3, 15, 0), "resolve": msk(2026, 12, 7, 13, 0)}, "contractor"),
    # ... and a due as well: Fri 18:00 + 21 working hours
    (replace(PAUSED, due=msk(2026, 12, 11, 18, 0)), NORMAL, WORK_MSK,
     {"update": msk(2026, 12, 3, 15, 0), "resolve": msk(2026, 12, 16, 12, 0)}, "contractor"),
    # final or archived: nothing runs, nobody is waited on
    (replace(NEWS, status=STATUS_DONE), NORMAL, WORK_MSK, {}, "nobody"),
    (replace(NEWS, status=STATUS_REJECTED, promised=msk(2026, 11, 28, 12, 0)), NORMAL, WORK_MSK, {}, "nobody"),
    (replace(IN_CLARIFY, archived=True), NORMAL, WORK_MSK, {}, "nobody"),
    (replace(NEW, archived=True), NORMAL, WORK_MSK, {}, "nobody"),
    # round the clock: the weekend and the night count
    (NEW, CRASH, WORK_MSK, {"accept": msk(2026, 11, 26, 10, 15), "resolve": msk(2026, 11, 26, 18, 0)}, "contractor"),
    (NEWS, CRASH, WORK_MSK, {"update": msk(2026, 11, 27, 17, 0), "resolve": msk(2026, 11, 26, 18, 0)}, "contractor"),
    (PAUSED, CRASH, WORK_MSK, {"update": msk(2026, 12, 2, 16, 0),
                               "resolve": msk(2026, 11, 26, 18, 0) + timedelta(hours=51)}, "contractor"),
    # the back-compat level: accept and update only
    (NEW, parse_levels(None, 60)["normal"], WORK_MSK, {"accept": msk(2026, 11, 26, 11, 0)}, "contractor"),
    (NEWS, parse_levels(None, 60)["normal"], WORK_MSK, {"update": msk(2026, 11, 27, 17, 0)}, "contractor"),
    # a level with no durations at all
    (NEW, ServiceLevel("none", "Без сроков"), WORK_MSK, {}, "contractor"),
])
def test_running_deadlines_follow_the_spec_table(facts: Facts, level: ServiceLevel, calendar: WorkingCalendar,
                                                 expected: dict[str, datetime], waiting: str) -> None:
    state = state_of(facts, level, calendar)
    assert {item.kind: item.at for item in state.running} == expected
    assert state.waiting_on == waiting
    if expected:
        first = min(expected.items(), key=lambda item: (item[1], KINDS.index(item[0])))
        assert (state.kind, state.deadline) == first
    else:
        assert (state.kind, state.deadline) == (None, None)


def test_news_moves_the_update_deadline() -> None:
    before = running(NEWS)["update"]
    later = record_change(NEWS, at=msk(2026, 11, 30, 11, 0), status=STATUS_ACCEPTED, source="mail", news=True)
    assert running(later)["update"] == msk(2026, 12, 1, 11, 0) > before


def test_any_news_or_status_change_meets_accept() -> None:
    assert "accept" in running(NEW)
    by_mail = record_change(NEW, at=msk(2026, 11, 26, 10, 30), status=DEFAULT_STATUS, source="mail", news=True)
    by_hand = record_change(NEW, at=msk(2026, 11, 26, 10, 30), status=STATUS_ACCEPTED, source="web", news=False)
    for facts in (by_mail, by_hand):
        assert "accept" not in running(facts)
        assert running(facts)["update"] == msk(2026, 11, 27, 10, 30)


def test_running_deadlines_are_sorted_by_time_then_kind_order() -> None:
    same = msk(2026, 12, 3, 10, 0)
    state = state_of(replace(NEW, due=same, promised=same))
    assert [item.kind for item in state.running] == ["accept", "resolve", "promise"]
    assert state.running[1:] == (Deadline("resolve", same), Deadline("promise", same))


def test_breached_only_after_the_deadline_and_overdue_counted_in_the_level_clock() -> None:
    state = state_of(NEW)          # accept Thu 14:00
    assert not state.breached(msk(2026, 11, 26, 14, 0))
    assert state.breached(msk(2026, 11, 26, 14, 0, 1))
    now = msk(2026, 11, 27, 10, 0)
    assert overdue_minutes(state, now, NORMAL, WORK_MSK) == 4 * 60 + 60        # Thu 14-18 and Fri 9-10
    assert overdue_minutes(state, msk(2026, 11, 26, 13, 0), NORMAL, WORK_MSK) == 0
    crash = state_of(NEW, CRASH)
    assert overdue_minutes(crash, now, CRASH, WORK_MSK) == (now - msk(2026, 11, 26, 10, 15)).total_seconds() / 60
    nothing = state_of(replace(NEW, status=STATUS_DONE))
    assert not nothing.breached(now) and overdue_minutes(nothing, now, NORMAL, WORK_MSK) == 0


def test_passed_lists_every_passed_deadline() -> None:
    state = state_of(replace(NEWS, promised=msk(2026, 11, 28, 12, 0)))
    assert [item.kind for item in state.passed(msk(2026, 12, 1, 9, 0))] == ["promise", "update"]
    assert state.passed(msk(2026, 11, 27, 9, 0)) == ()


def test_a_whole_request_from_creation_to_done() -> None:
    facts = NEW
    steps = [
        (msk(2026, 11, 26, 11, 30), DEFAULT_STATUS, "mail", True, "update", msk(2026, 11, 27, 11, 30), WAITING_CONTRACTOR),
        (msk(2026, 11, 27, 16, 0), STATUS_ACCEPTED, "mail", True, "update", msk(2026, 11, 30, 16, 0), WAITING_CONTRACTOR),
        (msk(2026, 11, 30, 12, 0), STATUS_CLARIFY, "mail", True, "clarify", msk(2026, 12, 1, 12, 0), WAITING_US),
        (msk(2026, 12, 1, 10, 0), STATUS_CLARIFY, "web", False, None, None, WAITING_CONTRACTOR),
        (msk(2026, 12, 2, 15, 0), STATUS_ACCEPTED, "mail", True, "update", msk(2026, 12, 3, 15, 0), WAITING_CONTRACTOR),
        (msk(2026, 12, 4, 12, 0), STATUS_DONE, "mail", True, None, None, WAITING_NOBODY),
    ]
    for at, status, source, news, kind, deadline, waiting in steps:
        facts = record_change(facts, at=at, status=status, source=source, news=news)
        state = state_of(facts)
        assert (state.kind, state.deadline, state.waiting_on) == (kind, deadline, waiting), at
    reopened = record_change(facts, at=msk(2026, 12, 7, 9, 0), status=STATUS_ACCEPTED, source="web", news=False)
    assert running(reopened) == {"update": msk(2026, 12, 8, 9, 0), "resolve": msk(2026, 12, 7, 13, 0)}


def test_levels_parse_the_spec_example_verbatim() -> None:
    assert json.loads(SPEC_LEVELS_JSON)["crash"]["clock"] == "24x7"
    assert parse_levels(SPEC_LEVELS_JSON, 5) == LEVELS
