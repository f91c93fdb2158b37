"""Promises, future tense and deferrals in parse_mail (SPEC §3): the corpus cases and the rules they rest on."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.mail.parse import contractor_messages, detect_status, parse_mail
from functions.model import DEFAULT_STATUS, STATUS_ACCEPTED, STATUS_DONE, STATUS_REJECTED, normalize_number
from functions.workhours import WorkingCalendar

MSK = ZoneInfo("Europe/Moscow")
PLAIN = WorkingCalendar(MSK)  # OMIS_WORK_HOURS and OMIS_HOLIDAYS unset, as the corpus says
DATA = Path(__file__).resolve().parents[1] / "data"
RECEIVED = datetime(2026, 11, 25, 8, 15, tzinfo=timezone.utc)  # Wednesday 11:15 in Moscow


def load_cases(name: str) -> dict[str, dict]:
    return {case["id"]: case for case in json.loads((DATA / name).read_text(encoding="utf-8"))["cases"]}


PROMISE_CASES = load_cases("mail-promises-public.json")
EXTRA_CASES = load_cases("mail-promises-extra.json")


def received_of(mail: dict) -> datetime:
    return datetime.fromisoformat(mail["received"].replace("Z", "+00:00"))


def after_one_pass(case: dict) -> dict[str, dict]:
    """Apply a case's mail in received order as sync does: the last status and the last promise stay."""
    state = {normalize_number(n): {"status": DEFAULT_STATUS, "promised": None, "mails": 0, "comment": ""}
             for n in case["requests"]}
    for mail in sorted(case["mail"], key=lambda m: m["received"]):
        parsed = parse_mail(mail["subject"], mail["body"], received=received_of(mail), tz=MSK, calendar=PLAIN)
        for number in parsed.numbers:
            key = normalize_number(number)
            if key not in state:
                continue
            request = state[key]
            request["mails"] += 1
            request["comment"] = parsed.comment
            request["status"] = parsed.statuses[key] or request["status"]
            request["promised"] = parsed.promises[key] or request["promised"]
    return state


def check_case(case: dict) -> None:
    state = after_one_pass(case)
    for number, expect in case["expect"].items():
        request = state[normalize_number(number)]
        assert request["mails"], f"{case['id']}: no mail names {number}"
        if "status" in expect:
            assert request["status"] == expect["status"], case["id"]
        if "promised_local" in expect:
            promised = request["promised"]
            got = None if promised is None else promised.astimezone(MSK).replace(tzinfo=None).isoformat()
            assert got == expect["promised_local"], case["id"]
        if "comment_contains" in expect:
            assert expect["comment_contains"] in request["comment"], case["id"]
        if "history_mail_entries" in expect:
            assert request["mails"] == expect["history_mail_entries"], case["id"]


@pytest.mark.parametrize("case_id", list(PROMISE_CASES))
def test_public_promise_corpus_case(case_id: str) -> None:
    check_case(PROMISE_CASES[case_id])


@pytest.mark.parametrize("case_id", list(EXTRA_CASES))
def test_project_promise_corpus_case(case_id: str) -> None:
    check_case(EXTRA_CASES[case_id])


def test_corpus_files_hold_cases() -> None:
    assert len(PROMISE_CASES) >= 15 and len(EXTRA_CASES) >= 10


# --- where a promise belongs ---------------------------------------------------------------------


def parse(subject: str, body: str, **kwargs) -> object:
    return parse_mail(subject, body, received=RECEIVED, tz=MSK, calendar=PLAIN, **kwargs)


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK).astimezone(timezone.utc)


def test_promise_of_a_sentence_with_numbers_goes_to_those_numbers() -> None:
    parsed = parse("Статус", "Заявка №701 выполнена. По заявке №702 приедем завтра.")
    assert parsed.promises == {"701": None, "702": msk(2026, 11, 26, 23, 59, 59)}
    assert parsed.general_promise is None


def test_promise_without_numbers_goes_to_every_number_of_the_mail() -> None:
    parsed = parse("RE: Заявки 801, 802", "Работы выполним до пятницы.")
    friday = msk(2026, 11, 27, 23, 59, 59)
    assert parsed.promises == {"801": friday, "802": friday}
    assert parsed.general_promise == friday


def test_last_promising_sentence_of_the_mail_wins() -> None:
    parsed = parse("RE: Заявка 901", "Заявку 901 закроем до пятницы. Поправка: сделаем завтра к 12:00. Спасибо.")
    assert parsed.promises == {"901": msk(2026, 11, 26, 12, 0)}
    earlier_general = parse("RE: Заявка 902", "Сделаем до пятницы. Заявку 902 закроем завтра.")
    assert earlier_general.promises == {"902": msk(2026, 11, 26, 23, 59, 59)}


def test_subject_promises_nothing() -> None:
    parsed = parse("Заявка 903 — выполним до пятницы", "Добрый день, материалы получили.")
    assert parsed.promises == {"903": None}


def test_without_received_time_no_promise_is_read() -> None:
    parsed = parse_mail("RE: Заявка 904", "Выполним до пятницы.")
    assert parsed.promises == {"904": None} and parsed.general_promise is None


def test_promise_is_read_from_the_new_part_only() -> None:
    body = "Приняли.\n\n-----Исходное сообщение-----\nЗаявка 905: выполним до 05.12."
    assert parse("RE: Заявка 905", body).promises == {"905": None}
    unique = parse("RE: Заявка 906", "старое", unique_body="Сделаем к 15:00.\n-- \nИван, до 18:00 на связи")
    assert unique.promises == {"906": msk(2026, 11, 25, 15, 0)}


def test_tz_defaults_to_the_calendars_zone() -> None:
    parsed = parse_mail("RE: Заявка 907", "Будем к 15:00.", received=RECEIVED, calendar=PLAIN)
    assert parsed.promises == {"907": msk(2026, 11, 25, 15, 0)}


def test_contractor_message_carries_the_promise() -> None:
    parsed = parse("RE: Заявка 908", "Выполним до 05.12.2026.")
    (message,) = contractor_messages(parsed, received=RECEIVED, author="Иван", message_id="<m>", subject="RE")
    assert message.promised == msk(2026, 12, 5, 23, 59, 59)


# --- future tense is no status; a refusal bounded in time is a deferral -------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Заявка будет выполнена завтра.",
        "Выполним до пятницы.",
        "Завершим работы к среде.",
        "Закончим к концу недели.",
        "Сделаем завтра.",
        "Приступим к работам в понедельник.",
        "Возьмём в работу завтра.",
        "Примем в работу после согласования.",
        "Работы, скорее всего, будут завершены к пятнице.",
        "Неисправность устраним сегодня.",
        "Приступаем к работам завтра.",
        "Берём в работу с понедельника.",
    ],
)
def test_future_tense_is_no_status(text: str) -> None:
    assert detect_status(text) is None


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Заявка выполнена.", STATUS_DONE),
        ("Работы завершены, акт направим завтра.", STATUS_DONE),
        ("Приступили к работам.", STATUS_ACCEPTED),
        ("Берём в работу, выполним до пятницы.", STATUS_ACCEPTED),
        ("Заявку приняли в работу 20.11.", STATUS_ACCEPTED),
    ],
)
def test_past_and_present_stay_statuses(text: str, status: str) -> None:
    assert detect_status(text) == status


@pytest.mark.parametrize(
    "text",
    [
        "Приступить сможем не раньше 05.12.",
        "До понедельника взять не можем.",
        "Раньше среды не сможем выполнить.",
        "Выполнить не сможем раньше 05.12.",
        "Не можем взять заявку в работу до понедельника.",
        "Не сможем выполнить в течение 3 дней, бригада на другом объекте.",
    ],
)
def test_refusal_bounded_in_time_is_a_deferral(text: str) -> None:
    assert detect_status(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "Взять в работу не можем: объект не наш.",
        "Не сможем выполнить, отказ.",
        "Не можем выполнить до пятницы, отказываемся от заявки.",
        "Заявка отклонена 24.11.",
    ],
)
def test_refusal_without_bound_or_with_a_plain_refusal_rejects(text: str) -> None:
    assert detect_status(text) == STATUS_REJECTED


def test_deferral_keeps_its_text_as_the_comment() -> None:
    parsed = parse("RE: Заявка 909", "До понедельника взять не можем, бригада на другом объекте.")
    assert parsed.statuses == {"909": None} and parsed.promises == {"909": None}
    assert "бригада на другом объекте" in parsed.comment


# --- robustness ------------------------------------------------------------------------------------

PIECES = st.sampled_from([
    "заявка", "№", "101", "AB-17", " ", "\n", ", ", ". ", "?", "не ", "будет ", "выполним", "до", "к", "с", "от",
    "пятницы", "05.12", "10:00", "завтра", "в течение", "3", "рабочих дней", "конца недели", "если", "-- \n",
    "не можем выполнить", "приступаем", "не раньше", "выполнена", "9:00–18:00", "числа", "декабря",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.text() | st.lists(PIECES | st.text(max_size=3), max_size=60).map("".join),
       minutes=st.integers(min_value=0, max_value=60 * 24 * 800))
def test_parse_with_promises_never_raises(body: str, minutes: int) -> None:
    received = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=minutes)
    parsed = parse_mail("RE: Заявка 1", body, received=received, tz=MSK, calendar=PLAIN)
    assert set(parsed.promises) == {normalize_number(n) for n in parsed.numbers}
    assert all(p is None or p.tzinfo is timezone.utc for p in [*parsed.promises.values(), parsed.general_promise])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("Заявка №1 выполним до 05.12. " * 33_000, id="sentences"),
        pytest.param("не можем выполнить до 05.12 " * 36_000, id="refusals"),
        pytest.param("приступаем завтра " * 55_000, id="present-starts"),
    ],
)
def test_huge_mail_with_promises_is_read_in_linear_time(body: str) -> None:
    started = time.perf_counter()
    parse_mail(body[:1000], body, received=RECEIVED, tz=MSK, calendar=PLAIN)
    assert time.perf_counter() - started < 10
