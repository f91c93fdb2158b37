"""The data layer against a real Azurite: requests, list, changes, mail, rename, archive, keys."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from azure.data.tables import TableTransactionError

from functions.mail.sync import message_key
from functions.model import DEFAULT_STATUS, ValidationError
from functions.storage import (
    ConflictError,
    DuplicateRequestError,
    RequestNotFound,
    SimilarNumberError,
    StorageBusy,
    StorageUnavailable,
)
from functions.storage import tables as tables_module
from functions.storage.counts import fold_counts
from functions.storage.layout import PARTITION

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
KEY_RE = re.compile(r"^[A-Za-z0-9_-]*$")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def numbers(page) -> list[str]:
    return [r.number for r in page.items]


def mail(store, number: str, key: str, *, status=None, comment="", minutes=10.0, promised=None):
    request_id = store.requests.resolve(number)
    return store.apply_mail(request_id, message=message_key(key, None), status=status, comment=comment,
                            received=at(minutes), message_id=key, subject="RE: Заявка", promised=promised)


def all_rows(store):
    for table in (store.tables.requests, store.tables.mail):
        yield from table.client.list_entities()


def test_add_and_get_round_trip(store):
    store.add_request("10231", "Позиция 7", "Замена фильтра", author="Анна", now=T0)
    got = store.get_request("10231")
    assert (got.number, got.position, got.description, got.author) == ("10231", "Позиция 7", "Замена фильтра", "Анна")
    assert got.status == DEFAULT_STATUS and got.level == "normal" and not got.archived
    assert got.created_at == got.status_updated_at == got.updated_at == T0
    assert [h.source for h in got.history] == ["web"]


def test_unknown_number_is_none(store):
    assert store.get_request("nope") is None
    assert store.get_request("x" * 16000) is None


@pytest.mark.parametrize("other", ["ab-17", "AB-17", "Ab-17", "  aB-17  "])
def test_duplicate_in_any_letter_case_is_refused(store, other):
    store.add_request("AB-17", now=T0)
    with pytest.raises(DuplicateRequestError) as info:
        store.add_request(other)
    assert info.value.existing == "AB-17"
    assert len(store.list_requests().items) == 1


def test_number_with_slash_and_cyrillic(store):
    store.add_request("ТО-2026/77", now=T0)
    assert store.get_request("то-2026/77").number == "ТО-2026/77"
    store.update_status("ТО-2026/77", "выполнена", "готово", author="Анна", now=at(5))
    assert store.get_request("ТО-2026/77").status == "выполнена"


def test_invalid_fields_store_nothing(store):
    with pytest.raises(ValidationError) as info:
        store.add_request("bad#number", "x" * 201)
    assert set(info.value.fields) == {"number", "position"}
    with pytest.raises(ValidationError) as info:
        store.add_request("OK-1", level="platinum")
    assert set(info.value.fields) == {"level"}
    assert store.list_requests().items == []


def test_history_of_one_request_never_shows_another_whose_number_extends_it(store):
    """HP and HP_X: history rows are keyed by fixed-width ids, so no key range is another's prefix."""
    store.add_request("HP", now=T0)
    store.add_request("HP_X", now=at(1))
    store.update_status("HP_X", "принята в работу", "секрет HP_X", author="Чужой", now=at(2))
    hp = store.get_request("HP")
    assert [h.comment for h in hp.history] == ["Заявка зарегистрирована."]
    assert all(h.author != "Чужой" for h in hp.history)


def test_every_key_of_every_table_is_plain(store):
    for number in ("ТО-2026/77", "a/b", "HP_X", "x.y", "Ω-1"):
        store.add_request(number, now=T0)
    store.update_status("Ω-1", "принята в работу", "да", now=at(1))
    mail(store, "HP_X", "<m1@x>", status="выполнена", comment="готово")
    store.edit_request("x.y", new_number="X.Z", now=at(3))
    store.set_archived("a/b", True, now=at(4))
    rows = list(all_rows(store))
    assert len(rows) > 30
    bad = [(r["PartitionKey"], r["RowKey"]) for r in rows
           if not KEY_RE.match(r["RowKey"]) or not KEY_RE.match(r["PartitionKey"])]
    assert bad == []


def test_list_is_last_updated_first_and_pages_follow_the_cursor(store):
    for i in range(7):
        store.add_request(f"N{i}", now=at(i))
    store.update_comment("N2", "свежая новость", author="Анна", now=at(30))
    seen, cursor = [], None
    while True:
        page = store.list_requests(limit=3, cursor=cursor)
        seen += numbers(page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["N2", "N6", "N5", "N4", "N3", "N1", "N0"]


def test_exact_page_size_has_no_next_page(store):
    for i in range(3):
        store.add_request(f"N{i}", now=at(i))
    page = store.list_requests(limit=3)
    assert len(page.items) == 3 and page.next_cursor is None


def test_status_and_text_filters(store):
    store.add_request("A-1", "Котельная", now=at(0))
    store.add_request("A-2", "Насосная", now=at(1))
    store.add_request("B-3", "Котельная №2", now=at(2))
    store.update_status("A-2", "выполнена", "Неисправность устранена", now=at(3))
    assert numbers(store.list_requests(status="выполнена")) == ["A-2"]
    assert numbers(store.list_requests(status=DEFAULT_STATUS)) == ["B-3", "A-1"]
    assert numbers(store.list_requests(q="котельная")) == ["B-3", "A-1"]
    assert numbers(store.list_requests(q="устранена")) == ["A-2"]
    assert numbers(store.list_requests(q="b-3")) == ["B-3"]
    page = store.list_requests(q="а", limit=1)
    assert len(page.items) == 1 and page.next_cursor


def test_bad_filter_values_are_validation_errors(store):
    for bad in ({"status": "непонятно"}, {"limit": 101}, {"cursor": "!!!not-a-cursor"}, {"sort": "x"},
                {"waiting_on": "them"}, {"level": "nope"}):
        with pytest.raises(ValidationError) as info:
            store.list_requests(**bad)
        assert set(info.value.fields) == set(bad)


def test_status_counts_follow_changes_without_a_shared_row(store):
    for n in ("1", "2", "3", "4"):
        store.add_request(n, now=T0)
    store.update_status("1", "выполнена", now=at(1))
    store.update_status("2", "выполнена", now=at(2))
    store.update_status("2", "отклонена", now=at(3))
    store.set_archived("4", True, now=at(4))
    counts = store.counts()
    assert (counts["заявка отправлена"], counts["выполнена"], counts["отклонена"], counts["archived"]) == (1, 1, 1, 1)
    # Each change wrote a delta row of its own; folding them changes no figure.
    assert fold_counts(store.requests) > 0
    assert store.counts() == counts
    assert fold_counts(store.requests) == 0


def test_status_change_records_history_and_times(store):
    store.add_request("10", now=T0)
    store.update_status("10", "принята в работу", "взяли", author="Пётр", source="api", now=at(10))
    store.update_comment("10", "бригада на месте", author="Пётр", now=at(20))
    got = store.get_request("10")
    assert got.status == "принята в работу"
    assert got.status_updated_at == at(10) and got.updated_at == at(20)
    assert (got.comment, got.comment_author) == ("бригада на месте", "Пётр")
    assert [(h.status, h.source) for h in got.history] == [
        ("заявка отправлена", "web"), ("принята в работу", "api"), ("принята в работу", "web")]
    assert got.last_news_at == at(10) and got.first_news_at == at(10)


def test_a_person_change_never_goes_back_in_time(store):
    store.add_request("T", now=at(10))
    changed = store.update_status("T", "принята в работу", "", now=at(5))   # a clock behind the last change
    assert changed.status_updated_at > at(10)


def test_update_of_unknown_request_raises(store):
    with pytest.raises(RequestNotFound):
        store.update_status("missing", "выполнена")


def test_two_writers_with_a_stale_etag_lose_nothing(store, monkeypatch):
    """A writer whose read went stale retries with a fresh read: both changes are applied, in order."""
    store.add_request("R", now=T0)
    real_row = store.requests.row
    barrier = threading.Barrier(2)
    first_reads: set[int] = set()

    def read_then_wait(request_id):
        row = real_row(request_id)
        ident = threading.get_ident()
        if threading.current_thread().name.startswith("writer") and ident not in first_reads:
            first_reads.add(ident)
            barrier.wait(timeout=10)  # both writers now hold the same ETag
        return row

    monkeypatch.setattr(store.requests, "row", read_then_wait)
    errors = []

    def write(comment):
        try:
            store.update_comment("R", comment, author="w")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(c,), name=f"writer{c}") for c in ("первый", "второй")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = store.get_request("R")
    assert sorted(h.comment for h in got.history[1:]) == ["второй", "первый"]
    assert got.comment == got.history[-1].comment          # the last one applied is the request's comment
    assert len(store.list_requests().items) == 1           # one index row, not two


def test_failed_transaction_leaves_no_half_change(store, monkeypatch):
    store.add_request("H", "п", now=T0)
    before = store.get_request("H")
    real_submit = store.requests.table.submit

    def submit_with_a_broken_last_op(ops):
        bad = ("create", {"PartitionKey": PARTITION, "RowKey": ops[0][1]["RowKey"]})  # exists already
        real_submit([*ops, bad])

    monkeypatch.setattr(store.requests.table, "submit", submit_with_a_broken_last_op)
    monkeypatch.setattr(tables_module, "backoff", lambda attempt: None)
    with pytest.raises(TableTransactionError):
        store.update_status("H", "выполнена", "x", now=at(5))
    monkeypatch.undo()
    assert store.get_request("H") == before
    assert numbers(store.list_requests(status="выполнена")) == []
    assert store.counts()["выполнена"] == 0


def test_mail_is_applied_once_per_message_and_request(store):
    store.add_request("M1", now=T0)
    assert mail(store, "m1", "<m1@x>", status="принята в работу", comment="Взяли в работу").outcome == "status_changed"
    assert mail(store, "M1", "<m1@x>", status="принята в работу", comment="Взяли в работу").outcome == "duplicate"
    got = store.get_request("M1")
    entries = [h for h in got.history if h.source == "mail"]
    assert len(entries) == 1 and entries[0].message_id == "<m1@x>"
    assert got.status_updated_at == at(10) and got.comment_author == "Робот"
    assert got.last_news_at == at(10)


def test_applying_a_mail_costs_at_most_three_storage_calls(store):
    store.add_request("C3", now=T0)
    store.requests._ids.clear()                     # a cold process: the number is looked up too
    store.stats.reset()
    request_id = store.requests.resolve("C3")
    store.apply_mail(request_id, message=message_key("<c3@x>", None), status="выполнена", comment="готово",
                     received=at(10), message_id="<c3@x>", subject="s")
    assert store.stats.calls <= 3, store.stats
    store.stats.reset()
    duplicate = store.apply_mail(request_id, message=message_key("<c3@x>", None), status="выполнена",
                                 comment="готово", received=at(10), message_id="<c3@x>", subject="s")
    assert duplicate.outcome == "duplicate" and store.stats.calls <= 2


def test_mail_without_a_status_phrase_is_news(store):
    store.add_request("N", now=T0)
    result = mail(store, "N", "<n@x>", comment="бригада выехала", minutes=30)
    assert result.outcome == "recorded"
    got = store.get_request("N")
    assert got.status == DEFAULT_STATUS and got.last_news_at == at(30) and got.first_news_at == at(30)


def test_older_mail_is_recorded_but_does_not_move_the_status(store):
    store.add_request("M2", now=T0)
    mail(store, "M2", "<new@x>", status="выполнена", comment="выполнена", minutes=240)
    result = mail(store, "M2", "<old@x>", status="принята в работу", comment="приняли", minutes=60)
    assert result.outcome == "recorded"
    got = store.get_request("M2")
    assert got.status == "выполнена" and got.comment == "выполнена" and got.status_updated_at == at(240)
    assert [h.at for h in got.history] == [T0, at(60), at(240)]


def test_the_latest_promise_in_received_order_wins(store):
    store.add_request("P", now=T0)
    mail(store, "P", "<p2@x>", comment="до 04.12", minutes=60, promised=at(60 * 24 * 14))
    mail(store, "P", "<p1@x>", comment="до 01.12", minutes=30, promised=at(60 * 24 * 11))   # read later, sent earlier
    got = store.get_request("P")
    assert got.promised == at(60 * 24 * 14)
    assert [h.promised for h in got.history if h.source == "mail"] == [at(60 * 24 * 11), at(60 * 24 * 14)]


def test_message_key_prefers_internet_message_id():
    assert message_key("<a@b>", "g1") == message_key("<a@b>", "g2")
    assert message_key(None, "g1") != message_key(None, "g2")
    with pytest.raises(ValueError):
        message_key(None, "")


# ----- rename --------------------------------------------------------------------------

def test_rename_keeps_history_and_the_old_number_stays_an_alias(store):
    store.add_request("AB-17", "поз. 1", now=T0)
    store.update_status("AB-17", "принята в работу", "взяли", now=at(1))
    renamed = store.edit_request("AB-17", new_number="AB-18", author="Анна", now=at(2))
    assert renamed.number == "AB-18" and renamed.aliases == ("AB-17",)
    got = store.get_request("ab-17")                 # the old number finds the request
    assert got.number == "AB-18" and len(got.history) == 3
    assert "«AB-17» → «AB-18»" in got.history[-1].comment
    assert numbers(store.list_requests()) == ["AB-18"]
    assert numbers(store.list_requests(q="ab-17")) == ["AB-18"]   # the old number is still searchable
    with pytest.raises(DuplicateRequestError) as info:
        store.add_request("AB-17")
    assert info.value.existing == "AB-18" and "AB-18" in str(info.value)


def test_mail_naming_the_old_number_reaches_the_renamed_request(store):
    store.add_request("OLD-1", now=T0)
    store.edit_request("OLD-1", new_number="NEW-1", now=at(1))
    assert mail(store, "OLD-1", "<old@x>", status="выполнена", comment="готово").outcome == "status_changed"
    assert store.get_request("NEW-1").status == "выполнена"


def test_rename_to_a_taken_number_changes_nothing(store):
    store.add_request("A", now=T0)
    store.add_request("B", now=T0)
    store.edit_request("B", new_number="C", now=at(1))
    for taken in ("A", "a", "B"):
        if taken == "B":
            store.add_request("D", now=T0)
            target = "D"
        else:
            target = "C"
        with pytest.raises(DuplicateRequestError):
            store.edit_request(target, new_number=taken)
    assert store.get_request("C").aliases == ("B",)
    assert sorted(numbers(store.list_requests())) == ["A", "C", "D"]


def test_rename_back_to_its_own_old_number_and_a_case_change(store):
    store.add_request("X-1", now=T0)
    store.edit_request("X-1", new_number="X-2", now=at(1))
    back = store.edit_request("X-2", new_number="X-1", now=at(2))
    assert back.number == "X-1" and back.aliases == ("X-2",)
    cased = store.edit_request("x-1", new_number="x-1", now=at(3))
    assert cased.number == "x-1" and cased.aliases == ("X-2",)


def test_bad_edits_are_refused_with_their_fields(store):
    store.add_request("E", now=T0)
    with pytest.raises(ValidationError) as info:
        store.edit_request("E", new_number="bad#", position="x" * 201)
    assert set(info.value.fields) == {"number", "position"}
    with pytest.raises(ValidationError) as info:
        store.edit_request("E", due=at(-1))
    assert set(info.value.fields) == {"due"}
    with pytest.raises(ValidationError):
        store.edit_request("E", level="nope")
    assert store.get_request("E").history[-1].comment == "Заявка зарегистрирована."


def test_a_look_alike_number_needs_a_confirmation(store):
    store.add_request("AB-17", now=T0)
    with pytest.raises(SimilarNumberError) as info:
        store.add_request("АВ-17")                 # Cyrillic А and В
    assert info.value.existing == "AB-17"
    with pytest.raises(SimilarNumberError):
        store.add_request("ＡＢ-１７")               # full-width forms
    assert store.add_request("АВ-17", confirm_similar=True).number == "АВ-17"
    assert store.get_request("AB-17").number == "AB-17"   # matching stays exact
    store.add_request("Z-1", now=T0)
    with pytest.raises(SimilarNumberError):
        store.edit_request("Z-1", new_number="ΑΒ-17")   # Greek


# ----- archive -------------------------------------------------------------------------

def test_archive_takes_a_request_out_of_the_list_and_counts_and_restore_brings_it_back(store):
    store.add_request("A1", now=T0)
    store.add_request("A2", now=T0)
    archived = store.set_archived("A1", True, author="Анна", now=at(1))
    assert archived.archived and "архив" in store.get_request("A1").history[-1].comment
    assert numbers(store.list_requests()) == ["A2"]
    assert numbers(store.list_requests(archived=True)) == ["A1"]
    assert store.counts()[DEFAULT_STATUS] == 1 and store.counts()["archived"] == 1
    with pytest.raises(ConflictError):
        store.update_status("A1", "выполнена")
    with pytest.raises(ConflictError):
        store.edit_request("A1", position="новая")
    assert mail(store, "A1", "<a1@x>", comment="письмо в архив").outcome == "recorded"   # mail is still kept
    store.set_archived("A1", False, now=at(2))
    assert sorted(numbers(store.list_requests())) == ["A1", "A2"]
    assert store.counts()["archived"] == 0


# ----- storage trouble ------------------------------------------------------------------

def test_unreachable_storage_is_storage_unavailable(configure):
    from functions.storage import get_store
    from scripts.azurite import connection_string, free_port

    configure(OMIS_TABLES_CONNECTION_STRING=connection_string(free_port()))
    with pytest.raises(StorageUnavailable):
        get_store().list_requests()
    with pytest.raises(StorageUnavailable):
        get_store().ping()


def test_tables_that_vanish_are_created_again(store):
    store.add_request("V", now=T0)
    store.tables.service.delete_table(store.tables.requests.name)
    with pytest.raises(StorageUnavailable):
        store.list_requests()
    assert store.list_requests().items == []        # the next call finds an empty, re-created table
    store.ping()


def test_transaction_rows_share_one_partition(store):
    store.add_request("P", now=T0)
    keys = {e["PartitionKey"] for e in store.tables.requests.client.list_entities(select=["PartitionKey"])}
    assert keys == {PARTITION, "meta"}
    assert TableTransactionError  # the error type the retry loop relies on


def test_endless_conflicts_give_storage_busy_and_write_nothing(store, monkeypatch):
    store.add_request("C", now=T0)

    def always_conflict(ops):
        exc = TableTransactionError(message="1:UpdateConditionNotSatisfied")
        exc.status_code = 412
        raise exc

    monkeypatch.setattr(store.requests.table, "submit", always_conflict)
    monkeypatch.setattr(tables_module, "backoff", lambda attempt: None)
    with pytest.raises(StorageBusy):
        store.update_status("C", "выполнена", now=at(1))
    assert issubclass(StorageBusy, StorageUnavailable)  # a mail pass stops and retries later
    monkeypatch.undo()
    assert store.get_request("C").status == DEFAULT_STATUS
