"""The JSON API of the everyday workflows: edit (PATCH), archive (DELETE) and restore, unmatched mail actions."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from functions.mail.sync import message_key
from functions.storage import UnmatchedMail

JSON = {"Content-Type": "application/json"}


def body(resp):
    return json.loads(resp.get_body())


def url(number: str, tail: str = "") -> str:
    return "/api/requests/" + quote(number, safe="") + tail


def create(call, number: str, **fields):
    resp = call("POST", "/api/requests", json.dumps({"number": number, **fields}), JSON)
    assert resp.status_code == 201, body(resp)
    return body(resp)


def patch(call, number: str, data: object):
    return call("PATCH", url(number), json.dumps(data), JSON)


def listed(call, query: str = "") -> list[str]:
    return [item["number"] for item in body(call("GET", "/api/requests" + query))["items"]]


# ----- PATCH: edit -------------------------------------------------------------------------

def test_patch_changes_the_given_fields_and_keeps_the_rest(call):
    create(call, "E-1", position="Котельная", description="Течь")
    resp = patch(call, "E-1", {"position": "Котельная №2", "level": "normal"})
    assert resp.status_code == 200
    changed = body(resp)
    assert changed["position"] == "Котельная №2" and changed["description"] == "Течь"
    assert changed["history"][-1]["comment"] == "Позиция: «Котельная №2»." and changed["history"][-1]["source"] == "api"


def test_patch_renames_and_the_old_number_stays_an_alias(call):
    create(call, "E-2")
    resp = patch(call, "E-2", {"number": "E-2A"})
    assert resp.status_code == 200 and body(resp)["number"] == "E-2A" and body(resp)["aliases"] == ["E-2"]
    assert body(call("GET", url("E-2")))["number"] == "E-2A"
    refused = call("POST", "/api/requests", json.dumps({"number": "e-2"}), JSON)
    assert refused.status_code == 409 and "E-2A" in body(refused)["error"]


@pytest.mark.parametrize("data, field", [
    ({"number": "bad#1"}, "number"),
    ({"number": ""}, "number"),
    ({"number": "x" * 33}, "number"),
    ({"number": 17}, "number"),
    ({"position": "п" * 201}, "position"),
    ({"description": "д" * 4001}, "description"),
    ({"level": "platinum"}, "level"),
    ({"due": "послезавтра"}, "due"),
    ({"due": "2000-01-01T10:00"}, "due"),
    ({"confirm_similar": "yes"}, "confirm_similar"),
    ({"status": "выполнена"}, "status"),
])
def test_patch_bad_field_is_400_naming_it_and_changes_nothing(call, data, field):
    before = create(call, "E-3", position="Узел")
    resp = patch(call, "E-3", data)
    assert resp.status_code == 400 and field in body(resp)["fields"] and body(resp)["error"]
    after = body(call("GET", url("E-3")))
    assert after["position"] == "Узел" and after["updated_at"] == before["updated_at"] and len(after["history"]) == 1


def test_patch_to_a_number_taken_by_another_request_is_409(call):
    create(call, "E-4")
    create(call, "E-5")
    resp = patch(call, "E-5", {"number": "e-4"})
    assert resp.status_code == 409 and "number" in body(resp)["fields"] and "E-4" in body(resp)["error"]
    assert body(call("GET", url("E-5")))["number"] == "E-5"


def test_patch_to_another_requests_old_number_is_409_naming_its_current_one(call):
    create(call, "E-6")
    patch(call, "E-6", {"number": "E-6B"})
    create(call, "E-7")
    resp = patch(call, "E-7", {"number": "E-6"})
    assert resp.status_code == 409 and "E-6B" in body(resp)["error"]


def test_patch_to_a_look_alike_number_needs_confirm_similar(call):
    create(call, "AB-17")                       # Latin
    create(call, "X-1")
    resp = patch(call, "X-1", {"number": "АВ-17"})   # Cyrillic А and В
    assert resp.status_code == 409 and "AB-17" in body(resp)["fields"]["number"]
    confirmed = patch(call, "X-1", {"number": "АВ-17", "confirm_similar": True})
    assert confirmed.status_code == 200 and body(confirmed)["number"] == "АВ-17"


def test_create_with_a_look_alike_number_needs_confirm_similar(call):
    create(call, "KM-5")
    resp = call("POST", "/api/requests", json.dumps({"number": "КМ-5"}), JSON)
    assert resp.status_code == 409 and "KM-5" in body(resp)["error"]
    assert listed(call) == ["KM-5"]
    confirmed = call("POST", "/api/requests", json.dumps({"number": "КМ-5", "confirm_similar": True}), JSON)
    assert confirmed.status_code == 201 and sorted(listed(call)) == ["KM-5", "КМ-5"]


def test_patch_of_an_archived_request_is_409(call):
    create(call, "E-8")
    assert call("DELETE", url("E-8")).status_code == 200
    resp = patch(call, "E-8", {"position": "Новая"})
    assert resp.status_code == 409 and "архив" in body(resp)["error"]
    assert body(call("GET", url("E-8")))["position"] == ""


def test_patch_of_an_unknown_request_is_404(call):
    resp = patch(call, "NOPE-1", {"position": "x"})
    assert resp.status_code == 404 and "NOPE-1" in body(resp)["error"]


def test_patch_due_sets_and_null_clears_it(call):
    create(call, "E-9")
    due = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
    resp = patch(call, "E-9", {"due": due.isoformat().replace("+00:00", "Z")})
    assert resp.status_code == 200 and body(resp)["due"] == due.isoformat().replace("+00:00", "Z")
    assert any(d["kind"] == "resolve" and d["at"] == body(resp)["due"] for d in body(resp)["deadlines"])
    cleared = patch(call, "E-9", {"due": None})
    assert cleared.status_code == 200 and body(cleared)["due"] is None
    assert cleared and body(cleared)["history"][-1]["comment"] == "Срок снят."


def test_patch_takes_only_json_objects_with_known_fields(call):
    create(call, "E-10")
    assert call("PATCH", url("E-10"), "position=x", {"Content-Type": "application/x-www-form-urlencoded"}
                ).status_code == 415
    assert call("PATCH", url("E-10"), "[1]", JSON).status_code == 400
    unknown = patch(call, "E-10", {"positon": "опечатка"})
    assert unknown.status_code == 400 and "positon" in body(unknown)["fields"]


def test_patch_with_nothing_to_change_answers_the_request_as_it_is(call):
    before = create(call, "E-11", position="Узел")
    resp = patch(call, "E-11", {"position": "Узел"})
    assert resp.status_code == 200 and body(resp)["updated_at"] == before["updated_at"]
    assert len(body(resp)["history"]) == 1


# ----- DELETE and restore: archive -----------------------------------------------------------

def test_delete_archives_and_restore_brings_it_back(call):
    create(call, "A-1")
    create(call, "A-2")
    resp = call("DELETE", url("A-1"))
    assert resp.status_code == 200 and body(resp)["archived"] is True and body(resp)["waiting_on"] == "nobody"
    assert listed(call) == ["A-2"] and listed(call, "?archived=1") == ["A-1"]
    assert body(resp)["history"][-1]["comment"] == "Заявка перенесена в архив."
    back = call("POST", url("A-1", "/restore"))          # no body needed
    assert back.status_code == 200 and body(back)["archived"] is False
    assert sorted(listed(call)) == ["A-1", "A-2"] and listed(call, "?archived=1") == []
    assert body(back)["history"][-1]["comment"] == "Заявка возвращена из архива."


def test_delete_twice_and_restore_twice_change_nothing_more(call):
    create(call, "A-3")
    first = body(call("DELETE", url("A-3")))
    again = call("DELETE", url("A-3"))
    assert again.status_code == 200 and len(body(again)["history"]) == len(first["history"]) == 2
    call("POST", url("A-3", "/restore"))
    twice = call("POST", url("A-3", "/restore"), "{}", JSON)
    assert twice.status_code == 200 and len(body(twice)["history"]) == 3


def test_status_change_of_an_archived_request_is_409(call):
    create(call, "A-4")
    call("DELETE", url("A-4"))
    resp = call("POST", url("A-4", "/status"), json.dumps({"status": "выполнена"}), JSON)
    assert resp.status_code == 409 and body(call("GET", url("A-4")))["status"] == "заявка отправлена"


def test_delete_and_restore_of_an_unknown_request_are_404(call):
    assert call("DELETE", url("NOPE-2")).status_code == 404
    assert call("POST", url("NOPE-2", "/restore")).status_code == 404


def test_restore_takes_no_fields(call):
    create(call, "A-5")
    call("DELETE", url("A-5"))
    resp = call("POST", url("A-5", "/restore"), json.dumps({"why": "нужна"}), JSON)
    assert resp.status_code == 400 and "why" in body(resp)["fields"]
    assert call("POST", url("A-5", "/restore"), "x=1", {"Content-Type": "text/plain"}).status_code == 415
    assert body(call("GET", url("A-5")))["archived"] is True


def test_archived_request_is_found_by_its_number_and_by_search_in_the_archive(call):
    create(call, "A-6", position="Склад")
    call("DELETE", url("A-6"))
    assert body(call("GET", url("A-6")))["archived"] is True
    assert listed(call, "?archived=1&q=" + quote("склад")) == ["A-6"] and listed(call, "?q=" + quote("склад")) == []


# ----- unmatched mail: attach, create, dismiss ----------------------------------------------

def keep(store, subject: str = "Заявка 555 — выполнена", text: str = "Работы по заявке 555 выполнены.",
         numbers: tuple[str, ...] = ("555",), key: str = "<u1@x>",
         received: datetime | None = None) -> str:
    mail = UnmatchedMail(message_key=message_key(key, None), subject=subject, sender="Подрядчик <c@x>",
                         received=received or datetime.now(timezone.utc) - timedelta(hours=1), numbers=numbers,
                         message_id=key, reason="номер не найден", text=text, sender_address="c@x")
    assert store.mail.keep_unmatched(mail)
    return mail.id


def action(call, item: str, name: str, data: object | None = None):
    raw = json.dumps(data) if data is not None else ""
    return call("POST", f"/api/mail/unmatched/{item}/{name}", raw, JSON if data is not None else {})


def open_ids(call) -> list[str]:
    return [m["id"] for m in body(call("GET", "/api/mail/unmatched"))["items"]]


def test_attach_applies_the_mail_once_and_takes_it_off_the_list(call, store):
    # The mail names 555, the request is 555-A: the person says the mail meant it, so its status counts.
    create(call, "555-A")
    item = keep(store)
    resp = action(call, item, "attach", {"number": "555-a"})
    assert resp.status_code == 201
    done = body(resp)
    assert done["number"] == "555-A" and done["status"] == "выполнена"
    assert done["mail"]["state"] == "attached" and done["mail"]["request"] == "555-A"
    assert done["mail"]["handled_by"] == "Инженер"
    assert open_ids(call) == []
    history = body(call("GET", url("555-A")))["history"]
    mails = [h for h in history if h["source"] == "mail"]        # at the mail's received time: first
    assert len(history) == 2 and [h["subject"] for h in mails] == ["Заявка 555 — выполнена"]
    again = action(call, item, "attach", {"number": "555-A"})
    assert again.status_code == 409 and "уже привязано" in body(again)["error"]
    assert len(body(call("GET", url("555-A")))["history"]) == 2


def test_attach_takes_effect_even_when_the_mail_is_older_than_the_last_status_change(call, store):
    create(call, "556")
    call("POST", url("556", "/status"), json.dumps({"status": "принята в работу"}), JSON)
    item = keep(store, received=datetime.now(timezone.utc) - timedelta(days=2))
    assert body(action(call, item, "attach", {"number": "556"}))["status"] == "выполнена"


@pytest.mark.parametrize("data, code, field", [
    ({"number": ""}, 400, "number"),
    ({"number": "   "}, 400, "number"),
    ({}, 400, "number"),
    ({"number": 555}, 400, "number"),
    ({"number": "НЕТ-ТАКОЙ"}, 404, None),
    ({"number": "555", "position": "2"}, 400, "position"),
])
def test_attach_with_a_bad_number_is_refused_and_the_mail_stays(call, store, data, code, field):
    item = keep(store)
    resp = action(call, item, "attach", data)
    assert resp.status_code == code and body(resp)["error"]
    if field:
        assert field in body(resp)["fields"]
    assert open_ids(call) == [item]


@pytest.mark.parametrize("name", ["attach", "create", "dismiss"])
@pytest.mark.parametrize("item", ["9" * 20 + "_" + "a" * 40, "garbage", "..%2F..%2Fx"])
def test_action_on_an_unknown_mail_is_404(call, store, name, item):
    create(call, "557")
    data = {"attach": {"number": "557"}, "create": {"number": "557-N"}, "dismiss": None}[name]
    resp = action(call, item, name, data)
    assert resp.status_code == 404 and body(resp)["error"]
    assert listed(call) == ["557"]


def test_unknown_action_is_404(call, store):
    item = keep(store)
    assert action(call, item, "forward", {}).status_code == 404
    assert open_ids(call) == [item]


def test_create_registers_a_request_from_the_mail_and_applies_it(call, store):
    item = keep(store, subject="Заявка 558 — принята в работу", text="Заявку 558 взяли в работу.", numbers=("558",))
    resp = action(call, item, "create", {"number": "558", "position": "Котельная", "description": "Из письма"})
    assert resp.status_code == 201
    made = body(resp)
    assert made["number"] == "558" and made["status"] == "принята в работу" and made["position"] == "Котельная"
    assert made["mail"]["state"] == "created" and made["mail"]["request"] == "558"
    assert [h["source"] for h in body(call("GET", url("558")))["history"]] == ["mail", "mail"]
    again = action(call, item, "create", {"number": "558-B"})
    assert again.status_code == 409 and listed(call) == ["558"]


@pytest.mark.parametrize("data, field", [
    ({"number": "bad#1"}, "number"),
    ({"number": ""}, "number"),
    ({"number": "559", "position": "п" * 201}, "position"),
    ({"number": "559", "extra": 1}, "extra"),
    ({"number": "559", "confirm_similar": 1}, "confirm_similar"),
])
def test_create_with_bad_fields_is_400_and_the_mail_stays(call, store, data, field):
    item = keep(store)
    resp = action(call, item, "create", data)
    assert resp.status_code == 400 and field in body(resp)["fields"]
    assert open_ids(call) == [item] and listed(call) == []


def test_create_with_a_taken_number_is_409(call, store):
    create(call, "560")
    item = keep(store)
    resp = action(call, item, "create", {"number": "560"})
    assert resp.status_code == 409 and "560" in body(resp)["fields"]["number"]
    assert open_ids(call) == [item] and len(body(call("GET", url("560")))["history"]) == 1


def test_create_from_mail_with_a_look_alike_number_needs_confirm_similar(call, store):
    create(call, "TK-9")                      # Latin
    item = keep(store)
    resp = action(call, item, "create", {"number": "ТК-9"})    # Cyrillic
    assert resp.status_code == 409 and "TK-9" in body(resp)["error"] and open_ids(call) == [item]
    confirmed = action(call, item, "create", {"number": "ТК-9", "confirm_similar": True})
    assert confirmed.status_code == 201 and body(confirmed)["number"] == "ТК-9"


def test_dismiss_takes_no_body_and_twice_is_the_same_answer(call, store):
    item = keep(store)
    resp = action(call, item, "dismiss")
    assert resp.status_code == 200
    assert body(resp)["state"] == "dismissed" and body(resp)["handled_by"] == "Инженер" and body(resp)["handled_at"]
    assert open_ids(call) == []
    dismissed = body(call("GET", "/api/mail/unmatched?dismissed=1"))["items"]
    assert [m["id"] for m in dismissed] == [item] and dismissed[0]["state"] == "dismissed"
    again = action(call, item, "dismiss", {})
    assert again.status_code == 200 and body(again)["handled_at"] == body(resp)["handled_at"]


def test_dismiss_takes_no_fields(call, store):
    item = keep(store)
    resp = action(call, item, "dismiss", {"reason": "спам"})
    assert resp.status_code == 400 and "reason" in body(resp)["fields"] and open_ids(call) == [item]


def test_a_dismissed_mail_cannot_be_attached_nor_an_attached_one_dismissed(call, store):
    create(call, "561")
    hidden = keep(store, key="<u2@x>")
    action(call, hidden, "dismiss")
    refused = action(call, hidden, "attach", {"number": "561"})
    assert refused.status_code == 409 and "скрыто" in body(refused)["error"]
    attached = keep(store, key="<u3@x>")
    assert action(call, attached, "attach", {"number": "561"}).status_code == 201
    assert action(call, attached, "dismiss").status_code == 409
    assert len(body(call("GET", url("561")))["history"]) == 2


def test_unmatched_actions_need_json(call, store):
    item = keep(store)
    resp = call("POST", f"/api/mail/unmatched/{item}/attach", "number=555",
                {"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415 and open_ids(call) == [item]
