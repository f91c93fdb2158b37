"""Bad input to the routes that change a request or handle unmatched mail: the right 4xx, nothing changed.

Edit (PATCH and the card's form), archive and restore, and the three actions on an unmatched
mail (attach, create, dismiss; JSON and form), through the app's own function objects on a real
Azurite. test_input_routes.py covers creating a request and changing its status the same way.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import pytest

from functions.storage import Store, UnmatchedMail
from functions.web import signing
from functions.web.http import MAX_BODY

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
RECEIVED = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def body(resp) -> dict[str, Any]:
    return json.loads(resp.get_body())


def token(omis_env: dict[str, str]) -> str:
    return signing.make_csrf_token(omis_env["OMIS_SECRET_KEY"], "Инженер")


@pytest.fixture
def request_and_mail(store: Store) -> str:
    """One request «X-1» and one unmatched mail; return the mail's id."""
    store.add_request("X-1", "Котельная")
    mail = UnmatchedMail(message_key="a" * 40, subject="Заявка выполнена", sender="Подрядчик <c@example.org>",
                         received=RECEIVED, numbers=(), message_id="<u1@example.org>",
                         reason="В письме не найден номер заявки.", text="Работы выполнены.")
    assert store.mail.keep_unmatched(mail)
    return mail.id


def snapshot(store: Store, item: str) -> tuple:
    """Return what must not change: the requests with their histories, and the unmatched mail."""
    requests_ = [store.get_request(r.number) for r in store.list_requests(limit=100).items]
    archived = [r.number for r in store.list_requests(archived=True, limit=100).items]
    return requests_, archived, store.mail.get_unmatched(item), store.counts()


def json_targets(item: str) -> list[tuple[str, str]]:
    return [("PATCH", "/api/requests/X-1"), ("POST", f"/api/mail/unmatched/{item}/attach"),
            ("POST", f"/api/mail/unmatched/{item}/create")]


def form_targets(item: str) -> list[str]:
    return ["/requests/X-1/edit", "/requests/X-1/archive", "/requests/X-1/restore",
            f"/mail/unmatched/{item}/attach", f"/mail/unmatched/{item}/create", f"/mail/unmatched/{item}/dismiss"]


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"])
def test_json_changes_refuse_other_content_types_with_415(call, store, request_and_mail, ctype):
    before = snapshot(store, request_and_mail)
    for method, path in [*json_targets(request_and_mail), ("POST", "/api/requests/X-1/restore"),
                         ("POST", f"/api/mail/unmatched/{request_and_mail}/dismiss")]:
        resp = call(method, path, json.dumps({"number": "X-1"}), {} if ctype is None else {"Content-Type": ctype})
        assert resp.status_code == 415 and "application/json" in body(resp)["error"], (method, path)
    assert snapshot(store, request_and_mail) == before


@pytest.mark.parametrize("raw", [b"{", b"[]", b'"X-1"', b"null", b'{"number": "\\ud800"}', b"\xff\xfe", b"[" * 60_000],
                         ids=repr)
def test_json_changes_refuse_malformed_bodies_with_400(call, store, request_and_mail, raw):
    before = snapshot(store, request_and_mail)
    for method, path in json_targets(request_and_mail):
        resp = call(method, path, raw, JSON)
        assert resp.status_code == 400 and body(resp)["error"], (method, path)
    assert snapshot(store, request_and_mail) == before


def test_json_changes_refuse_unknown_fields_and_bodies_over_64_kib(call, store, request_and_mail):
    before = snapshot(store, request_and_mail)
    for method, path in json_targets(request_and_mail):
        resp = call(method, path, json.dumps({"number": "X-1", "statuss": "выполнена"}), JSON)
        assert resp.status_code == 400 and body(resp)["fields"] == {"statuss": "Неизвестное поле."}, path
        big = json.dumps({"number": "X-1", "description": "д" * (MAX_BODY // 2)})
        assert call(method, path, big, JSON).status_code == 413, path
    assert snapshot(store, request_and_mail) == before


WRONG_EDITS = [
    ({"number": 17}, "number"), ({"number": "bad#1"}, "number"), ({"number": ""}, "number"),
    ({"position": ["a"]}, "position"), ({"position": "п" * 201}, "position"), ({"description": {"a": 1}}, "description"),
    ({"description": "a\x00b"}, "description"), ({"level": "platinum"}, "level"), ({"level": 1}, "level"),
    ({"due": 17}, "due"), ({"due": "завтра"}, "due"), ({"due": "2026-13-01"}, "due"), ({"due": "2000-01-01"}, "due"),
    ({"due": "9999-12-31T23:59:59-23:00"}, "due"), ({"due": "0001-01-01T00:00:00+23:00"}, "due"),
    ({"due": "9999-12-31T23:59:59Z"}, "due"), ({"due": "9001-01-01"}, "due"),
    ({"confirm_similar": "yes"}, "confirm_similar"),
]


@pytest.mark.parametrize("payload, field", WRONG_EDITS, ids=lambda v: repr(v)[:40])
def test_edit_with_a_wrong_value_is_400_naming_the_field(call, store, request_and_mail, payload, field):
    before = snapshot(store, request_and_mail)
    resp = call("PATCH", "/api/requests/X-1", json.dumps(payload), JSON)
    assert resp.status_code == 400 and field in body(resp)["fields"], body(resp)
    assert snapshot(store, request_and_mail) == before


@pytest.mark.parametrize("due", ["9000-12-31T23:59:59.999999Z", "2300-01-01T00:00:00.999999+03:00", "9000-12-31"])
def test_a_far_due_round_trips_to_the_microsecond_and_every_page_shows_it(call, store, request_and_mail, due):
    resp = call("PATCH", "/api/requests/X-1", json.dumps({"due": due}), JSON)
    assert resp.status_code == 200
    typed = datetime.fromisoformat(due.replace("Z", "+00:00")) if "T" in due else None
    if typed is not None:
        assert datetime.fromisoformat(body(resp)["due"].replace("Z", "+00:00")) == typed
    store.update_status("X-1", "требует уточнения", "уточните")   # a pause moves the resolve deadline later
    store.update_status("X-1", "принята в работу", "")
    for path in ("/", "/?sort=deadline", "/requests/X-1", "/api/requests/X-1", "/api/requests?sort=deadline"):
        assert call("GET", path).status_code == 200, path


def test_changes_of_an_unknown_request_are_404(call, store, request_and_mail, omis_env):
    before = snapshot(store, request_and_mail)
    assert call("PATCH", "/api/requests/NOPE", json.dumps({"position": "x"}), JSON).status_code == 404
    assert call("DELETE", "/api/requests/NOPE").status_code == 404
    assert call("POST", "/api/requests/NOPE/restore").status_code == 404
    resp = call("POST", f"/api/mail/unmatched/{request_and_mail}/attach", json.dumps({"number": "NOPE"}), JSON)
    assert resp.status_code == 404
    for action in ("edit", "archive", "restore"):
        fields = urlencode({"position": "x", "csrf_token": token(omis_env)})
        assert call("POST", f"/requests/NOPE/{action}", fields, FORM).status_code == 404, action
    assert snapshot(store, request_and_mail) == before


@pytest.mark.parametrize("item", ["", "x", "a" * 41, "0" * 17 + "_" + "z" * 40, "../" + "a" * 60, "%00" * 20,
                                  "0" * 17 + "_" + "b" * 40])
def test_an_unknown_unmatched_mail_is_404_on_every_action(call, store, request_and_mail, omis_env, item):
    before = snapshot(store, request_and_mail)
    for action, payload in (("attach", {"number": "X-1"}), ("create", {"number": "NEW-1"}), ("dismiss", {})):
        resp = call("POST", f"/api/mail/unmatched/{item}/{action}", json.dumps(payload), JSON)
        assert resp.status_code in (404, 405), (item, action)   # 405: an empty id leaves no route for POST
        fields = urlencode({**payload, "csrf_token": token(omis_env)})
        assert call("POST", f"/mail/unmatched/{item}/{action}", fields, FORM).status_code in (404, 405), (item, action)
    if item:   # GET /mail/unmatched/ is the list
        assert call("GET", f"/mail/unmatched/{item}").status_code == 404
    assert snapshot(store, request_and_mail) == before


def test_an_unknown_action_on_unmatched_mail_is_404(call, store, request_and_mail, omis_env):
    before = snapshot(store, request_and_mail)
    resp = call("POST", f"/api/mail/unmatched/{request_and_mail}/delete", json.dumps({}), JSON)
    assert resp.status_code == 404 and body(resp)["error"]
    fields = urlencode({"csrf_token": token(omis_env)})
    assert call("POST", f"/mail/unmatched/{request_and_mail}/delete", fields, FORM).status_code == 404
    assert snapshot(store, request_and_mail) == before


@pytest.mark.parametrize("bad", [None, "", "forged", "1.2"])
def test_change_forms_without_a_valid_csrf_token_are_403(call, store, request_and_mail, bad):
    before = snapshot(store, request_and_mail)
    for path in form_targets(request_and_mail):
        fields = {"number": "X-2", "position": "Насосная"}
        if bad is not None:
            fields["csrf_token"] = bad
        resp = call("POST", path, urlencode(fields), FORM)
        assert resp.status_code == 403 and "Форма устарела" in resp.get_body().decode("utf-8"), path
    assert snapshot(store, request_and_mail) == before


@pytest.mark.parametrize("ctype", [None, "application/json", "multipart/form-data; boundary=x"])
def test_change_forms_refuse_other_content_types_with_415(call, store, request_and_mail, omis_env, ctype):
    before = snapshot(store, request_and_mail)
    for path in form_targets(request_and_mail):
        fields = urlencode({"number": "X-2", "csrf_token": token(omis_env)})
        resp = call("POST", path, fields, {} if ctype is None else {"Content-Type": ctype})
        assert resp.status_code == 415 and resp.mimetype == "text/html", path
    assert snapshot(store, request_and_mail) == before


def test_the_edit_form_with_wrong_values_shows_the_card_again_with_400(call, store, request_and_mail, omis_env):
    before = snapshot(store, request_and_mail)
    for fields in ({"number": "bad#1"}, {"position": "п" * 201}, {"level": "platinum"}, {"due": "завтра"},
                   {"due": "2000-01-01T00:00"}):
        resp = call("POST", "/requests/X-1/edit", urlencode({**fields, "csrf_token": token(omis_env)}), FORM)
        assert resp.status_code == 400, fields
        assert "Котельная" in resp.get_body().decode("utf-8"), fields   # the card, with what it holds
    assert snapshot(store, request_and_mail) == before
