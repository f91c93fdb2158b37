"""Reading a contractor's reply (SPEC §3): numbers, statuses, positions, quoted history, comment."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.mail.parse import (
    STATUS_KEYWORDS,
    STATUS_RANK,
    ContractorMessage,
    ParsedMail,
    contractor_messages,
    detect_status,
    extract_numbers,
    new_text,
    parse_mail,
)
from functions.model import (
    DEFAULT_STATUS,
    MAIL_COMMENT_MAX,
    STATUS_ACCEPTED,
    STATUS_CLARIFY,
    STATUS_DONE,
    STATUS_REJECTED,
    normalize_number,
)

# The project's copy of shared/corpus (scripts/refresh_corpus.py brings it up to date).
CORPUS = Path(__file__).resolve().parents[1] / "data" / "mail-public.json"
CORPUS_CASES: dict[str, dict] = (
    {case["id"]: case for case in json.loads(CORPUS.read_text(encoding="utf-8"))["cases"]} if CORPUS.is_file() else {}
)
MISSING = "<corpus missing>"


def status_of(parsed: ParsedMail, number: str) -> str | None:
    return parsed.statuses[normalize_number(number)]


def position_of(parsed: ParsedMail, number: str) -> str | None:
    return parsed.positions[normalize_number(number)]


# --- the public corpus -----------------------------------------------------------------------


@pytest.mark.parametrize("case_id", list(CORPUS_CASES) or [MISSING])
def test_corpus_case_parses_as_expected(case_id: str) -> None:
    if case_id == MISSING:
        pytest.fail(f"The mail corpus is missing: expected {CORPUS}")
    case = CORPUS_CASES[case_id]
    known = {normalize_number(number) for number in case["requests"]}
    parsed = [(mail, parse_mail(mail["subject"], mail["body"])) for mail in case["mail"]]
    if case.get("unmatched"):
        for _, mail in parsed:
            assert not known & {normalize_number(n) for n in mail.numbers}
    for number, expect in case["expect"].items():
        key = normalize_number(number)
        naming = [(mail, p) for mail, p in parsed if key in {normalize_number(n) for n in p.numbers}]
        assert naming, f"{case_id}: no mail names {number}"
        # Several mails: the latest received decides (sync keeps older mail from moving the status).
        _, latest = max(naming, key=lambda pair: pair[0]["received"])
        want = None if expect["status"] == DEFAULT_STATUS else expect["status"]
        assert latest.statuses[key] == want, case_id
        if "comment_contains" in expect:
            assert expect["comment_contains"] in latest.comment
        if "history_position" in expect:
            assert latest.positions[key] == expect["history_position"]


# --- statuses: word forms, negation, future, questions -----------------------------------------


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Заявку №504 взяли в работу.", STATUS_ACCEPTED),
        ("Приняли заявку №504 в работу, выезд завтра.", STATUS_ACCEPTED),
        ("Заявку 504 берём в работу.", STATUS_ACCEPTED),
        ("Заявки 505 и 506 приняты.", STATUS_ACCEPTED),
        ("По заявке 507 приступаем к работе.", STATUS_ACCEPTED),
        ("Заявка 507 уже в работе.", STATUS_ACCEPTED),
        ("Принято, спасибо.", STATUS_ACCEPTED),
        ("Приняли.", STATUS_ACCEPTED),
        ("Прошу уточнить контактное лицо.", STATUS_CLARIFY),
        ("Уточните, пожалуйста, адрес.", STATUS_CLARIFY),
        ("По заявке 2601 не хватает данных.", STATUS_CLARIFY),
        ("Нужна дополнительная информация по доступу.", STATUS_CLARIFY),
        ("Работы по заявке 508 закончены.", STATUS_DONE),
        ("Неисправность по заявке 509 устранена.", STATUS_DONE),
        ("Мы выполнили заявку 509.", STATUS_DONE),
        ("Связь восстановлена.", STATUS_DONE),
        ("Всё сделано.", STATUS_DONE),
        ("Готово.", STATUS_DONE),
        ("Заявку 510 отклоняем.", STATUS_REJECTED),
        ("Отказываемся от заявки 511.", STATUS_REJECTED),
        ("Отказ по заявке 511: не наш объект.", STATUS_REJECTED),
        ("К сожалению, не сможем выполнить работы по заявке 503.", STATUS_REJECTED),
        ("Выполнить не можем: нет допуска.", STATUS_REJECTED),
    ],
)
def test_status_word_forms(text: str, status: str) -> None:
    assert detect_status(text) == status


@pytest.mark.parametrize(
    "text",
    [
        "Заявка №501: пока не приняли в работу.",
        "Работы по заявке 502 ещё не были выполнены.",
        "Работы еще не завершены.",
        "Заявка 2701 выполнена не полностью.",
        "Заявка не отклонена.",
        "Уточнение по заявке не требуется.",
        "Бригада ещё не приступила к работам.",
    ],
)
def test_negated_phrase_keeps_status(text: str) -> None:
    assert detect_status(text) is None


def test_cannot_do_is_rejection_not_negated_done() -> None:
    parsed = parse_mail("RE: Заявка 503", "Не можем выполнить заявку 503 в этом месяце.")
    assert status_of(parsed, "503") == STATUS_REJECTED


def test_promise_in_future_is_not_a_status() -> None:
    assert detect_status("Работы будут завершены завтра.") is None
    assert detect_status("Заявка 1601 должна быть выполнена к пятнице.") is None


def test_question_does_not_state_a_fact_but_still_asks_for_clarification() -> None:
    assert detect_status("Заявка 1701 уже выполнена?") is None
    assert detect_status("Можете уточнить адрес?") == STATUS_CLARIFY


def test_failure_of_equipment_is_not_a_refusal() -> None:
    parsed = parse_mail("Заявка 1801", "Причина — отказ блока питания, неисправность устранена.")
    assert status_of(parsed, "1801") == STATUS_DONE


def test_equipment_in_operation_is_not_acceptance() -> None:
    assert detect_status("Заявка 1901: оборудование в работе.") is None


def test_negation_does_not_reach_past_a_conjunction() -> None:
    assert detect_status("Заявка не принята и отклонена.") == STATUS_REJECTED


def test_later_stage_wins_across_sentences() -> None:
    parsed = parse_mail("", "Заявка 1501 отклонена. Заявка 1501 выполнена. Приняли в работу.")
    assert status_of(parsed, "1501") == STATUS_REJECTED


# --- numbers ------------------------------------------------------------------------------------


def test_enumeration_with_and_counts_whole() -> None:
    parsed = parse_mail("", "По заявкам 601 и 602 работы завершены.")
    assert parsed.numbers == ("601", "602")
    assert {status_of(parsed, n) for n in parsed.numbers} == {STATUS_DONE}


def test_enumeration_with_repeated_sign() -> None:
    assert extract_numbers("Заявки № 101, № 102 и № 103 выполнены.") == ["101", "102", "103"]


def test_marker_word_forms_and_number_word() -> None:
    text = "Номер заявки: 2001. По заявкам №2002, 2003. Заявкой 2004 и заявках #2005. ЗАЯВКУ N 2006."
    assert extract_numbers(text) == ["2001", "2002", "2003", "2004", "2005", "2006"]


def test_slash_and_letters_in_numbers_without_sentence_dot() -> None:
    parsed = parse_mail("", "Заявка ТО-2026/77 выполнена. Проверьте и заявку AB-17.")
    assert parsed.numbers == ("ТО-2026/77", "AB-17")
    assert status_of(parsed, "то-2026/77") == STATUS_DONE


def test_numbers_deduplicated_case_insensitively_as_first_typed() -> None:
    parsed = parse_mail("RE: Заявка AB-17", "Заявка ab-17 в работе, заявка Ab-17 тоже.")
    assert parsed.numbers == ("AB-17",)
    assert parsed.statuses == {"ab-17": STATUS_ACCEPTED}


def test_word_after_marker_is_not_a_number() -> None:
    parsed = parse_mail("", "Заявка принята, заявку номер уточним.")
    assert parsed.numbers == ()
    assert parsed.general_status == STATUS_ACCEPTED


def test_too_long_token_is_not_a_number() -> None:
    assert extract_numbers("заявка " + "1" * 33 + " выполнена") == []
    assert extract_numbers("заявка " + "1" * 32) == ["1" * 32]


def test_sign_after_another_noun_numbers_that_noun() -> None:
    numbers = extract_numbers("Акт № 45 и договор №12/77 направим. Выполнены №2002 и #2003, д. № 5.")
    assert numbers == ["2002", "2003"]


# --- sentences and the mail as a whole -------------------------------------------------------


def test_each_sentence_sets_its_own_numbers_status() -> None:
    parsed = parse_mail("", "Заявка 701 выполнена. Заявка 702 в работе.")
    assert parsed.statuses == {"701": STATUS_DONE, "702": STATUS_ACCEPTED}


def test_lines_without_punctuation_are_separate_sentences_unless_wrapped() -> None:
    parsed = parse_mail("", "Заявка 2201 — выполнена\nЗаявка 2202 — отклонена\nЗаявка №2203\nвыполнена")
    assert parsed.statuses == {"2201": STATUS_DONE, "2202": STATUS_REJECTED, "2203": STATUS_DONE}


def test_sentence_without_number_applies_to_subject_numbers() -> None:
    parsed = parse_mail("RE: Заявки 801, 802", "Работы завершены.")
    assert parsed.statuses == {"801": STATUS_DONE, "802": STATUS_DONE}
    assert parsed.general_status == STATUS_DONE


def test_subject_only_mail() -> None:
    parsed = parse_mail("RE: FW: Ответ: Заявка 1201 выполнена", "")
    assert status_of(parsed, "1201") == STATUS_DONE
    assert parsed.comment == "Заявка 1201 выполнена"


def test_text_without_number_keeps_general_status() -> None:
    parsed = parse_mail("RE: вопрос", "Работы выполнены.")
    assert parsed.numbers == ()
    assert parsed.statuses == {}
    assert parsed.general_status == STATUS_DONE
    assert contractor_messages(
        parsed, received=datetime.now(timezone.utc), author="x", message_id="m", subject="RE: вопрос"
    ) == []


def test_number_without_status_phrase_keeps_its_text_as_comment() -> None:
    parsed = parse_mail("Заявка 3001", "Бригада   будет\n\nна объекте в 14:00.")
    assert parsed.statuses == {"3001": None}
    assert parsed.comment == "Бригада будет на объекте в 14:00."


def test_comment_is_short_and_collapsed() -> None:
    parsed = parse_mail("Заявка 3002", "Работы   выполнены.\n" + "слово " * 400)
    assert len(parsed.comment) <= MAIL_COMMENT_MAX
    assert parsed.comment.startswith("Работы выполнены. слово")


# --- positions ----------------------------------------------------------------------------------


def test_positions_belong_to_the_number_they_stand_by() -> None:
    parsed = parse_mail(
        "", "Заявка 1301, поз. 7: выполнена. По заявке 1302 (позиции 12) приступили к работам. "
        "Заявка 1303 позицию №4 отклонили."
    )
    assert parsed.numbers == ("1301", "1302", "1303")
    assert parsed.positions == {"1301": "7", "1302": "12", "1303": "4"}
    assert parsed.statuses == {"1301": STATUS_DONE, "1302": STATUS_ACCEPTED, "1303": STATUS_REJECTED}


def test_two_positions_in_one_sentence() -> None:
    parsed = parse_mail("", "Заявка 1401 позиция 3, заявка 1402 позиция 5 — работы завершены.")
    assert parsed.positions == {"1401": "3", "1402": "5"}


def test_position_after_an_enumeration_belongs_to_all_its_numbers() -> None:
    parsed = parse_mail("", "Заявки 5001 и 5002, позиция 7, выполнены. Заявка 5003 в работе.")
    assert parsed.positions == {"5001": "7", "5002": "7", "5003": None}


def test_abbreviation_dot_splits_only_before_a_capital() -> None:
    parsed = parse_mail("Заявки 5101, 5102", "Заявка 5101 принята в работу 20.11.2026 г. Заявка 5102, поз. 3 отклонена.")
    assert parsed.statuses == {"5101": STATUS_ACCEPTED, "5102": STATUS_REJECTED}
    assert parsed.positions == {"5101": None, "5102": "3"}


def test_position_in_body_belongs_to_the_only_number() -> None:
    parsed = parse_mail("Заявка №1501", "Позиция 9 принята в работу.")
    assert position_of(parsed, "1501") == "9"
    assert status_of(parsed, "1501") == STATUS_ACCEPTED


# --- quoted history and signature ----------------------------------------------------------------


def test_from_block_cuts_history() -> None:
    body = (
        "Выполнено.\n\nFrom: Monitoring <m@omis.example>\nSent: Wednesday, November 19, 2026 9:00 AM\n"
        "To: contractor@example\nSubject: Заявка 902\n\nЗаявка 902 отклонена"
    )
    parsed = parse_mail("Заявка 901", body)
    assert parsed.numbers == ("901",)
    assert parsed.statuses == {"901": STATUS_DONE}


def test_russian_outlook_header_and_rule_line_are_cut() -> None:
    body = (
        "Сделано.\n________________________________\nОт: Отдел мониторинга <m@omis.example>\n"
        "Отправлено: 19 ноября 2026 г. 9:00\nКому: подрядчик\nТема: Заявка 903\n\nЗаявка 903 отклонена"
    )
    assert new_text(body) == "Сделано."


def test_from_line_without_header_block_is_kept() -> None:
    assert new_text("От: бригады №3 новостей нет.\nЗаявка 904 выполнена.").endswith("выполнена.")


def test_wrote_line_cuts_history() -> None:
    body = "Приняли.\n\nOn Wed, Nov 19, 2026 at 10:02 AM Monitoring <m@omis.example> wrote:\n> Заявка 1002 отклонена?"
    parsed = parse_mail("Заявка 1001", body)
    assert parsed.numbers == ("1001",)
    assert parsed.statuses == {"1001": STATUS_ACCEPTED}


def test_quote_lines_dropped_and_inline_answers_kept() -> None:
    body = "> Просим принять заявку 1003 в работу\nЗаявка 1003 принята в работу.\n> Заявка 1004?\n>> 1005\nЗаявка 1004 выполнена."
    parsed = parse_mail("", body)
    assert parsed.statuses == {"1003": STATUS_ACCEPTED, "1004": STATUS_DONE}


def test_russian_original_message_separator_cuts_history() -> None:
    body = "Заявка 1102 в работе.\n-----Исходное сообщение-----\nЗаявка 1102 отклонена"
    assert parse_mail("", body).statuses == {"1102": STATUS_ACCEPTED}


@pytest.mark.parametrize("separator", ["-- ", "--", "С уважением,", "с уважением"])
def test_signature_is_dropped(separator: str) -> None:
    parsed = parse_mail("", f"Заявка 2401 выполнена.\n{separator}\nИван, заявка 999, тел. № 123")
    assert parsed.numbers == ("2401",)
    assert parsed.comment == "Заявка 2401 выполнена."


def test_signoff_after_a_sentence_on_the_same_line() -> None:
    assert new_text("Заявка 2501 выполнена. С уважением, Иван. Заявка 2502") == "Заявка 2501 выполнена."


def test_unique_body_is_the_new_text() -> None:
    body = "Заявка 1101 отклонена.\n\n-----Исходное сообщение-----\nЗаявка 1101 выполнена"
    parsed = parse_mail("Заявка 1101", body, unique_body="Приняли в работу.\n-- \nИван")
    assert parsed.statuses == {"1101": STATUS_ACCEPTED}
    assert parsed.comment == "Приняли в работу."


def test_blank_unique_body_falls_back_to_body() -> None:
    assert parse_mail("Заявка 1101", "Заявка 1101 отклонена.", unique_body="  \n").statuses == {
        "1101": STATUS_REJECTED
    }


def test_yo_and_e_read_alike() -> None:
    assert detect_status("Заявку берем в работу") == detect_status("Заявку берём в работу") == STATUS_ACCEPTED
    assert detect_status("Заявка еще не выполнена") is None


# --- contractor messages ---------------------------------------------------------------------


def test_contractor_messages_one_per_number() -> None:
    parsed = parse_mail("RE: Заявка 4001", "Заявка 4001, позиция 2: выполнена. Заявка 4002 — просим уточнить.")
    at = datetime(2026, 11, 20, 8, 15, tzinfo=timezone.utc)
    subject = "RE: Заявка 4001"
    messages = contractor_messages(parsed, received=at, author="Иван Петров", message_id="<m@x>", subject=subject)
    assert messages == [
        ContractorMessage("4001", "2", STATUS_DONE, parsed.comment, at, "Иван Петров", "<m@x>", subject),
        ContractorMessage("4002", None, STATUS_CLARIFY, parsed.comment, at, "Иван Петров", "<m@x>", subject),
    ]


def test_status_tables_cover_the_mail_statuses() -> None:
    assert set(STATUS_KEYWORDS) == set(STATUS_RANK) == {STATUS_ACCEPTED, STATUS_CLARIFY, STATUS_DONE, STATUS_REJECTED}
    assert STATUS_RANK[STATUS_REJECTED] > STATUS_RANK[STATUS_DONE] > STATUS_RANK[STATUS_CLARIFY] > STATUS_RANK[STATUS_ACCEPTED]


# --- robustness ---------------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "заявка", "Заявки", "№", "#", "N", " ", "\n", ", ", " и ", ".", ". ", "?", ";", ":", "-", "/", "> ", "-- \n",
        "From: x\nSent: y\n", "пишет:\n", "С уважением", "101", "AB-17", "ТО-2026/77", "позиция", "поз. ", "не ",
        "будет ", "выполнена", "принята в работу", "отказ", "не можем выполнить", "уточните", "в работе", "ё", "\r\n",
    ]
)
MAIL_TEXT = st.one_of(st.text(), st.lists(FRAGMENTS | st.text(max_size=3), max_size=60).map("".join))


def check_invariants(parsed: ParsedMail) -> None:
    keys = [normalize_number(n) for n in parsed.numbers]
    assert len(keys) == len(set(keys))
    assert set(parsed.statuses) == set(parsed.positions) == set(keys)
    assert all(any(ch.isdigit() for ch in n) and len(n) <= 32 for n in parsed.numbers)
    assert all(s is None or s in STATUS_RANK for s in [*parsed.statuses.values(), parsed.general_status])
    assert len(parsed.comment) <= MAIL_COMMENT_MAX


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=MAIL_TEXT, body=MAIL_TEXT, unique=st.none() | MAIL_TEXT)
def test_parse_never_raises(subject: str, body: str, unique: str | None) -> None:
    check_invariants(parse_mail(subject, body, unique))


MEGABYTE = 1_000_000


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("заявка№" * (MEGABYTE // 7), id="markers"),
        pytest.param("Заявка №1 не выполнена, отказ. " * (MEGABYTE // 30), id="sentences"),
        pytest.param("приняли " + "1-" * (MEGABYTE // 2), id="long-token"),
        pytest.param("не" + " " * MEGABYTE + "выполнена\n" * 1000, id="whitespace"),
    ],
)
def test_huge_mail_is_read_in_linear_time(body: str) -> None:
    started = time.perf_counter()
    check_invariants(parse_mail(body[:1000], body))
    assert time.perf_counter() - started < 10
