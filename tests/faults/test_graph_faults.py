"""Graph misbehaves, or the mail is odd: no crash, nothing lost, everything stored fits (issue 7, item 2).

The fake Graph (real msal and requests over loopback HTTPS) feeds real mail passes into Azurite.
"Nothing lost" means: every message is applied to the requests it names, or kept on the
«Неразобранные письма» page; and a pass that fails applies nothing and does not move the
resume link, so the next pass reads the same messages again.
"""
from __future__ import annotations

import datetime as dt

import pytest

from functions.mail import sync
from functions.mail.graph import GraphMailClient
from functions.model import DEFAULT_STATUS, Request
from functions.storage import UnmatchedMail
from tests.fakes.graph_server import FakeGraph

from .conftest import ShortTimeouts, current_store
from .conftest import assert_within_table_limits as fits_storage

NOW = dt.datetime(2026, 11, 20, 13, 0, tzinfo=dt.timezone.utc)
CREATED = NOW - dt.timedelta(days=1)
DONE, ACCEPTED = "выполнена", "принята в работу"


def run_pass(sleeps: list[float] | None = None, **kwargs) -> sync.MailReport:
    return sync.process_mailbox(now=NOW, sleep=(sleeps if sleeps is not None else []).append, **kwargs)


def deliver(fake: FakeGraph, numbers: list[str], start: dt.datetime = NOW - dt.timedelta(hours=4)) -> None:
    for i, number in enumerate(numbers):
        fake.add_message("Inbox", f"RE: Заявка №{number}", f"Заявка №{number} принята в работу.",
                         start + dt.timedelta(minutes=i))


def add_requests(*numbers: str) -> None:
    for number in numbers:
        current_store().add_request(number, now=CREATED)


def get(number: str) -> Request:
    found = current_store().get_request(number)
    assert found is not None, number
    return found


def mail_entries(number: str) -> int:
    return sum(h.source == "mail" for h in get(number).history)


def resume_link() -> str | None:
    store = current_store()
    return store.mail.get_state(sync.resume_state_name(GraphMailClient(store.settings).state_key))


def unmatched() -> list[UnmatchedMail]:
    return current_store().mail.list_unmatched(limit=100)[0]


def assert_within_table_limits() -> int:
    return fits_storage(current_store())


# -- Graph failures ----------------------------------------------------------------------------

def test_server_error_in_the_middle_of_paging_is_retried_and_every_message_applied_once(mail_env: FakeGraph):
    numbers = [f"П-{i}" for i in range(6)]
    add_requests(*numbers)
    deliver(mail_env, numbers)
    mail_env.page_cap = 2                                   # three pages
    mail_env.fail_next(2, 500, path_contains="/messages/delta", after=1)   # the second page, twice
    sleeps: list[float] = []

    report = run_pass(sleeps)

    assert (report.read, report.applied, report.errors) == (6, 6, 0)
    assert sleeps == [1.0, 2.0]
    assert len(mail_env.graph_calls("/messages/delta")) == 5
    assert [mail_entries(n) for n in numbers] == [1] * 6


def test_server_error_for_good_in_the_middle_of_paging_applies_nothing_and_the_next_pass_applies_all(
        mail_env: FakeGraph):
    numbers = [f"П-{i}" for i in range(6)]
    add_requests(*numbers)
    deliver(mail_env, numbers)
    mail_env.page_cap = 2
    mail_env.fail_next(1000, 500, path_contains="/messages/delta", after=1)
    sleeps: list[float] = []

    with pytest.raises(sync.MailError, match=r"HTTP 500.*") as failed:
        run_pass(sleeps)

    assert "после 5 попыток" in str(failed.value)
    assert len(mail_env.graph_calls("/messages/delta")) == 1 + 5 and sum(sleeps) <= 300
    assert [mail_entries(n) for n in numbers] == [0] * 6 and resume_link() is None
    mail_env.clear_faults()
    report = run_pass()
    assert (report.read, report.applied) == (6, 6)
    assert [mail_entries(n) for n in numbers] == [1] * 6


def test_graph_that_never_answers_in_time_fails_the_pass_within_its_budget_and_loses_nothing(
        mail_env: FakeGraph):
    add_requests("Т-1", "Т-2")
    deliver(mail_env, ["Т-1", "Т-2"])
    mail_env.fail_next(5, None, delay=0.6, path_contains="/messages/delta")   # longer than the 0.3 s timeout
    sleeps: list[float] = []

    with ShortTimeouts(read=0.3) as session, pytest.raises(sync.MailError, match="не ответил") as failed:
        run_pass(sleeps, session=session)

    assert "после 5 попыток" in str(failed.value) and sleeps == [1.0, 2.0, 4.0, 8.0]
    assert resume_link() is None and mail_entries("Т-1") == 0
    with ShortTimeouts(read=0.3) as session:
        report = run_pass(session=session)
    assert (report.read, report.applied) == (2, 2)


def test_endless_429_storm_gives_up_within_the_retry_budget_and_says_so(mail_env: FakeGraph, cli_main, capsys):
    add_requests("Ш-1")
    deliver(mail_env, ["Ш-1"], start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))  # the CLI's clock
    mail_env.fail_next(10_000, 429, retry_after=0, path_contains="/messages/delta")

    assert cli_main(["mail"]) == 1

    err = capsys.readouterr().err
    assert "ограничивает запросы (throttling, HTTP 429" in err and "после 5 попыток" in err
    assert "почта будет прочитана в следующий раз" in err and "Traceback" not in err
    assert len(mail_env.graph_calls("/messages/delta")) == 5
    assert mail_entries("Ш-1") == 0 and resume_link() is None
    mail_env.clear_faults()
    assert cli_main(["mail"]) == 0 and mail_entries("Ш-1") == 1


def test_resume_link_that_expired_mid_carry_over_reads_the_window_again_and_applies_each_once(
        mail_env: FakeGraph, configure):
    configure(OMIS_OUTLOOK_MAX_MESSAGES="3")
    numbers = [f"Д-{i}" for i in range(9)]
    add_requests(*numbers)
    deliver(mail_env, numbers[:7])
    first = run_pass()
    mail_env.expire_sync_states()                   # the carried-over link (a skip token) is now unknown
    deliver(mail_env, numbers[7:], start=NOW - dt.timedelta(hours=1))

    reports = [first]
    for _ in range(10):                             # bounded: the window is read through in a few passes
        reports.append(run_pass())
        if reports[-1].read == 0:
            break

    assert reports[-1].read == 0
    assert any("заново" in note for note in reports[1].notes)
    assert sum(r.applied for r in reports) == 9
    assert [mail_entries(n) for n in numbers] == [1] * 9


# -- odd mail ----------------------------------------------------------------------------------

def test_one_megabyte_body_naming_a_request_is_applied_with_a_short_comment(mail_env: FakeGraph):
    add_requests("М-1")
    body = "Заявка №М-1 выполнена.\n" + "Протокол испытаний, строка. " * 20_000
    assert len(body.encode("utf-8")) > 1_000_000
    mail_env.add_message("Inbox", "RE: протокол", body, NOW - dt.timedelta(hours=1))

    report = run_pass()

    assert (report.read, report.applied, report.errors) == (1, 1, 0)
    request = get("М-1")
    assert request.status == DONE and len(request.comment) <= 500
    assert assert_within_table_limits() <= 64 * 1024


def test_one_megabyte_body_without_a_number_is_kept_as_unmatched_and_fits_storage(mail_env: FakeGraph, call):
    body = "Фото объекта: " + "📷👍🏻 " * 100_000     # emoji take 2 UTF-16 units each in Table Storage
    assert len(body.encode("utf-8")) > 1_000_000
    mail_env.add_message("Inbox", "Фото 📷", body, NOW - dt.timedelta(hours=1))

    report = run_pass()

    assert (report.read, report.unmatched, report.errors) == (1, 1, 0)
    [kept] = unmatched()
    assert kept.subject == "Фото 📷" and kept.text and body.startswith(kept.text)
    assert assert_within_table_limits() <= 64 * 1024
    assert call("GET", "/mail/unmatched").status_code == 200


def test_empty_body_is_read_from_the_subject_and_empty_mail_is_kept(mail_env: FakeGraph):
    add_requests("Е-1")
    mail_env.add_message("Inbox", "Заявка №Е-1 выполнена", "", NOW - dt.timedelta(hours=2))
    mail_env.add_message("Inbox", "", "", NOW - dt.timedelta(hours=1))

    report = run_pass()

    assert (report.read, report.applied, report.unmatched, report.errors) == (2, 1, 1, 0)
    assert get("Е-1").status == DONE
    [kept] = unmatched()
    assert kept.subject == "" and "не найден номер" in kept.reason


OUTLOOK_HTML = """<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<style>p.MsoNormal{margin:0cm;font-family:"Calibri"}</style></head>
<body lang="RU"><div class="WordSection1">
<p class="MsoNormal">Добрый&nbsp;день.<o:p></o:p></p>
<p class="MsoNormal">Заявка&nbsp;№&nbsp;Н-7 выполнена, позиция&nbsp;3.<o:p></o:p></p>
<p class="MsoNormal">--&nbsp;<br>Подрядчик &amp; партнёры</p>
<div style="border-top:solid #E1E1E1 1.0pt"><p class="MsoNormal"><b>От:</b> ОМИС<br>
<b>Тема:</b> Заявка №Н-8</p></div>
<p class="MsoNormal">Заявка №Н-8 отклонена</p></div></body></html>"""


def test_html_only_body_is_read_as_text_without_the_quoted_part(mail_env: FakeGraph):
    add_requests("Н-7", "Н-8")
    mail_env.ignore_body_preference = True          # Graph answers with the sender's HTML
    mail_env.add_message("Inbox", "RE: Заявка №Н-8", "(HTML)", NOW - dt.timedelta(hours=1),
                         html_body=OUTLOOK_HTML)

    report = run_pass()

    assert (report.read, report.errors) == (1, 0)
    request = get("Н-7")
    assert request.status == DONE and request.history[-1].position == "3"
    assert "<" not in request.comment and "&nbsp;" not in request.comment
    assert get("Н-8").status == DEFAULT_STATUS   # only the quoted part said «отклонена»


def test_mail_in_a_mis_declared_encoding_is_kept_or_applied_by_its_subject_never_lost(mail_env: FakeGraph):
    add_requests("123", "К-5")
    text = "Заявка № 123 выполнена"
    cp1251_as_latin1 = text.encode("cp1251").decode("latin-1")            # «Çàÿâêà ¹ 123 âûïîëíåíà»
    utf8_as_cp1251 = text.encode("utf-8").decode("cp1251", errors="replace")   # «Р—Р°СЏРІРєР° в„– 123 …»
    mail_env.add_message("Inbox", "RE: работы", cp1251_as_latin1, NOW - dt.timedelta(hours=3))
    mail_env.add_message("Inbox", "RE: работы", utf8_as_cp1251, NOW - dt.timedelta(hours=2))
    mail_env.add_message("Inbox", "Заявка №К-5", "Ð—Ð°Ñ\ufffdÐ²ÐºÐ° \ufffd\ufffd выполнена",
                         NOW - dt.timedelta(hours=1))

    report = run_pass()

    assert (report.read, report.applied, report.unmatched, report.errors) == (3, 1, 2, 0)
    assert {m.text for m in unmatched()} == {cp1251_as_latin1, utf8_as_cp1251}
    assert get("123").status == DEFAULT_STATUS   # garbled text guesses nothing
    assert get("К-5").status == DONE and "\ufffd" in get("К-5").comment
    assert_within_table_limits()


def test_one_hundred_numbers_in_one_mail_apply_to_each_known_request_once(mail_env: FakeGraph):
    numbers = [str(7001 + i) for i in range(100)]
    known, unknown = numbers[:25], numbers[25:]
    add_requests(*known)
    mail_env.add_message("Inbox", "RE: работы", f"Заявки № {', '.join(numbers)} выполнены.",
                         NOW - dt.timedelta(hours=1))

    report = run_pass()
    mail_env.expire_sync_states()
    again = run_pass()

    assert (report.read, report.applied, report.unmatched, report.errors) == (1, 1, 1, 0)
    assert (report.pairs_applied, report.pairs_status_changed) == (25, 25)
    assert (again.applied, again.already_applied, again.pairs_duplicate, again.unmatched_before) == (0, 1, 25, 1)
    assert all(get(n).status == DONE for n in known)
    assert current_store().counts()[DONE] == 25
    [kept] = unmatched()
    assert list(kept.numbers) == unknown
    assert_within_table_limits()


def test_subject_of_ten_thousand_characters_is_applied_or_kept_within_storage_limits(mail_env: FakeGraph, call):
    add_requests("Т-1")
    long_tail = "очень длинная тема " * 530
    mail_env.add_message("Inbox", "Заявка №Т-1 выполнена " + long_tail, "", NOW - dt.timedelta(hours=2))
    mail_env.add_message("Inbox", "Без номера " + long_tail, "Текст", NOW - dt.timedelta(hours=1))

    report = run_pass()

    assert (report.read, report.applied, report.unmatched, report.errors) == (2, 1, 1, 0)
    assert get("Т-1").status == DONE
    assert len(get("Т-1").history[-1].subject) <= 500
    [kept] = unmatched()
    assert kept.subject.startswith("Без номера") and len(kept.subject) <= 2000
    assert_within_table_limits()
    assert call("GET", "/requests/%D0%A2-1").status_code == 200
    assert call("GET", "/api/mail/unmatched").status_code == 200


def test_unmatched_mail_of_any_size_is_kept_in_one_entity(proxied_store):
    huge = UnmatchedMail(
        message_key="k" * 40, subject="📷" * 100_000, sender="Подрядчик " * 1000,
        received=NOW, numbers=tuple(f"ТО-{i:05d}" for i in range(20_000)), message_id="<" + "m" * 50_000 + ">",
        reason="Не найдены заявки: " + "1, " * 50_000, text="👍🏻" * 500_000 + "\ud83d")

    assert proxied_store.mail.keep_unmatched(huge)
    assert not proxied_store.mail.keep_unmatched(huge)   # the same message again: still one row

    [kept] = unmatched()
    assert kept.text and huge.text.startswith(kept.text)
    assert kept.numbers and huge.numbers[:len(kept.numbers)] == kept.numbers
    assert assert_within_table_limits() <= 64 * 1024
