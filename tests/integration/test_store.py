"""The data layer against a real Azurite."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from azure.data.tables import TableTransactionError

from functions.tables import REQUESTS_TABLE, table

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_add_and_get_round_trip(store):
    store.add_request("10231", "Позиция 7", "Замена фильтра", author="Анна", now=T0)
    got = store.get_request("10231")
    assert (got.number, got.position, got.description, got.author) == ("10231", "Позиция 7", "Замена фильтра", "Анна")
    assert got.status == store.DEFAULT_STATUS
    assert got.created_at == got.status_updated_at == got.updated_at == T0
    assert [h.source for h in got.history] == ["web"]


def test_unknown_number_is_none(store):
    assert store.get_request("nope") is None


@pytest.mark.parametrize("other", ["ab-17", "AB-17", "Ab-17", "  aB-17  "])
def test_duplicate_in_any_letter_case_is_refused(store, other):
    store.add_request("AB-17", now=T0)
    with pytest.raises(store.DuplicateRequestError):
        store.add_request(other)
    assert len(store.get_requests().items) == 1


def test_number_with_slash_and_cyrillic(store):
    store.add_request("ТО-2026/77", now=T0)
    assert store.get_request("то-2026/77").number == "ТО-2026/77"
    store.update_status("ТО-2026/77", "выполнена", "готово", author="Анна", now=at(5))
    assert store.get_request("ТО-2026/77").status == "выполнена"


def test_invalid_fields_store_nothing(store):
    with pytest.raises(store.ValidationError) as info:
        store.add_request("bad#number", "x" * 201)
    assert set(info.value.fields) == {"number", "position"}
    assert store.get_requests().items == []


def test_list_is_last_updated_first_and_pages_follow_the_cursor(store):
    for i in range(7):
        store.add_request(f"N{i}", now=at(i))
    store.update_comment("N2", "свежая новость", author="Анна", now=at(30))
    seen, cursor = [], None
    while True:
        page = store.get_requests(limit=3, cursor=cursor)
        seen += [r.number for r in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["N2", "N6", "N5", "N4", "N3", "N1", "N0"]


def test_exact_page_size_has_no_next_page(store):
    for i in range(3):
        store.add_request(f"N{i}", now=at(i))
    page = store.get_requests(limit=3)
    assert len(page.items) == 3 and page.next_cursor is None


def test_status_and_text_filters(store):
    store.add_request("A-1", "Котельная", now=at(0))
    store.add_request("A-2", "Насосная", now=at(1))
    store.add_request("B-3", "Котельная №2", now=at(2))
    store.update_status("A-2", "выполнена", "Неисправность устранена", now=at(3))
    assert [r.number for r in store.get_requests(status="выполнена").items] == ["A-2"]
    assert [r.number for r in store.get_requests(status=store.DEFAULT_STATUS).items] == ["B-3", "A-1"]
    assert [r.number for r in store.get_requests(q="котельная").items] == ["B-3", "A-1"]
    assert [r.number for r in store.get_requests(q="устранена").items] == ["A-2"]
    assert [r.number for r in store.get_requests(q="b-3").items] == ["B-3"]
    page = store.get_requests(q="а", limit=1)
    assert len(page.items) == 1 and page.next_cursor


def test_bad_filter_values_are_validation_errors(store):
    with pytest.raises(store.ValidationError):
        store.get_requests(status="непонятно")
    with pytest.raises(store.ValidationError):
        store.get_requests(limit=101)
    with pytest.raises(store.ValidationError):
        store.get_requests(cursor="!!!not-a-cursor")


def test_status_counts_follow_changes(store):
    for n in ("1", "2", "3"):
        store.add_request(n, now=T0)
    store.update_status("1", "выполнена", now=at(1))
    store.update_status("2", "выполнена", now=at(2))
    store.update_status("2", "отклонена", now=at(3))
    counts = store.status_counts()
    assert counts["заявка отправлена"] == 1 and counts["выполнена"] == 1 and counts["отклонена"] == 1


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


def test_update_of_unknown_request_raises(store):
    with pytest.raises(store.RequestNotFound):
        store.update_status("missing", "выполнена")


def test_delayed_query_is_exact_at_its_boundary(store):
    store.add_request("OLD", now=at(0))
    store.add_request("EDGE", now=at(1))
    store.add_request("DONE", now=at(0))
    store.update_status("DONE", "выполнена", now=at(0.5))
    # Threshold 60: at 61 min, EDGE changed exactly 60 minutes ago -> not yet delayed.
    assert [r.number for r in store.get_delayed_requests(minutes=60, now=at(61))] == ["OLD"]
    assert [r.number for r in store.get_delayed_requests(minutes=60, now=at(61) + timedelta(microseconds=1))] == [
        "OLD", "EDGE"]


def test_status_change_moves_the_request_in_the_delay_index(store):
    store.add_request("X", now=at(0))
    store.update_status("X", "принята в работу", now=at(50))
    assert store.get_delayed_requests(minutes=60, now=at(100)) == []
    assert [r.number for r in store.get_delayed_requests(minutes=60, now=at(111))] == ["X"]


def test_two_writers_with_a_stale_etag_lose_nothing(store, monkeypatch):
    """A writer whose read went stale retries: both changes end up in the history."""
    store.add_request("R", now=T0)
    real_read = store._read_row
    barrier = threading.Barrier(2)
    first_reads: set[int] = set()

    def read_then_wait(number):
        row = real_read(number)
        ident = threading.get_ident()
        if threading.current_thread().name.startswith("writer") and ident not in first_reads:
            first_reads.add(ident)
            barrier.wait(timeout=10)  # both writers now hold the same ETag
        return row

    monkeypatch.setattr(store, "_read_row", read_then_wait)
    errors = []

    def write(comment, minute):
        try:
            store.update_comment("R", comment, author="w", now=at(minute))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(c, m), name=f"writer{m}") for c, m in (("первый", 1), ("второй", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    comments = [h.comment for h in store.get_request("R").history]
    assert sorted(comments[1:]) == ["второй", "первый"]
    assert len(store.get_requests().items) == 1  # one index row, not two


def test_failed_transaction_leaves_no_half_change(store, monkeypatch):
    store.add_request("H", "п", now=T0)
    before = store.get_request("H")
    real_submit = store._submit

    def submit_with_a_broken_last_op(ops):
        bad = ("create", {"PartitionKey": store.PARTITION, "RowKey": ops[0][1]["RowKey"]})  # exists already
        real_submit([*ops, bad])

    monkeypatch.setattr(store, "_submit", submit_with_a_broken_last_op)
    monkeypatch.setattr(store, "MAX_ATTEMPTS", 2)
    with pytest.raises(Exception):
        store.update_status("H", "выполнена", "x", now=at(5))
    monkeypatch.undo()
    after = store.get_request("H")
    assert after == before
    assert [r.number for r in store.get_requests(status="выполнена").items] == []
    assert store.status_counts()["выполнена"] == 0


def test_mail_is_applied_once_per_message_and_request(store):
    store.add_request("M1", now=T0)
    key = store.message_key("<m1@x>", "graph-id")
    kwargs = dict(message=key, status="принята в работу", comment="Взяли в работу", received=at(10),
                  author="Подрядчик", message_id="<m1@x>", subject="RE: Заявка M1", position="7")
    assert store.apply_mail("m1", **kwargs).outcome == "status_changed"
    assert store.apply_mail("M1", **kwargs).outcome == "duplicate"
    got = store.get_request("M1")
    mail_entries = [h for h in got.history if h.source == "mail"]
    assert len(mail_entries) == 1
    assert (mail_entries[0].subject, mail_entries[0].position, mail_entries[0].message_id) == (
        "RE: Заявка M1", "7", "<m1@x>")
    assert got.status_updated_at == at(10) and got.comment_author == "Подрядчик"


def test_older_mail_is_recorded_but_does_not_move_the_status(store):
    store.add_request("M2", now=T0)
    new = store.message_key("<new@x>", None)
    old = store.message_key("<old@x>", None)
    common = dict(author="П", message_id=None, subject="s")
    store.apply_mail("M2", message=new, status="выполнена", comment="выполнена", received=at(240), **common)
    result = store.apply_mail("M2", message=old, status="принята в работу", comment="приняли", received=at(60),
                              **common)
    assert result.outcome == "recorded"
    got = store.get_request("M2")
    assert got.status == "выполнена" and got.comment == "выполнена" and got.status_updated_at == at(240)
    assert [h.at for h in got.history] == [T0, at(60), at(240)]


def test_message_key_prefers_internet_message_id():
    from functions.store import message_key

    assert message_key("<a@b>", "g1") == message_key("<a@b>", "g2")
    assert message_key(None, "g1") != message_key(None, "g2")
    with pytest.raises(ValueError):
        message_key(None, "")


def test_reminder_is_recorded_and_cleared_by_a_status_change(store):
    store.add_request("Z", now=T0)
    assert [r.number for r in store.claim_reminders(store.get_delayed_requests(minutes=60, now=at(70)), at(70))] == ["Z"]
    assert store.get_delayed_requests(minutes=60, now=at(80))[0].last_reminded_at == at(70)
    store.update_status("Z", "требует уточнения", now=at(90))
    assert store.get_request("Z").last_reminded_at is None
    stale = store.get_delayed_requests(minutes=5, now=at(100))
    store.update_status("Z", "выполнена", now=at(101))
    assert store.claim_reminders(stale, at(102)) == []


def test_unreachable_storage_is_storage_unavailable(monkeypatch, omis_env):
    from functions import settings, store as store_module

    from scripts.azurite import connection_string, free_port

    monkeypatch.setenv("OMIS_TABLES_CONNECTION_STRING", connection_string(free_port()))
    settings.reset_settings()
    with pytest.raises(store_module.StorageUnavailable):
        store_module.get_requests()
    with pytest.raises(store_module.StorageUnavailable):
        store_module.ping()


def test_transaction_rows_share_one_partition(store):
    store.add_request("P", now=T0)
    keys = {e["PartitionKey"] for e in table(REQUESTS_TABLE).list_entities(select=["PartitionKey"])}
    assert keys == {store.PARTITION}
    assert TableTransactionError  # the error type the retry loop relies on


def test_endless_conflicts_give_storage_busy_and_write_nothing(store, monkeypatch):
    store.add_request("C", now=T0)

    def always_conflict(ops):
        raise TableTransactionError(message="0:UpdateConditionNotSatisfied")

    monkeypatch.setattr(store, "_submit", always_conflict)
    monkeypatch.setattr(store, "_is_conflict", lambda exc: True)
    monkeypatch.setattr(store, "_backoff", lambda attempt: None)
    with pytest.raises(store.StorageBusy):
        store.update_status("C", "выполнена", now=at(1))
    assert issubclass(store.StorageBusy, store.StorageUnavailable)  # a mail pass stops and retries later
    monkeypatch.undo()
    assert store.get_request("C").status == store.DEFAULT_STATUS


def test_claim_reminders_in_one_batch_and_skips_changed_requests(store):
    for n in ("A", "B", "C"):
        store.add_request(n, now=T0)
    delayed = store.get_delayed_requests(minutes=60, now=at(120))
    store.update_status("B", "принята в работу", now=at(121))  # B moved on after the read
    store.update_status("C", "выполнена", now=at(122))
    assert [r.number for r in store.claim_reminders(delayed, at(125))] == ["A"]  # not about B's new status
    assert store.get_request("A").last_reminded_at == at(125)
    assert store.get_request("B").last_reminded_at is None
    assert store.get_request("C").last_reminded_at is None
    assert [r.last_reminded_at for r in store.get_delayed_requests(minutes=60, now=at(130))] == [at(125)]
