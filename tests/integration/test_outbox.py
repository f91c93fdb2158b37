"""Mail to the contractor (SPEC §8) through the real host code, Azurite and the fake Graph's send endpoints.

One copy per mail whatever the retries and cuts; a reply without a number in the conversation of
a mail OMIS sent belongs to its request; refused-for-good mail is marked failed and not retried;
nothing is sent while sending is off.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest

from functions.mail import sync
from functions.mail.outbox import SendingOff, queue_nudge, send_outbox
from functions.storage import get_store
from tests.fakes.fixtures import fake_graph  # noqa: F401
from tests.fakes.graph_server import FakeGraph
from tests.support import set_env

CONTRACTOR = "ivan@contractor.example"
JSON = {"Content-Type": "application/json"}
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@pytest.fixture
def sending(fake_graph: FakeGraph, omis_env, monkeypatch):  # noqa: F811
    """OMIS on fresh tables, sending through the fake Graph to the contractor's address."""
    set_env(monkeypatch, **fake_graph.env(OMIS_MAIL_SEND="on", OMIS_CONTRACTOR_EMAIL=CONTRACTOR))
    get_store().init()
    return fake_graph


def body(resp) -> dict:
    return json.loads(resp.get_body())


def create(call, number: str, **fields) -> dict:
    resp = call("POST", "/api/requests", json.dumps({"number": number, **fields}), JSON)
    assert resp.status_code == 201, resp.get_body()
    return body(resp)


def outbox(call, number: str) -> list[dict]:
    return body(call("GET", f"/api/requests/{number}"))["outbox"]


def send(**kwargs):
    kwargs.setdefault("sleep", lambda seconds: None)
    kwargs.setdefault("lookup_interval", 0)
    return send_outbox(get_store(), **kwargs)


def test_a_request_sent_on_creation_goes_out_once_with_its_message_id(sending, call):
    created = create(call, "ТО-1", position="Подстанция 5", description="Счётчик не работает", send=True)
    (queued,) = created["outbox"]
    assert queued["state"] == "queued" and queued["to"] == [CONTRACTOR]

    report = send()
    again = send()

    (record,) = sending.sent
    assert record.subject == "Заявка №ТО-1 — Подстанция 5" and record.to == [CONTRACTOR]
    assert "Счётчик не работает" in record.text and "Инженер" in record.text
    assert (len(report.sent), again.sent, again.found_sent) == (1, [], [])
    (mail,) = outbox(call, "ТО-1")
    assert mail["state"] == "sent" and mail["error"] is None
    history = body(call("GET", "/api/requests/ТО-1"))["history"]
    entry = history[-1]
    assert entry["source"] == "outbox" and entry["subject"] == record.subject and entry["to"] == [CONTRACTOR]
    assert sending.copies(record.internet_message_id) == 1


def test_a_pass_cut_off_after_sending_does_not_send_twice(sending, call):
    create(call, "CUT-1", send=True)
    sending.cut_after_accepting(1)           # sent, but the answer never arrives

    first = send()
    second = send(now=dt.datetime.now(dt.timezone.utc))

    (record,) = sending.sent
    assert first.retry_later and not first.sent
    assert second.found_sent and not second.sent
    assert sending.copies(record.internet_message_id) == 1
    assert outbox(call, "CUT-1")[0]["state"] == "sent"


def test_a_late_filed_copy_is_waited_for_rather_than_sent_again(sending, call):
    create(call, "LATE-1", send=True)
    sending.cut_after_accepting(1)
    sending.file_sent_after_lookups = 5      # Exchange files the copy only after a while

    first = send()                            # cut off: one attempt made
    second = send(now=dt.datetime.now(dt.timezone.utc), lookup_attempts=2)   # not filed yet, tried moments ago
    third = send(now=dt.datetime.now(dt.timezone.utc), lookup_attempts=4)    # filed by now

    (record,) = sending.sent
    assert first.retry_later and second.retry_later and not second.sent
    assert third.found_sent
    assert sending.copies(record.internet_message_id) == 1


def test_a_mail_refused_for_good_is_failed_shown_and_not_retried(sending, call, cli_main, capsys):
    create(call, "BAD-1", send=True, to=["nobody@nowhere.example"])
    sending.refuse_recipient("nobody@nowhere.example")

    assert cli_main(["send-mail"]) == 1
    out = capsys.readouterr().out
    assert "не отправлено" in out and "nobody@nowhere.example" in out
    (mail,) = outbox(call, "BAD-1")
    assert mail["state"] == "failed" and "адрес" in mail["error"]
    assert body(call("GET", "/api/requests/BAD-1"))["history"][-1]["comment"].startswith("Письмо подрядчику не отправлено")
    assert cli_main(["send-mail"]) == 0
    assert "в очереди нет" in capsys.readouterr().out
    assert len(sending.sent) == 0


def test_a_temporary_failure_leaves_the_mail_queued_for_the_next_pass(sending, call):
    create(call, "TMP-1", send=True)
    sending.fail_next(1, 503, path_contains="/sendMail")

    first = send()
    assert first.retry_later and outbox(call, "TMP-1")[0]["state"] == "queued"
    second = send(now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=11))
    assert second.sent or second.found_sent
    assert len(sending.sent) == 1


def test_a_nudge_replies_in_the_conversation_and_its_answer_finds_the_request(sending, call):
    create(call, "N-1")
    sending.add_message("Inbox", "RE: Заявка №N-1", "Заявка №N-1 принята в работу.", NOW - dt.timedelta(minutes=5),
                        f"Иван <{CONTRACTOR}>", conversation_id="CONV-N1")
    sync.process_mailbox(now=NOW, sleep=lambda s: None)

    resp = call("POST", "/api/requests/N-1/nudge")
    assert resp.status_code == 200 and body(resp)["outbox"][-1]["state"] == "queued"
    send()

    (record,) = sending.sent
    assert record.kind == "reply" and record.to == [CONTRACTOR] and record.reply_to
    assert record.subject.startswith("RE: ")
    entry = body(call("GET", "/api/requests/N-1"))["history"][-1]
    assert entry["source"] == "outbox"


def test_a_reply_to_a_mail_omis_sent_belongs_to_its_request_without_a_number(sending, call):
    create(call, "S-1", send=True)
    send()
    (record,) = sending.sent
    answered = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)   # after the request was created
    sending.add_message("Inbox", "RE: " + record.subject, "Работы завершены.", answered,
                        f"Иван <{CONTRACTOR}>", conversation_id=record.conversation_id)
    report = sync.process_mailbox(now=answered + dt.timedelta(minutes=1), sleep=lambda s: None)
    assert report.applied == 1
    assert body(call("GET", "/api/requests/S-1"))["status"] == "выполнена"


def test_a_nudge_without_earlier_mail_is_a_new_mail_naming_the_request(sending, call):
    create(call, "NEW-1", position="Котельная")
    assert call("POST", "/api/requests/NEW-1/nudge").status_code == 200
    send()
    (record,) = sending.sent
    assert record.kind == "sendMail" and "NEW-1" in record.subject and "Котельная" in record.subject


def test_nudging_a_final_or_archived_request_is_409(sending, call):
    create(call, "F-1")
    call("POST", "/api/requests/F-1/status", json.dumps({"status": "выполнена"}), JSON)
    assert call("POST", "/api/requests/F-1/nudge").status_code == 409
    create(call, "A-1")
    call("DELETE", "/api/requests/A-1")
    assert call("POST", "/api/requests/A-1/nudge").status_code == 409
    assert call("POST", "/api/requests/NOPE/nudge").status_code == 404


def test_bad_recipients_are_400_with_the_field(sending, call):
    for to in ("not an address", ["ok@example.com", "bad@"], 5):
        resp = call("POST", "/api/requests", json.dumps({"number": "R-1", "send": True, "to": to}), JSON)
        assert resp.status_code == 400 and "to" in body(resp)["fields"], to
    assert call("GET", "/api/requests/R-1").status_code == 404


def test_with_sending_off_nothing_is_queued_or_sent(fake_graph, omis_env, monkeypatch, call):  # noqa: F811
    set_env(monkeypatch, **fake_graph.env())
    get_store().init()
    resp = call("POST", "/api/requests", json.dumps({"number": "OFF-1", "send": True}), JSON)
    assert resp.status_code == 400 and "OMIS_MAIL_SEND" in body(resp)["fields"]["send"]
    create(call, "OFF-2")
    resp = call("POST", "/api/requests/OFF-2/nudge")
    assert resp.status_code == 400 and "OMIS_MAIL_SEND" in body(resp)["error"]
    assert send().sent == [] and fake_graph.sent == []


def test_mail_queued_before_sending_was_switched_off_waits(sending, call, monkeypatch):
    create(call, "W-1", send=True)
    set_env(monkeypatch, OMIS_MAIL_SEND="off")
    with pytest.raises(SendingOff):
        send()
    assert sending.sent == [] and outbox(call, "W-1")[0]["state"] == "queued"


def test_automatic_nudges_go_once_per_passed_deadline(sending, call, monkeypatch):
    from functions.alerts.remind import notify

    set_env(monkeypatch, OMIS_AUTO_NUDGE="on")
    store = get_store()
    store.init()
    store.add_request("AUTO-1", now=NOW - dt.timedelta(hours=2))
    first = notify(store=store, now=NOW)
    second = notify(store=store, now=NOW + dt.timedelta(hours=2))
    assert first.nudged == ["AUTO-1"] and second.nudged == []
    send()
    assert len(sending.sent) == 1
    store.update_status("AUTO-1", "принята в работу", now=NOW + dt.timedelta(hours=2, minutes=1))
    third = notify(store=store, now=NOW + dt.timedelta(hours=4))      # the update deadline passed: a new one
    assert third.nudged == ["AUTO-1"]


def test_the_request_mail_reads_as_no_status_and_no_promise(sending, call):
    from functions.mail.parse import parse_mail

    create(call, "Q-1", position="Узел", description="Проверить", send=True, due="2026-12-20T18:00:00+03:00")
    send()
    (record,) = sending.sent
    settings = get_store().settings
    quoted = "Спасибо, получили.\n\n" + record.text      # a reply quoting our mail without a reply header
    parsed = parse_mail("RE: " + record.subject, quoted, received=NOW, tz=settings.timezone,
                        calendar=settings.calendar)
    assert parsed.statuses.get("q-1") is None and parsed.promises.get("q-1") is None


def test_send_mail_dry_run_names_what_would_go(sending, call, cli_main, capsys):
    create(call, "D-1", send=True)
    assert cli_main(["send-mail", "--dry-run"]) == 0
    assert "D-1" in capsys.readouterr().out and sending.sent == []
    assert queue_nudge(get_store(), "D-1", author="Анна", source="web") is not None
