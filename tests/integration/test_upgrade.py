"""`init` upgrades a store written by the previous version (schema 1) in place, losing nothing.

tests/data/store-v1.json holds every row the previous version's own code wrote for a small team
(requests with `/`, `.`, Cyrillic and the HP / HP_X pair, history, processed-mail markers,
unmatched mail, conversation links, the mailbox position, a reminder); see make_v1_store.py there.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from functions.mail.message import GraphMessage
from functions.mail.sync import apply_messages
from functions.storage import get_store
from functions.storage.layout import META, SCHEMA_ROW

DUMP = json.loads((Path(__file__).parents[1] / "data" / "store-v1.json").read_text(encoding="utf-8"))["tables"]
T0 = datetime(2026, 11, 20, 7, 0, tzinfo=timezone.utc)
KEY_RE = re.compile(r"^[A-Za-z0-9_-]*$")


def _decode(value):
    if isinstance(value, dict) and "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    return value


@pytest.fixture
def v1_store(omis_env):
    """Fresh tables holding exactly the rows of the previous version's store."""
    store = get_store()
    store.tables.ensure()
    for suffix, rows in DUMP.items():
        client = store.tables.requests.client if suffix == "requests" else store.tables.mail.client
        for row in rows:
            client.upsert_entity({k: _decode(v) for k, v in row.items()})
    return store


def v1_rows(prefix: str) -> list[dict]:
    return [r for r in DUMP["requests"] if r["PartitionKey"] == "R" and r["RowKey"].startswith(prefix)]


def snapshot(store) -> list[tuple]:
    rows = []
    for table in (store.tables.requests, store.tables.mail):
        for entity in table.client.list_entities():
            rows.append((entity["PartitionKey"], entity["RowKey"],
                         json.dumps({k: str(v) for k, v in sorted(entity.items())}, ensure_ascii=False)))
    return sorted(rows)


def test_every_request_and_its_history_survive(v1_store, cli_main, capsys):
    assert cli_main(["init"]) == 0
    assert "обновлено с версии 1 до 2" in capsys.readouterr().out
    for old in v1_rows("r_"):
        new = v1_store.get_request(old["Number"])
        assert new is not None, old["Number"]
        assert (new.number, new.position, new.description, new.author, new.status, new.comment) == (
            old["Number"], old["Position"], old["Description"], old["Author"], old["Status"], old["Comment"])
        for name, field in (("created_at", "CreatedAt"), ("status_updated_at", "StatusUpdatedAt"),
                            ("updated_at", "UpdatedAt")):
            assert getattr(new, name) == _decode(old[field]), (old["Number"], name)
        key = old["RowKey"][2:]
        own = [h for h in v1_rows(f"h_{key}_") if re.fullmatch(r"[0-9]{8}", h["RowKey"][len(f"h_{key}_"):])]
        assert [h.comment for h in new.history] == [h.get("Comment", "") for h in sorted(own, key=lambda h: h["Seq"])]


def test_the_old_history_leak_is_not_carried_over(v1_store):
    v1_store.init()
    assert all("HP_X" not in h.comment and h.author != "Пётр" for h in v1_store.get_request("HP").history)
    assert "взяли HP_X" in [h.comment for h in v1_store.get_request("HP_X").history]


def test_deadline_facts_are_rebuilt_from_the_history(v1_store):
    v1_store.init()
    accepted = v1_store.get_request("10501")       # a mail accepted it at +50 min, a reply finished it at +60
    assert accepted.status == "выполнена" and accepted.last_news_at == T0 + timedelta(minutes=60)
    quiet = v1_store.get_request("HP")
    assert quiet.first_news_at is None and quiet.level == "normal"
    # HP never heard back (accept passed at +1 h 2 min); HP_X was accepted at +30 min (update passed at +1 h 30 min).
    assert [r.number for r in v1_store.requests.breached(T0 + timedelta(hours=3))] == ["HP", "HP_X"]


def test_status_counts_survive(v1_store):
    v1_store.init()
    (old,) = v1_rows("c_counts")
    counts = v1_store.counts()
    assert [counts[s] for s in ("заявка отправлена", "принята в работу", "требует уточнения", "выполнена",
                                "отклонена")] == [old[f"S{i}"] for i in range(5)]


def test_a_mail_pass_after_the_upgrade_re_applies_nothing(v1_store):
    v1_store.init()

    def message(n: int, subject: str, body: str, minutes: int, conversation: str | None) -> GraphMessage:
        return GraphMessage(graph_id=f"AAMk-{n}=", internet_message_id=f"<v1-{n}@contractor.example>",
                            conversation_id=conversation, subject=subject, body=body, unique_body=None,
                            sender_name="Иван Петров", sender_address="petrov@contractor.example",
                            received=T0 + timedelta(minutes=minutes))

    again = apply_messages([
        message(1, "RE: Заявка №10501", "Заявка №10501, позиция 7: принята в работу.", 50, "CONV-10501"),
        message(2, "RE: Заявка ТО-2026/77", "Заявка № ТО-2026/77 отклонена: не по договору.", 55, "CONV-77"),
        message(3, "RE: Выезд", "Работы завершены.", 60, "CONV-10501"),
        message(4, "Заявка №99901", "Заявка №99901 принята в работу.", 65, "CONV-X"),
        message(5, "Вопрос", "Когда оплата?", 70, None),
    ], store=v1_store)
    assert (again.applied, again.already_applied, again.unmatched, again.unmatched_before) == (0, 3, 0, 2)
    # The conversation links survived: a new numberless reply in a tied conversation finds its request.
    reply = apply_messages([message(7, "RE: Отказ", "Уточнение: работы не входят в договор.", 90, "CONV-77")],
                           store=v1_store)
    assert reply.applied == 1
    assert v1_store.get_request("ТО-2026/77").history[-1].subject == "RE: Отказ"


def test_unmatched_mail_and_the_mailbox_position_survive(v1_store):
    v1_store.init()
    items, _ = v1_store.mail.list_unmatched()
    assert sorted(m.subject for m in items) == ["RE: HP", "Вопрос", "Заявка №99901"]
    assert all(m.state == "open" and m.message_key for m in items)
    (old,) = [r for r in DUMP["mail"] if r["PartitionKey"] == "state" and r["RowKey"].startswith("graph-resume:")]
    assert v1_store.mail.get_state(old["RowKey"].replace(":", "-")) == old["Value"]


def test_after_the_upgrade_every_key_is_plain_and_no_old_row_is_left(v1_store):
    v1_store.init()
    rows = snapshot(v1_store)
    assert [r for r in rows if not KEY_RE.match(r[0]) or not KEY_RE.match(r[1])] == []
    assert [r for r in rows if r[0] in ("R", "conv")] == []
    assert v1_store.tables.requests.get(META, SCHEMA_ROW)["Version"] == 2


def test_init_a_second_time_changes_nothing(v1_store, cli_main, capsys):
    v1_store.init()
    before = snapshot(v1_store)
    assert cli_main(["init"]) == 0
    assert "обновление не нужно" in capsys.readouterr().out
    assert snapshot(v1_store) == before


def test_an_upgrade_cut_off_half_way_is_finished_by_the_next_init(v1_store, monkeypatch):
    from functions.storage import schema

    real = schema._upgrade_mail

    def dies(*args, **kwargs):
        raise RuntimeError("cut off")

    monkeypatch.setattr(schema, "_upgrade_mail", dies)
    with pytest.raises(RuntimeError):
        v1_store.init()
    monkeypatch.setattr(schema, "_upgrade_mail", real)
    report = v1_store.init()
    assert report.upgraded_from == 1
    assert len(v1_store.get_request("10501").history) == len(v1_rows("h_10501_"))
    assert sorted(m.subject for m in v1_store.mail.list_unmatched()[0]) == ["RE: HP", "Вопрос", "Заявка №99901"]
