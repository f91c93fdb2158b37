"""Promised deadlines in a contractor's sentence (SPEC §3 «Promises»): what counts and which instant."""
from __future__ import annotations

import time as clock
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.mail.promises import find_promise, names_time
from functions.workhours import WorkingCalendar, parse_holidays, parse_work_hours

MSK = ZoneInfo("Europe/Moscow")
PLAIN = WorkingCalendar(MSK)
OFFICE = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-18:00"))
WED = "2026-11-25 11:15"  # a Wednesday; the mail arrives at 08:15 UTC


def local(text: str) -> datetime:
    """Read «2026-11-25 11:15[:ss]» as a Moscow time."""
    return datetime.fromisoformat(text).replace(tzinfo=MSK)


def promise(sentence: str, received: str = WED, calendar: WorkingCalendar = PLAIN) -> datetime | None:
    found = find_promise(sentence, received=local(received).astimezone(timezone.utc), tz=MSK, calendar=calendar)
    if found is not None:
        assert found.utcoffset() == timezone.utc.utcoffset(None)  # always an aware UTC instant
    return None if found is None else found.astimezone(MSK).replace(tzinfo=None)


PROMISES = [
    # dates: the end of the day; a time with them; without a year the next occurrence from the received day
    ("Выполним до 05.12.2026.", WED, "2026-12-05 23:59:59"),
    ("Выполним до 05.12.", WED, "2026-12-05 23:59:59"),
    ("Выполним до 5.12.26.", WED, "2026-12-05 23:59:59"),
    ("Приедем 5 декабря.", WED, "2026-12-05 23:59:59"),
    ("Завершим 5 дек. 2026 г.", WED, "2026-12-05 23:59:59"),
    ("Сделаем к 5-му декабря.", WED, "2026-12-05 23:59:59"),
    ("Срок выполнения — 10.12.2026.", WED, "2026-12-10 23:59:59"),
    ("Ориентировочно 15 декабря.", WED, "2026-12-15 23:59:59"),
    ("Плановая дата завершения — 07.12.2026 г.", WED, "2026-12-07 23:59:59"),
    ("Выполним не позднее 05.12.", WED, "2026-12-05 23:59:59"),
    ("Выполним 05.12 к 15:00.", WED, "2026-12-05 15:00:00"),
    ("Выполним до 10:00 05.12.", WED, "2026-12-05 10:00:00"),
    ("Приедем 3 января.", WED, "2027-01-03 23:59:59"),
    ("Выполним до 05.01.", "2026-12-30 12:00", "2027-01-05 23:59:59"),
    ("Выполним до 30.12.", "2026-12-30 12:00", "2026-12-30 23:59:59"),
    ("Выполним до 24.11.", WED, "2027-11-24 23:59:59"),
    ("Выполним до 29.02.", WED, "2028-02-29 23:59:59"),
    ("Выполним до 20-го числа.", WED, "2026-12-20 23:59:59"),
    ("Сделаем до конца декабря.", WED, "2026-12-31 23:59:59"),
    ("Сделаем до конца месяца.", WED, "2026-11-30 23:59:59"),
    ("Сделаем до конца января.", "2026-12-30 12:00", "2027-01-31 23:59:59"),
    # weekdays: the next such day after the received day; the same weekday means next week's
    ("Закончим до пятницы.", WED, "2026-11-27 23:59:59"),
    ("Приедем в понедельник.", WED, "2026-11-30 23:59:59"),
    ("Сделаем к среде.", WED, "2026-12-02 23:59:59"),
    ("Будем во вторник.", WED, "2026-12-01 23:59:59"),
    ("Выполним ко вторнику.", WED, "2026-12-01 23:59:59"),
    ("Приедем в субботу.", WED, "2026-11-28 23:59:59"),
    ("Сделаем до воскресенья.", WED, "2026-11-29 23:59:59"),
    ("Сделаем до пятницы.", "2026-11-27 10:00", "2026-12-04 23:59:59"),
    ("Приедем в следующую пятницу.", WED, "2026-12-04 23:59:59"),
    ("Будем в четверг к 12:00.", WED, "2026-11-26 12:00:00"),
    ("Сделаем до пт.", WED, "2026-11-27 23:59:59"),
    # today, tomorrow, the day after: the end of that day, or the time given, even if it has passed
    ("Сделаем сегодня.", WED, "2026-11-25 23:59:59"),
    ("Приедем завтра.", WED, "2026-11-26 23:59:59"),
    ("Приедем послезавтра.", WED, "2026-11-27 23:59:59"),
    ("Сделаем сегодня к 10:00.", WED, "2026-11-25 10:00:00"),
    ("Приедем завтра в 9 утра.", WED, "2026-11-26 09:00:00"),
    ("Бригада приедет завтра к 10:00.", WED, "2026-11-26 10:00:00"),
    ("Приедем сегодня-завтра.", WED, "2026-11-26 23:59:59"),
    ("Бригада будет у вас в четверг, 26.11, к 9:00.", WED, "2026-11-26 09:00:00"),  # one day named twice
    ("Работы завершим, по заявке 124 — завтра до обеда.", WED, "2026-11-26 23:59:59"),
    # a time alone: that time today, or tomorrow once it has passed
    ("Будем к 15:00.", WED, "2026-11-25 15:00:00"),
    ("Будем к 10:30.", WED, "2026-11-26 10:30:00"),
    ("Будем к 10 часам.", WED, "2026-11-26 10:00:00"),
    ("Бригада будет на объекте в 14:00.", WED, "2026-11-25 14:00:00"),
    ("Будем в 3 часа дня.", WED, "2026-11-25 15:00:00"),
    ("Сделаем к 15.00.", WED, "2026-11-25 15:00:00"),
    ("Будем к15-00.", WED, "2026-11-25 15:00:00"),
    ("Сделаем до 24:00.", WED, "2026-11-25 23:59:59"),
    ("Будем к 11:15.", WED, "2026-11-25 11:15:00"),
    # the end of the day and of the week
    ("Сделаем к концу дня.", WED, "2026-11-25 23:59:59"),
    ("Сделаем завтра до конца дня.", WED, "2026-11-26 23:59:59"),
    ("Закроем к концу недели.", WED, "2026-11-27 23:59:59"),
    ("Закроем к концу недели.", "2026-11-27 10:00", "2026-11-27 23:59:59"),
    ("Закроем к концу недели.", "2026-11-28 10:00", "2026-12-04 23:59:59"),
    ("Закроем до конца недели.", "2026-11-29 10:00", "2026-12-04 23:59:59"),
    ("Сделаем на этой неделе.", WED, "2026-11-27 23:59:59"),
    ("Сделаем на следующей неделе.", WED, "2026-12-04 23:59:59"),
    ("Сделаем на следующей неделе.", "2026-11-29 10:00", "2026-12-04 23:59:59"),
    ("Сделаем до конца следующей недели.", WED, "2026-12-04 23:59:59"),
    # within N hours or days: the received time plus N hours or N × 24 hours
    ("Заявка будет выполнена в течение 3 дней.", WED, "2026-11-28 11:15:00"),
    ("Сделаем в течение 2 часов.", WED, "2026-11-25 13:15:00"),
    ("Сделаем в течение трёх дней.", WED, "2026-11-28 11:15:00"),
    ("Сделаем в течение двух часов.", WED, "2026-11-25 13:15:00"),
    ("Приедем через 2 часа.", WED, "2026-11-25 13:15:00"),
    ("Сделаем в течение суток.", WED, "2026-11-26 11:15:00"),
    ("Сделаем в течение часа.", WED, "2026-11-25 12:15:00"),
    ("Сделаем в течение получаса.", WED, "2026-11-25 11:45:00"),
    ("Сделаем в течение недели.", WED, "2026-12-02 11:15:00"),
    ("Выполним в течение 2-3 дней.", WED, "2026-11-28 11:15:00"),
    ("Работы займут 2 дня.", WED, "2026-11-27 11:15:00"),
    ("Выполним в течение 3 (трёх) рабочих дней.", WED, "2026-11-28 23:59:59"),
    # several times in one sentence: the latest that counts; a negation in another clause does not reach
    ("Приступим к работам завтра, закончим до пятницы.", WED, "2026-11-27 23:59:59"),
    ("Работы не завершены, выполним до пятницы.", WED, "2026-11-27 23:59:59"),
    ("Приехать завтра не получится, будем в пятницу.", WED, "2026-11-27 23:59:59"),
    ("Письмо от 28.11 получили, выполним до 05.12.", WED, "2026-12-05 23:59:59"),
    ("Выполним до пятницы, но не раньше среды.", WED, "2026-11-27 23:59:59"),
    ("Работы проведём с 01.12 по 05.12.", WED, "2026-12-05 23:59:59"),
    ("Ожидаем поставку в пятницу, выполним до понедельника.", WED, "2026-11-30 23:59:59"),
    ("Ожидаемый срок выполнения — 03.12.", WED, "2026-12-03 23:59:59"),
]


@pytest.mark.parametrize(("sentence", "received", "expected"), PROMISES)
def test_promise_yields_the_local_instant(sentence: str, received: str, expected: str) -> None:
    assert promise(sentence, received) == datetime.fromisoformat(expected)


NOT_PROMISES = [
    "До пятницы выполнить не успеем.",  # negated
    "Не успеем до пятницы.",
    "До пятницы, к сожалению, не успеем.",  # the negated commitment stands in another clause
    "Не можем приехать завтра.",
    "Если будет доступ — до пятницы.",  # conditional
    "Если будет доступ, сделаем до пятницы.",
    "При условии оплаты выполним до 05.12.",
    "Как только придут материалы, сделаем за 2 дня.",
    "Выполним в течение 3 дней после оплаты.",
    "Выполним в течение 5 дней с момента подписания акта.",
    "Возможно, приедем завтра.",  # uncertain
    "Выполним до пятницы?",  # a question
    "Просим предоставить доступ до пятницы.",  # our deadline, not a promise
    "Акт от 01.12 направим почтой.",  # a document's date
    "Письмо от 28.11 получили.",
    "Договор от 15.10.2026 продлён.",
    "Отчёт за 24.11 пришлём.",
    "С 01.12 приступим к работам.",  # a start date
    "Приступить сможем не раньше 05.12.",  # a deferral
    "Выполним не ранее 10.12.",
    "Приедем после 15:00.",
    "Работаем с 9:00 до 18:00.",  # working hours, not a promise
    "Бригада будет на месте 9:00–18:00.",
    "Заявка выполнена 20.11.",  # a date in the past tense
    "Работали до 18:00.",
    "Звонили в 14:00, никто не ответил.",
    "Сегодня бригада выехала на объект.",
    "Сделаем за 2 дня до начала работ.",
    "Выполним до 31.11.",  # no such date
    "Приедем к 25:00.",
    "Добрый день!",
    "Заявка принята в работу.",
    "Заявка ещё не выполнена, ждём поставку запчастей до пятницы.",  # what they wait for
    "Поставка материалов ожидается к пятнице.",
]


@pytest.mark.parametrize("sentence", NOT_PROMISES)
def test_not_a_promise(sentence: str) -> None:
    assert promise(sentence) is None


HOLIDAYS = parse_holidays("2026-12-31,2027-01-01..2027-01-08")


@pytest.mark.parametrize(
    ("sentence", "received", "calendar", "expected"),
    [
        # without working hours every day but a holiday works
        ("в течение 3 рабочих дней", WED, PLAIN, "2026-11-28 23:59:59"),
        ("в течение 3 рабочих дней", WED, WorkingCalendar(MSK, None, parse_holidays("2026-11-26")),
         "2026-11-29 23:59:59"),
        # with working hours: Thursday, Friday, then over the weekend to Monday
        ("в течение 3 рабочих дней", WED, OFFICE, "2026-11-30 23:59:59"),
        ("в течение 3 рабочих дней", WED, WorkingCalendar(MSK, OFFICE.hours, parse_holidays("2026-11-27")),
         "2026-12-01 23:59:59"),
        ("в течение рабочего дня", "2026-11-27 17:00", OFFICE, "2026-11-30 23:59:59"),
        ("за 2 раб. дня сделаем", "2026-11-28 10:00", OFFICE, "2026-12-01 23:59:59"),
        # over the New Year holidays
        ("в течение 5 рабочих дней", "2026-12-28 10:00", WorkingCalendar(MSK, OFFICE.hours, HOLIDAYS),
         "2027-01-13 23:59:59"),
        # plain days stay 24-hour days whatever the calendar
        ("в течение 3 дней", WED, OFFICE, "2026-11-28 11:15:00"),
    ],
)
def test_working_days_follow_the_team_calendar(
    sentence: str, received: str, calendar: WorkingCalendar, expected: str
) -> None:
    assert promise(f"Выполним {sentence}.", received, calendar) == datetime.fromisoformat(expected)


def test_instant_is_read_in_the_given_zone_across_a_clock_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    received = datetime(2026, 3, 28, 11, 0, tzinfo=timezone.utc)  # Saturday; clocks go forward that night
    found = find_promise("Приедем завтра к 10:00.", received=received, tz=berlin, calendar=WorkingCalendar(berlin))
    assert found == datetime(2026, 3, 29, 8, 0, tzinfo=timezone.utc)  # 10:00 CEST


def test_naive_received_time_is_utc() -> None:
    naive = datetime(2026, 11, 25, 8, 15)  # noqa: DTZ001 - the case under test
    assert find_promise("Будем через 2 часа.", received=naive, tz=MSK, calendar=PLAIN) == datetime(
        2026, 11, 25, 10, 15, tzinfo=timezone.utc
    )


def test_names_time_sees_bounds_but_not_document_dates() -> None:
    assert names_time("приступить сможем не раньше 05.12")
    assert names_time("до понедельника взять не можем")
    assert not names_time("акт от 01.12")
    assert not names_time("не можем выполнить работы в указанный срок")


@settings(max_examples=300, deadline=None)
@given(
    text=st.text()
    | st.lists(
        st.sampled_from(["до", "к", "с", "от", "не", "в течение", "05.12", "10:00", "пятницы", "завтра", "3", "рабочих",
                         "дней", "часа", "конца", "недели", "декабря", "2026", "выполним", "если", ",", "—", "-", "(",
                         ")", " ", "24:00", "29.02", "99.99", "числа", "следующей", "неделе", "?"]),
        max_size=30,
    ).map(" ".join),
    minutes=st.integers(min_value=0, max_value=60 * 24 * 366 * 3),
)
def test_find_promise_never_raises_and_answers_aware_utc(text: str, minutes: int) -> None:
    received = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=minutes)
    found = find_promise(text, received=received, tz=MSK, calendar=OFFICE)
    assert found is None or found.tzinfo is timezone.utc


@pytest.mark.parametrize(
    "sentence",
    [
        pytest.param("до 05.12 " * 110_000, id="dates"),
        pytest.param("выполним до пятницы, " * 50_000, id="clauses"),
        pytest.param("1 " * 500_000, id="digits"),
        pytest.param("конца " * 160_000, id="words"),
    ],
)
def test_huge_sentence_is_read_in_linear_time(sentence: str) -> None:
    started = clock.perf_counter()
    find_promise(sentence, received=datetime(2026, 11, 25, tzinfo=timezone.utc), tz=MSK, calendar=OFFICE)
    assert clock.perf_counter() - started < 10
