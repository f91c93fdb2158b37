"""Mail passes end to end: the fake Graph (real msal and requests over loopback HTTPS) into Azurite."""
from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest

from functions.mail import sync
from functions.mail.graph import GraphMailClient
from functions.settings import get_settings
from functions.storage import StorageUnavailable, Store, get_store
from tests.conftest import ROOT
from tests.fakes.fixtures import fake_graph, recorded_sleeps  # noqa: F401
from tests.fakes.graph_server import FakeGraph
from tests.support import set_env

NOW = dt.datetime(2026, 11, 20, 13, 0, tzinfo=dt.timezone.utc)
CREATED = dt.datetime(2026, 11, 19, 0, 0, tzinfo=dt.timezone.utc)
FOLDER = "Inbox"
CORPUS_PATH = Path(ROOT) / "tests" / "data" / "mail-public.json"
CORPUS = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))["cases"]
PROMISE_CORPUS = [case for name in ("mail-promises-public.json", "mail-promises-extra.json")
                  for case in json.loads((Path(ROOT) / "tests" / "data" / name).read_text(encoding="utf-8"))["cases"]]
MOSCOW = dt.timezone(dt.timedelta(hours=3))


def at(hour: int, minute: int = 0) -> dt.datetime:
    return NOW.replace(hour=hour, minute=minute)



@pytest.fixture
def mail_env(fake_graph: FakeGraph, omis_env, monkeypatch):  # noqa: F811
    """OMIS on fresh Azurite tables, reading the fake Graph mailbox."""
    set_env(monkeypatch, **fake_graph.env())
    get_store().init()
    return fake_graph


def add_requests(*numbers: str) -> None:
    for number in numbers:
        get_store().add_request(number, now=CREATED)


def get_req(number: str):
    return get_store().get_request(number)


def unmatched() -> list:
    return get_store().mail.list_unmatched()[0]


def mail_entries(number: str) -> list:
    return [h for h in get_req(number).history if h.source == "mail"]


def run_pass(**kwargs) -> sync.MailReport:
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("sleep", lambda seconds: None)
    return sync.process_mailbox(**kwargs)


# -- the public corpus -------------------------------------------------------------------------

@pytest.mark.parametrize("case", CORPUS + PROMISE_CORPUS, ids=[case["id"] for case in CORPUS + PROMISE_CORPUS])
def test_public_corpus_case_end_to_end(case, mail_env):
    add_requests(*case["requests"])
    for mail in case["mail"]:
        sender = f'{mail["from"]["name"]} <{mail["from"]["address"]}>'
        received = dt.datetime.fromisoformat(mail["received"].replace("Z", "+00:00"))
        mail_env.add_message(FOLDER, mail["subject"], mail["body"], received, sender,
                             internet_message_id=mail.get("internet_message_id"))

    report = run_pass()

    assert report.read == len(case["mail"]) and report.errors == 0
    for number, expect in case["expect"].items():
        request = get_req(number)
        if "status" in expect:
            assert request.status == expect["status"], number
        if "history_mail_entries" in expect:
            assert len(mail_entries(number)) == expect["history_mail_entries"], number
        if "history_position" in expect:
            assert expect["history_position"] in [h.position for h in mail_entries(number)], number
        if "comment_contains" in expect:
            assert expect["comment_contains"] in request.comment, number
        if "promised_local" in expect:
            local = request.promised.astimezone(MOSCOW).replace(tzinfo=None).isoformat() if request.promised else None
            assert local == expect["promised_local"], number
        assert all(h.author == "Робот" for h in mail_entries(number))
    kept = unmatched()
    subjects = {m.subject for m in kept}
    if case.get("unmatched"):
        assert {m["subject"] for m in case["mail"]} <= subjects
    else:
        assert not kept


# -- exactly once ------------------------------------------------------------------------------

NINE = at(9)


def deliver(fake: FakeGraph, numbers: list[str], start: dt.datetime = NINE) -> None:
    for i, number in enumerate(numbers):
        fake.add_message(FOLDER, f"RE: Заявка №{number}", f"Заявка №{number} принята в работу.",
                         start + dt.timedelta(minutes=i))


def test_second_pass_reads_nothing_and_a_reread_applies_nothing(mail_env):
    numbers = ["501", "502", "503"]
    add_requests(*numbers)
    deliver(mail_env, numbers)

    first = run_pass()
    second = run_pass()
    mail_env.expire_sync_states()
    third = run_pass()

    assert (first.read, first.applied, first.pairs_status_changed) == (3, 3, 3)
    assert (second.read, second.applied) == (0, 0)
    assert (third.read, third.applied, third.already_applied) == (3, 0, 3)
    assert any("заново" in note for note in third.notes)
    assert all(len(mail_entries(n)) == 1 for n in numbers)


def test_overlapping_passes_apply_each_message_once(mail_env, monkeypatch):
    numbers = [f"60{i}" for i in range(6)]
    add_requests(*numbers)
    deliver(mail_env, numbers)
    both_read = threading.Barrier(2, timeout=30)
    original = GraphMailClient.read_messages

    def read_then_wait(self, resume_link, *, now):
        batch = original(self, resume_link, now=now)
        both_read.wait()  # both passes hold the same batch before either applies it
        return batch

    monkeypatch.setattr(GraphMailClient, "read_messages", read_then_wait)
    reports: list[sync.MailReport] = []
    failures: list[BaseException] = []

    def one_pass() -> None:
        try:
            reports.append(run_pass())
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not failures and len(reports) == 2
    assert sum(r.applied for r in reports) == len(numbers)
    assert sum(r.already_applied for r in reports) == len(numbers)
    assert all(len(mail_entries(n)) == 1 for n in numbers)
    assert all(get_req(n).status == "принята в работу" for n in numbers)
    assert get_store().counts()["принята в работу"] == len(numbers)


def test_pass_that_dies_after_k_messages_and_its_rerun_apply_each_once(mail_env, monkeypatch):
    numbers = [f"70{i}" for i in range(5)]
    add_requests(*numbers)
    deliver(mail_env, numbers)
    real_apply = Store.apply_mail
    calls = {"n": 0}

    def dies_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise StorageUnavailable("Хранилище недоступно: обрыв в тесте")
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(Store, "apply_mail", dies_on_third)
    with pytest.raises(StorageUnavailable):
        run_pass()
    state = sync.resume_state_name(GraphMailClient(get_settings()).state_key)
    assert get_store().mail.get_state(state) is None  # not advanced: the rerun reads the batch again
    monkeypatch.setattr(Store, "apply_mail", real_apply)

    rerun = run_pass()

    assert (rerun.read, rerun.applied, rerun.already_applied) == (5, 3, 2)
    assert all(len(mail_entries(n)) == 1 for n in numbers)
    assert get_store().mail.get_state(state) is not None


def test_message_limit_carries_over_without_gap_or_repeat(mail_env, monkeypatch):
    set_env(monkeypatch, OMIS_OUTLOOK_MAX_MESSAGES="3")
    numbers = [f"80{i}" for i in range(7)]
    add_requests(*numbers)
    deliver(mail_env, numbers)

    reports = [run_pass() for _ in range(4)]

    assert [r.read for r in reports] == [3, 3, 1, 0]
    assert [r.applied for r in reports] == [3, 3, 1, 0]
    assert any("OMIS_OUTLOOK_MAX_MESSAGES" in note for note in reports[0].notes)
    assert not any("OMIS_OUTLOOK_MAX_MESSAGES" in note for note in reports[2].notes)
    assert all(len(mail_entries(n)) == 1 for n in numbers)


def test_throttled_graph_is_waited_for(mail_env, recorded_sleeps):  # noqa: F811
    add_requests("901", "902")
    deliver(mail_env, ["901", "902"])
    mail_env.fail_next(2, 429, retry_after=7, path_contains="/messages/delta")

    report = run_pass(sleep=recorded_sleeps[1])

    assert recorded_sleeps[0] == [7.0, 7.0]
    assert report.applied == 2
    assert report.graph_calls == 1 + 3  # the Inbox, then the delta page twice refused and once answered


def test_graph_calls_are_folder_plus_pages(mail_env, monkeypatch):
    set_env(monkeypatch, OMIS_OUTLOOK_MAX_MESSAGES="100")
    numbers = [f"95{i:02d}" for i in range(60)]
    add_requests(*numbers)
    deliver(mail_env, numbers, start=at(8))

    report = run_pass()

    assert report.applied == 60
    assert report.graph_calls == 1 + 2  # the Inbox, then two pages of at most 50


# -- what belongs where ------------------------------------------------------------------------

def test_reply_without_number_in_a_tied_conversation_belongs_to_its_request(mail_env):
    add_requests("1001", "1002", "1003")
    mail_env.add_message(FOLDER, "RE: Заявка №1001", "Заявка №1001 принята в работу.", at(9),
                         conversation_id="conv-one")
    mail_env.add_message(FOLDER, "Заявки 1002 и 1003", "Заявки № 1002 и 1003 приняты в работу.", at(9, 5),
                         conversation_id="conv-two")
    run_pass()
    mail_env.add_message(FOLDER, "RE: Выезд", "Работы завершены, оборудование в работе.", at(10),
                         conversation_id="conv-one")
    mail_env.add_message(FOLDER, "RE: Выезд", "Работы завершены.", at(10, 5), conversation_id="conv-two")

    report = run_pass()

    assert (report.applied, report.unmatched) == (1, 1)
    assert get_req("1001").status == "выполнена"
    assert mail_entries("1001")[-1].subject == "RE: Выезд"
    assert get_req("1002").status == "принята в работу"
    (kept,) = unmatched()
    assert "1002" in kept.reason and "1003" in kept.reason


def test_conversation_links_of_a_pass_are_written_a_hundred_to_a_transaction(mail_env, monkeypatch):
    numbers = [f"L{i:03d}" for i in range(150)]
    add_requests(*numbers)
    for i, number in enumerate(numbers):
        mail_env.add_message(FOLDER, f"RE: Заявка №{number}", f"Заявка №{number} принята в работу.",
                             at(9) + dt.timedelta(seconds=i), conversation_id=f"conv-{number}")
    set_env(monkeypatch, OMIS_OUTLOOK_MAX_MESSAGES="200")
    batches = []
    real = get_store().mail.link_conversations
    monkeypatch.setattr(get_store().mail, "link_conversations", lambda links: (batches.append(len(links)),
                                                                               real(links))[1])

    assert run_pass().applied == 150
    assert batches == [100, 50]
    mail_env.add_message(FOLDER, "RE: Выезд", "Работы завершены.", at(11), conversation_id="conv-L149")
    assert run_pass().applied == 1
    assert get_req("L149").status == "выполнена"


def test_a_pass_that_dies_before_writing_its_links_links_them_on_the_rerun(mail_env, monkeypatch):
    add_requests("1001")
    mail_env.add_message(FOLDER, "RE: Заявка №1001", "Заявка №1001 принята в работу.", at(9),
                         conversation_id="conv-one")
    store = get_store()
    real = store.mail.link_conversations

    def storage_gone(links):
        raise StorageUnavailable("Хранилище недоступно: обрыв в тесте")

    monkeypatch.setattr(store.mail, "link_conversations", storage_gone)
    with pytest.raises(StorageUnavailable):
        run_pass()
    assert store.mail.conversation_requests("conv-one") == []
    monkeypatch.setattr(store.mail, "link_conversations", real)

    rerun = run_pass()   # the mailbox position was not saved: the message is read again, found applied

    assert (rerun.applied, rerun.already_applied) == (0, 1)
    assert store.mail.conversation_requests("conv-one") == [store.requests.resolve("1001")]
    mail_env.add_message(FOLDER, "RE: Выезд", "Работы завершены.", at(10), conversation_id="conv-one")
    assert run_pass().applied == 1 and get_req("1001").status == "выполнена"


def test_reply_without_number_and_conversation_is_unmatched(mail_env):
    mail_env.add_message(FOLDER, "Вопрос", "Когда ждать оплату по акту?", at(9))

    report = run_pass()

    assert (report.unmatched, report.applied) == (1, 0)
    (kept,) = unmatched()
    assert kept.numbers == () and "номер" in kept.reason


def test_older_mail_read_later_does_not_regress_the_status(mail_env):
    add_requests("1101")
    mail_env.add_message(FOLDER, "RE: Заявка 1101", "Заявка 1101 выполнена.", at(12))
    run_pass()
    mail_env.add_message(FOLDER, "RE: Заявка 1101", "Заявка 1101 принята в работу.", at(9))

    report = run_pass()

    request = get_req("1101")
    assert request.status == "выполнена" and request.status_updated_at == at(12)
    assert (report.applied, report.pairs_unchanged) == (1, 1)
    assert len(mail_entries("1101")) == 2


def test_known_and_unknown_numbers_apply_the_known_and_keep_the_rest(mail_env):
    add_requests("1201")
    mail_env.add_message(FOLDER, "Выполненные заявки", "Заявки № 1201 и 99998 выполнены.", at(9))

    report = run_pass()

    assert get_req("1201").status == "выполнена"
    assert (report.applied, report.unmatched) == (1, 1)
    (kept,) = unmatched()
    assert kept.numbers == ("99998",) and "1201" in kept.reason


def test_broken_message_is_kept_with_its_reason_and_the_pass_goes_on(mail_env, monkeypatch):
    add_requests("1301", "1302")
    mail_env.add_message(FOLDER, "RE: Заявка 1301", "Заявка 1301 выполнена.", at(9))
    mail_env.add_message(FOLDER, "сломанное письмо", "Заявка 1302 выполнена.", at(9, 1))
    mail_env.add_message(FOLDER, "RE: Заявка 1302", "Заявка 1302 принята в работу.", at(9, 2))
    real_parse = sync.parse_mail

    def parse_or_break(subject, body, unique_body=None, **kwargs):
        if subject == "сломанное письмо":
            raise RuntimeError("разбор сломался")
        return real_parse(subject, body, unique_body, **kwargs)

    monkeypatch.setattr(sync, "parse_mail", parse_or_break)
    report = run_pass()

    assert (report.read, report.applied, report.errors, len(unmatched())) == (3, 2, 1, 1)
    assert get_req("1302").status == "принята в работу"
    (kept,) = unmatched()
    assert kept.subject == "сломанное письмо" and "RuntimeError: разбор сломался" in kept.reason
    assert any("сломанное письмо" in note for note in report.notes)

    mail_env.expire_sync_states()
    again = run_pass()
    assert (again.errors, again.unmatched, again.already_applied) == (1, 0, 2)
    assert len(unmatched()) == 1


def test_unmatched_mail_is_listed_by_the_api(mail_env, call):
    mail_env.add_message(FOLDER, "Заявка №99999", "Заявка №99999 выполнена.", at(9),
                         "Иван Петров <petrov@contractor.example>", internet_message_id="<u-1@contractor.example>")
    run_pass()
    run_pass()

    response = call("GET", "/api/mail/unmatched")

    assert response.status_code == 200
    (item,) = json.loads(response.get_body())["items"]
    assert item["numbers"] == ["99999"] and item["subject"] == "Заявка №99999"
    assert item["message_id"] == "<u-1@contractor.example>" and "petrov@contractor.example" in item["from"]
    assert item["received"] == "2026-11-20T09:00:00Z"


# -- failures ----------------------------------------------------------------------------------

def test_folder_not_found_is_a_mail_error_naming_the_folders(mail_env, monkeypatch):
    set_env(monkeypatch, OMIS_OUTLOOK_FOLDER="Inbox/Договоры")
    mail_env.add_folder("Inbox/Счета")

    with pytest.raises(sync.MailError) as caught:
        run_pass()

    assert "Inbox/Договоры" in str(caught.value) and "«Счета»" in str(caught.value)


def test_endless_throttling_is_a_mail_error_and_nothing_is_advanced(mail_env):
    add_requests("1401")
    deliver(mail_env, ["1401"])
    mail_env.fail_next(100, 429, retry_after=1, path_contains="/messages/delta")

    with pytest.raises(sync.MailError, match="throttling"):
        run_pass()

    assert mail_entries("1401") == []


def test_lone_surrogates_from_graph_are_stored_as_replacement_characters(mail_env, call):
    add_requests("1201")
    mail_env.add_message(FOLDER, "RE: Заявка 1201 \ud800", "Заявка 1201 выполнена \udfff.", at(9))
    mail_env.add_message(FOLDER, "Вопрос \ud83d", "Без номера \ud800", at(9, 5))
    report = run_pass()
    assert (report.applied, report.unmatched, report.errors) == (1, 1, 0)
    got = get_req("1201")
    assert got.status == "выполнена" and "\ufffd" in got.comment
    assert call("GET", "/requests/1201").status_code == 200
    assert call("GET", "/api/mail/unmatched").status_code == 200
