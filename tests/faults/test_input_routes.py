"""Bad input to every route: each answered with the right 4xx, nothing stored, the host alive.

Through the app's own function objects (devhost.dispatch) on a real Azurite, and — for
malformed HTTP that never reaches a function — through the real local host on a socket.
tests/integration/test_api.py and test_web.py hold the first cases of each kind; these extend them.
"""
from __future__ import annotations

import html
import json
import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest

from functions.mail.sync import message_key
from functions.model import STATUSES, utcnow
from functions.storage.tables import encode_cursor
from functions.web import signing
from functions.web.http import MAX_BODY

from .conftest import serving

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SENT = "заявка отправлена"


def body(resp) -> dict:
    return json.loads(resp.get_body())


def text(resp) -> str:
    return resp.get_body().decode("utf-8")


def token(omis_env, author: str = "Инженер", **kwargs) -> str:
    return signing.make_csrf_token(omis_env["OMIS_SECRET_KEY"], author, **kwargs)


def form(fields: dict[str, str] | list[tuple[str, str]]) -> str:
    return urlencode(fields)


def assert_nothing_stored(store) -> None:
    assert store.list_requests().items == [] and store.list_requests(archived=True).items == []
    assert set(store.counts().values()) == {0}


def assert_unchanged(store, number: str) -> None:
    request = store.get_request(number)
    assert request.status == SENT and request.comment == "" and len(request.history) == 1


# ----- every route × methods it does not take -----------------------------------------------

# An example path of each route: the methods its routes take (the Allow of a 405 from the host), and
# the methods the resource itself answers (a function's own 405 names only those). The HTML 404 page
# is a GET catch-all ({*path}), so GET is among the methods of every path; `api/requests/{*rest}`
# also matches /api/requests (its number then is empty, answered 404).
ROUTES = {
    "/": ({"GET"}, {"GET"}),
    "/requests": ({"GET", "POST"}, {"GET"}),  # requests/{*rest} matches it too (as under the real host); see below
    "/new": ({"GET"}, {"GET"}),
    "/add_request": ({"GET", "POST"}, {"POST"}),
    "/requests/X-1": ({"GET", "POST"}, {"GET"}),
    "/requests/X-1/status": ({"GET", "POST"}, {"POST"}),
    "/mail/unmatched": ({"GET"}, {"GET"}),
    "/static/omis.css": ({"GET"}, {"GET"}),
    "/healthz": ({"GET"}, {"GET"}),
    "/api/requests": ({"GET", "POST", "PATCH", "DELETE"}, {"GET", "POST"}),
    "/api/requests/X-1": ({"GET", "POST", "PATCH", "DELETE"}, {"GET", "PATCH", "DELETE"}),
    "/api/requests/X-1/status": ({"GET", "POST", "PATCH", "DELETE"}, {"POST"}),
    "/api/mail/unmatched": ({"GET"}, {"GET"}),
}
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "FOO"]


def allow(resp) -> set[str]:
    return set(resp.headers["Allow"].split(", "))


@pytest.mark.parametrize("path", list(ROUTES))
def test_every_route_answers_unknown_methods_with_405_and_allow(call, store, path):
    routed, _ = ROUTES[path]
    payload = json.dumps({"number": "M-1", "status": "выполнена"})
    for method in (m for m in METHODS if m not in routed):
        resp = call(method, path, payload, JSON)
        assert resp.status_code == 405, (method, path)
        assert allow(resp) == routed, (method, path)
    assert_nothing_stored(store)


API_RESOURCES = [p for p in ROUTES if p.startswith("/api/requests/")]


@pytest.mark.parametrize("path", API_RESOURCES)
def test_an_api_resource_answers_the_methods_it_does_not_take_with_405_naming_those_it_does(call, store, path):
    store.add_request("X-1")
    routed, takes = ROUTES[path]
    for method in routed - takes:
        resp = call(method, path, json.dumps({"status": "выполнена"}), JSON)
        assert resp.status_code == 405 and allow(resp) == takes, (method, path)
        assert body(resp)["error"]
    assert_unchanged(store, "X-1")


@pytest.mark.parametrize("path", [p for p, (routed, _) in ROUTES.items() if "POST" not in routed])
def test_post_to_a_read_only_route_is_405(call, store, omis_env, path):
    resp = call("POST", path, form({"number": "M-2", "csrf_token": token(omis_env)}), FORM)
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET"
    assert_nothing_stored(store)


def test_post_to_the_bare_list_is_405_from_the_catch_all(call, store, omis_env):
    resp = call("POST", "/requests", form({"number": "M-3", "csrf_token": token(omis_env)}), FORM)
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET"
    assert_nothing_stored(store)


def test_get_of_the_form_target_is_the_404_page(call, store):
    # Changed with the HTML 404 page: GET reaches the GET catch-all, which knows no page /add_request.
    resp = call("GET", "/add_request")
    assert resp.status_code == 404 and resp.mimetype == "text/html" and "Такой страницы нет" in text(resp)
    assert_nothing_stored(store)


@pytest.mark.parametrize("path", ["/", "/new", "/api/requests", "/healthz", "/static/omis.css"])
def test_head_is_answered_like_get(call, path):
    assert call("HEAD", path).status_code == 200


def test_post_to_a_request_without_an_action_changes_nothing(call, store, omis_env):
    store.add_request("X-1")
    fields = form({"status": "выполнена", "csrf_token": token(omis_env)})
    assert call("POST", "/requests/X-1", fields, FORM).status_code == 404
    resp = call("POST", "/api/requests/X-1", json.dumps({"status": "выполнена"}), JSON)
    assert resp.status_code == 405 and allow(resp) == {"GET", "PATCH", "DELETE"} and body(resp)["error"]
    assert_unchanged(store, "X-1")


# ----- bodies: size, content type, malformed --------------------------------------------------

def _big_json(size: int) -> str:
    head = json.dumps({"number": "BIG-1", "description": ""})
    return head[:-2] + "x" * (size - len(head)) + '"}'


@pytest.mark.parametrize("path", ["/api/requests", "/api/requests/X-1/status"])
def test_json_body_one_byte_over_64_kib_is_413(call, store, path):
    store.add_request("X-1")
    assert len(_big_json(MAX_BODY + 1)) == MAX_BODY + 1
    resp = call("POST", path, _big_json(MAX_BODY + 1), JSON)
    assert resp.status_code == 413 and "64 КиБ" in body(resp)["error"]
    assert store.get_request("BIG-1") is None
    assert_unchanged(store, "X-1")


def test_json_body_of_exactly_64_kib_is_read_and_judged_on_its_fields(call, store):
    resp = call("POST", "/api/requests", _big_json(MAX_BODY), JSON)
    assert resp.status_code == 400 and "description" in body(resp)["fields"]


@pytest.mark.parametrize("path", ["/add_request", "/requests/X-1/status"])
def test_form_body_over_64_kib_is_413(call, store, omis_env, path):
    store.add_request("X-1")
    fields = {"number": "BIG-2", "status": "выполнена", "csrf_token": token(omis_env),
              "comment": "к" * (MAX_BODY // 6 + 10), "description": "д"}
    assert len(form(fields)) > MAX_BODY
    resp = call("POST", path, form(fields), FORM)
    assert resp.status_code == 413 and "64 КиБ" in text(resp)
    assert store.get_request("BIG-2") is None
    assert_unchanged(store, "X-1")


@pytest.mark.parametrize("declared", ["99999999999999999999999", "65537", "1" + "0" * 5000])
def test_declared_length_over_64_kib_is_413_whatever_the_body(call, store, declared):
    resp = call("POST", "/api/requests", json.dumps({"number": "CL-1"}), {**JSON, "Content-Length": declared})
    assert resp.status_code == 413
    assert_nothing_stored(store)


@pytest.mark.parametrize("declared", ["abc", "-1", "²", "١٢", "1e3", " ", "0x10"])
def test_garbage_content_length_is_not_a_server_error(call, store, declared):
    # The real front end refuses these before the function; the function must not fall over either.
    resp = call("POST", "/api/requests", json.dumps({"number": "CL-2"}), {**JSON, "Content-Length": declared})
    assert resp.status_code == 201
    resp = call("POST", "/add_request", form({"number": "CL-3"}), {**FORM, "Content-Length": declared})
    assert resp.status_code == 403  # no CSRF token: judged as a form, not a crash


@pytest.mark.parametrize("ctype", [None, "", "text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/json-patch+json",
                                   "application/jsonx", "text/json", "application/javascript", "application/json,"])
@pytest.mark.parametrize("path", ["/api/requests", "/api/requests/X-1/status"])
def test_json_api_refuses_other_content_types_with_415(call, store, path, ctype):
    store.add_request("X-1")
    headers = {} if ctype is None else {"Content-Type": ctype}
    resp = call("POST", path, json.dumps({"number": "CT-1", "status": "выполнена"}), headers)
    assert resp.status_code == 415 and "application/json" in body(resp)["error"]
    assert store.get_request("CT-1") is None
    assert_unchanged(store, "X-1")


@pytest.mark.parametrize("ctype", ["application/json", "Application/JSON; charset=UTF-8", " application/json ; x=1"])
def test_json_content_type_is_matched_without_case_and_parameters(call, ctype):
    assert call("POST", "/api/requests", json.dumps({"number": "CT-2"}), {"Content-Type": ctype}).status_code == 201


@pytest.mark.parametrize("ctype", [None, "application/json", "text/plain", "multipart/form-data; boundary=x"])
@pytest.mark.parametrize("path", ["/add_request", "/requests/X-1/status"])
def test_forms_refuse_other_content_types_with_415(call, store, omis_env, path, ctype):
    store.add_request("X-1")
    headers = {} if ctype is None else {"Content-Type": ctype}
    resp = call("POST", path, form({"number": "CT-3", "status": "выполнена", "csrf_token": token(omis_env)}), headers)
    assert resp.status_code == 415 and resp.mimetype == "text/html"
    assert store.get_request("CT-3") is None
    assert_unchanged(store, "X-1")


MALFORMED_JSON = [
    b"", b" ", b"{", b"{]", b'{"number": "A"', b"{'number': 'A'}", b'{"number": "A"}x', b"\xef\xbb\xbf{}",
    b"\xff\xfe{\x00}\x00", b'{"number": "\xff"}', b'{"number": "A\\x41"}', b"nul", b"[" * 60_000, b'{"a":' * 12_000,
    b'{"number": "\\ud800"}', b'{"\\udfff": 1}', b'{"number": "L-1", "position": "a\\ud83d"}',
]


@pytest.mark.parametrize("raw", MALFORMED_JSON, ids=lambda raw: repr(raw[:24]))
@pytest.mark.parametrize("path", ["/api/requests", "/api/requests/X-1/status"])
def test_malformed_json_is_400_and_nothing_changes(call, store, path, raw):
    store.add_request("X-1")
    resp = call("POST", path, raw, JSON)
    assert resp.status_code == 400 and body(resp)["error"]
    assert [r.number for r in store.list_requests().items] == ["X-1"]
    assert_unchanged(store, "X-1")


@pytest.mark.parametrize("raw", [b"[]", b'["number", "A"]', b'"A-1"', b"42", b"null", b"true", b"1e400", b"NaN"])
@pytest.mark.parametrize("path", ["/api/requests", "/api/requests/X-1/status"])
def test_json_that_is_not_an_object_is_400(call, store, path, raw):
    store.add_request("X-1")
    resp = call("POST", path, raw, JSON)
    assert resp.status_code == 400 and body(resp)["error"] == "Ожидается JSON-объект."
    assert_unchanged(store, "X-1")


WRONG_TYPES = [["A-1"], {"n": "A-1"}, None, True, False, 17, 17.5, -1, [], {}]


@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
@pytest.mark.parametrize("field", ["number", "position", "description"])
def test_new_request_fields_of_wrong_types_are_400(call, store, field, value):
    payload = {"number": "T-1", "position": "", "description": "", field: value}
    resp = call("POST", "/api/requests", json.dumps(payload), JSON)
    if field != "number" and value is None:  # null position/description means "empty"
        assert resp.status_code == 201 and body(resp)[field] == ""
        return
    assert resp.status_code == 400 and field in body(resp)["fields"]
    assert_nothing_stored(store)


@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
@pytest.mark.parametrize("field", ["status", "comment"])
def test_status_change_fields_of_wrong_types_are_400(call, store, field, value):
    store.add_request("X-1")
    payload = {"status": "выполнена", "comment": "", field: value}
    resp = call("POST", "/api/requests/X-1/status", json.dumps(payload), JSON)
    if field == "comment" and value is None:  # null comment means "no comment"
        assert resp.status_code == 200
        return
    assert resp.status_code == 400 and field in body(resp)["fields"]
    assert_unchanged(store, "X-1")


def test_unknown_fields_of_a_status_change_are_400_not_ignored(call, store):
    # A typo («commment») would otherwise save the status and silently drop the comment.
    store.add_request("X-1")
    resp = call("POST", "/api/requests/X-1/status", json.dumps({"status": "выполнена", "commment": "готово"}), JSON)
    assert resp.status_code == 400 and body(resp)["fields"] == {"commment": "Неизвестное поле."}
    assert_unchanged(store, "X-1")


def test_repeated_json_keys_take_the_last_value(call, store):
    resp = call("POST", "/api/requests", b'{"number": "bad#", "number": "DUP-1"}', JSON)
    assert resp.status_code == 201 and body(resp)["number"] == "DUP-1"


# ----- request numbers ------------------------------------------------------------------------

FORBIDDEN = ["#", "?", "\\", "%", " ", "\t", "\n", "\r", '"', "'", "`", "<", ">", "&", "+", "=", ";", ":", ",", "!",
             "@", "$", "*", "|", "~", "^", "{", "}", "[", "]", "(", ")", "\x00", "\x01", "\x1b", "\x1f", "\x7f",
             "\x85", "\u00a0", "\u2028", "\u200b", "\u200d", "\u200e", "\u200f", "\u202e", "\u2066", "\ufeff",
             "\u0301", "\U0001f600", "\u2764\ufe0f", "\ufffd", "\U000e0041", "№"]


@pytest.mark.parametrize("char", FORBIDDEN, ids=lambda c: f"U+{ord(c[0]):04X}")
def test_number_with_a_forbidden_character_is_400_in_the_api(call, store, char):
    resp = call("POST", "/api/requests", json.dumps({"number": f"AB{char}17"}), JSON)
    assert resp.status_code == 400 and set(body(resp)["fields"]) == {"number"}
    assert_nothing_stored(store)


@pytest.mark.parametrize("char", ["#", "?", "%", "&", "=", "+", " ", "\n", '"', "<", ">", "\x00", "\u202e", "\u200d",
                                  "\U0001f600"], ids=lambda c: f"U+{ord(c):04X}")
def test_number_with_a_forbidden_character_is_400_in_the_form(call, store, omis_env, char):
    resp = call("POST", "/add_request", form({"number": f"AB{char}17", "position": "П", "csrf_token": token(omis_env)}),
                FORM)
    assert resp.status_code == 400
    page = text(resp)
    assert 'id="number-error"' in page and 'value="П"' in page  # the error, and what was typed comes back
    assert_nothing_stored(store)


def test_a_refused_number_is_shown_back_as_text(call, store, omis_env):
    number = '"><script>alert(1)</script>'
    resp = call("POST", "/add_request", form({"number": number, "csrf_token": token(omis_env)}), FORM)
    page = text(resp)
    assert resp.status_code == 400 and "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
    assert_nothing_stored(store)


@pytest.mark.parametrize("number", [".", "..", "./A", "A/.", "A/../B", "../etc/passwd", "A/./B", "ab/..", "\u0390" * 32,
                                    "\u00df" * 17, "x" * 33, "Ж" * 33, "  ", "", "\u3000"])
def test_numbers_that_could_not_be_stored_or_opened_are_400(call, store, number):
    resp = call("POST", "/api/requests", json.dumps({"number": number}), JSON)
    assert resp.status_code == 400 and set(body(resp)["fields"]) == {"number"}
    assert_nothing_stored(store)


@pytest.mark.parametrize("number", ["1.2", "...", "A.B/C", "x" * 32, "Ж" * 32, "\u00df" * 16, "\U0001d400" * 32,
                                    "ＡＢ-１７", "٣٤-5", "ТО-2026/77", "a_b-c/d.e", "\u0130-1"])
def test_unusual_but_valid_numbers_round_trip(call, store, number):
    resp = call("POST", "/api/requests", json.dumps({"number": number}), JSON)
    assert resp.status_code == 201 and body(resp)["number"] == number
    location = resp.headers["Location"]
    assert location == "/api/requests/" + quote(number, safe="")
    assert body(call("GET", location))["number"] == number
    assert number in html.unescape(text(call("GET", "/requests/" + quote(number, safe=""))))


@pytest.mark.parametrize("raw, stored", [(" AB-17 ", "AB-17"), ("\tAB-17\n", "AB-17"), ("\u00a0AB-17\u2003", "AB-17"),
                                         ("\x1cAB-17\x1f", "AB-17"), ("\u3000AB-17", "AB-17")])
def test_whitespace_around_a_number_is_trimmed(call, store, raw, stored):
    resp = call("POST", "/api/requests", json.dumps({"number": raw}), JSON)
    assert resp.status_code == 201 and body(resp)["number"] == stored


def test_look_alike_letters_make_different_numbers_only_when_confirmed(call, store):
    # Only letter case is ignored in matching: Cyrillic «АВ-17», Latin «AB-17» and full-width «ＡＢ-１７»
    # can be three requests. They would be confused by a person, though, so the second and third
    # are refused (409, naming the first) until the engineer confirms they are different requests.
    assert call("POST", "/api/requests", json.dumps({"number": "AB-17"}), JSON).status_code == 201
    existing = ["AB-17"]
    for number in ("АВ-17", "ＡＢ-１７"):
        resp = call("POST", "/api/requests", json.dumps({"number": number}), JSON)
        message = body(resp)["fields"]["number"]
        assert resp.status_code == 409 and any(f"«{n}»" in message for n in existing), number
        resp = call("POST", "/api/requests", json.dumps({"number": number, "confirm_similar": True}), JSON)
        assert resp.status_code == 201 and body(resp)["number"] == number
        existing.append(number)
    assert body(call("GET", "/api/requests/" + quote("АВ-17")))["number"] == "АВ-17"
    assert body(call("GET", "/api/requests/AB-17"))["number"] == "AB-17"
    for twin in ("ав-17", "ab-17", "Ab-17", "ａｂ-１７"):
        resp = call("POST", "/api/requests", json.dumps({"number": twin, "confirm_similar": True}), JSON)
        assert resp.status_code == 409, twin    # the same number in another letter case: no confirming that
    assert len(store.list_requests().items) == 3


def test_over_long_free_text_is_400_and_exact_limits_are_accepted(call, store):
    resp = call("POST", "/api/requests", json.dumps({"number": "LIM-1", "position": "п" * 200,
                                                     "description": "д" * 4000}), JSON)
    assert resp.status_code == 201
    resp = call("POST", "/api/requests/LIM-1/status", json.dumps({"status": "выполнена", "comment": "к" * 2000}), JSON)
    assert resp.status_code == 200 and body(resp)["comment"] == "к" * 2000
    for field, size in (("position", 201), ("description", 4001)):
        resp = call("POST", "/api/requests", json.dumps({"number": "LIM-2", field: "x" * size}), JSON)
        assert resp.status_code == 400 and set(body(resp)["fields"]) == {field}
    assert store.get_request("LIM-2") is None


# Typed text -> what is stored: bidi controls and default-ignorable characters are removed.
UNICODE_TEXT = {"\u200fיוםֿ\u200f": "יוםֿ", "a\u202ecba": "acba", "👩\u200d🔧 + ❤️": "👩🔧 + ❤", "й = и\u0306": "й = и\u0306",
                "Ｐｏｓ ７": "Ｐｏｓ ７", "\U0001d400\U0001f1f7\U0001f1fa": "\U0001d400\U0001f1f7\U0001f1fa",
                "tab\there": "tab\there", "\ufeffbom": "bom", "\ufffe\uffff": "\ufffe\uffff",
                "строка\nстрока": "строка\nстрока", "строка\r\nстрока": "строка\nстрока"}


@pytest.mark.parametrize(("value", "stored"), UNICODE_TEXT.items(), ids=repr)
def test_unicode_free_text_is_stored_without_invisible_characters_and_shown_escaped(call, store, value, stored):
    resp = call("POST", "/api/requests", json.dumps({"number": "U-1", "position": value[:200], "description": value}),
                JSON)
    assert resp.status_code == 201
    got = body(call("GET", "/api/requests/U-1"))
    assert got["position"] == stored and got["description"] == stored
    resp = call("POST", "/api/requests/U-1/status", json.dumps({"status": "выполнена", "comment": value}), JSON)
    assert resp.status_code == 200 and body(resp)["comment"] == stored
    assert call("GET", "/").status_code == 200 and call("GET", "/requests/U-1").status_code == 200


@pytest.mark.parametrize("field", ["position", "description", "comment"])
@pytest.mark.parametrize("bad", ["bell\x07", "esc\x1b[31m", "del\x7f", "cr\ronly", "next\x85line"], ids=repr)
def test_control_characters_in_free_text_are_400_naming_the_field(call, store, field, bad):
    store.add_request("X-1")
    if field == "comment":
        resp = call("POST", "/api/requests/X-1/status", json.dumps({"status": "выполнена", "comment": bad}), JSON)
    else:
        resp = call("POST", "/api/requests", json.dumps({"number": "C-1", field: bad}), JSON)
    assert resp.status_code == 400 and set(body(resp)["fields"]) == {field}
    assert "управляющий символ" in body(resp)["fields"][field]
    assert store.get_request("C-1") is None
    assert_unchanged(store, "X-1")


@pytest.mark.parametrize("field", ["position", "description", "comment"])
@pytest.mark.parametrize("bad", ["a\x00b", "\x00"])
def test_nul_in_free_text_is_400(call, store, field, bad):
    store.add_request("X-1")
    if field == "comment":
        resp = call("POST", "/api/requests/X-1/status", json.dumps({"status": "выполнена", "comment": bad}), JSON)
    else:
        resp = call("POST", "/api/requests", json.dumps({"number": "N-1", field: bad}), JSON)
    assert resp.status_code == 400 and field in body(resp)["fields"]
    assert store.get_request("N-1") is None
    assert_unchanged(store, "X-1")


def test_a_lone_surrogate_that_reached_storage_does_not_break_the_pages(call, store):
    # The routes refuse "\ud800"; mail text (Graph JSON) is not checked on the way in, and one such
    # comment used to turn the list, the card and the API into 500s for everybody.
    store.add_request("S-1")
    store.apply_mail(store.requests.resolve("S-1"), message=message_key("<m1@x>", None), status="выполнена",
                     comment="готово \ud800", received=utcnow(), message_id="<m1@x>", subject="Re: \udfff",
                     position="7")
    for path in ("/", "/requests", "/requests/S-1", "/api/requests", "/api/requests/S-1"):
        resp = call("GET", path)
        assert resp.status_code == 200, path
        assert "готово ?" in resp.get_body().decode("utf-8"), path


def test_nul_and_bad_utf8_in_a_form_are_400(call, store, omis_env):
    for raw in ("number=N-2&position=a%00b", "number=N-2&description=%FF%FE", "number=N-2&position=%ED%A0%80"):
        resp = call("POST", "/add_request", raw + "&csrf_token=" + quote(token(omis_env)), FORM)
        assert resp.status_code == 400, raw
    resp = call("POST", "/add_request", b"number=N-2&position=\xff", FORM)
    assert resp.status_code == 400
    assert_nothing_stored(store)


# ----- status values ----------------------------------------------------------------------------

NOT_STATUSES = ["готово", "ВЫПОЛНЕНА", " выполнена", "выполнена ", "выполнена\x00", "", "выпoлнена",  # Latin «o»
                "выполнена\u200f", "принята  в работу", "0", "done", STATUSES[3] * 2]


@pytest.mark.parametrize("status", NOT_STATUSES, ids=repr)
def test_status_outside_the_list_is_400_in_the_api(call, store, status):
    store.add_request("X-1")
    resp = call("POST", "/api/requests/X-1/status", json.dumps({"status": status, "comment": "x"}), JSON)
    assert resp.status_code == 400 and "status" in body(resp)["fields"]
    assert_unchanged(store, "X-1")


@pytest.mark.parametrize("status", NOT_STATUSES, ids=repr)
def test_status_outside_the_list_is_400_in_the_form(call, store, omis_env, status):
    store.add_request("X-1")
    resp = call("POST", "/requests/X-1/status",
                form({"status": status, "comment": "x", "csrf_token": token(omis_env)}), FORM)
    assert resp.status_code == 400
    assert_unchanged(store, "X-1")


@pytest.mark.parametrize("status", NOT_STATUSES[:4], ids=repr)
def test_status_filter_outside_the_list_is_400(call, status):
    assert call("GET", "/?" + urlencode({"status": status})).status_code == 400
    assert call("GET", "/api/requests?" + urlencode({"status": status})).status_code == 400


# ----- CSRF ---------------------------------------------------------------------------------------

def _bad_tokens(omis_env) -> dict[str, str | None]:
    key, now = omis_env["OMIS_SECRET_KEY"], utcnow().timestamp()
    good = signing.make_csrf_token(key, "Инженер")
    issued, mac = good.split(".", 1)
    return {
        "missing": None,
        "empty": "",
        "garbage": "not-a-token",
        "dot only": ".",
        "no mac": issued + ".",
        "no time": "." + mac,
        "wrong key": signing.make_csrf_token("other-key", "Инженер"),
        "other author": signing.make_csrf_token(key, "mallory@example.org"),
        "expired": signing.make_csrf_token(key, "Инженер", now=now - 13 * 3600),
        "from the future": signing.make_csrf_token(key, "Инженер", now=now + 3600),
        "superscript time": "²." + mac,
        "arabic digits": "".join(chr(0x660 + int(d)) for d in issued) + "." + mac,
        "huge time": "9" * 150 + "." + mac,
        "over long": good + "A" * 300,
        "mac flipped": issued + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B"),
        "non-ascii mac": issued + "." + "ж" * len(mac),
    }


BAD_TOKEN_KINDS = ["missing", "empty", "garbage", "dot only", "no mac", "no time", "wrong key", "other author",
                   "expired", "from the future", "superscript time", "arabic digits", "huge time", "over long",
                   "mac flipped", "non-ascii mac"]


@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
def test_forged_csrf_tokens_are_403_on_both_forms(call, store, omis_env, kind):
    store.add_request("X-1")
    bad = _bad_tokens(omis_env)[kind]
    fields = {"number": "F-1", "status": "выполнена", "comment": "набранный текст"}
    if bad is not None:
        fields["csrf_token"] = bad
    for path in ("/add_request", "/requests/X-1/status"):
        resp = call("POST", path, form(fields), FORM)
        page = text(resp)
        # Refused, and shown again with what was typed, to send once more from our own page.
        assert resp.status_code == 403 and "Форма устарела" in page and "ничего не сохранено" in page, path
        assert 'value="F-1"' in page, path
        [shown] = re.findall(r'name="csrf_token" value="([^"]*)"', page)
        assert shown != bad and signing.check_csrf_token(omis_env["OMIS_SECRET_KEY"], "Инженер", shown), path
    assert store.get_request("F-1") is None
    assert_unchanged(store, "X-1")


def test_a_token_shown_to_one_user_is_refused_for_another(call, store, omis_env):
    anna = token(omis_env, "anna@example.org")
    resp = call("POST", "/add_request", form({"number": "F-2", "csrf_token": anna}),
                {**FORM, "X-MS-CLIENT-PRINCIPAL-NAME": "boris@example.org"})
    assert resp.status_code == 403 and store.get_request("F-2") is None


def test_repeated_fields_take_the_first_value(call, store, omis_env):
    # Decided: in a form, the first of repeated fields counts (what a browser sends first is the visible one).
    good, bad = token(omis_env), "forged"
    resp = call("POST", "/add_request", form([("csrf_token", bad), ("csrf_token", good), ("number", "R-1")]), FORM)
    assert resp.status_code == 403
    resp = call("POST", "/add_request", form([("csrf_token", good), ("csrf_token", bad), ("number", "R-1"),
                                              ("number", "R-2"), ("position", "первая"), ("position", "вторая")]), FORM)
    assert resp.status_code == 303
    assert store.get_request("R-1").position == "первая" and store.get_request("R-2") is None
    resp = call("POST", "/requests/R-1/status", form([("csrf_token", good), ("status", "выполнена"),
                                                      ("status", "отклонена")]), FORM)
    assert resp.status_code == 303 and store.get_request("R-1").status == "выполнена"


def test_a_form_with_too_many_fields_is_400(call, store, omis_env):
    fields = [("number", "R-3"), ("csrf_token", token(omis_env))] + [(f"f{i}", "x") for i in range(30)]
    resp = call("POST", "/add_request", form(fields), FORM)
    assert resp.status_code == 400 and store.get_request("R-3") is None


# ----- list parameters ----------------------------------------------------------------------------

@pytest.fixture
def three(store):
    for number, position in (("Q-1", "a.*b"), ("Q-2", "(x)[y]"), ("Q-3", "обычная")):
        store.add_request(number, position)
    return store


@pytest.mark.parametrize("limit, code", [("0", 400), ("1", 200), ("100", 200), ("101", 400), ("-1", 400), ("1e3", 400),
                                         ("", 200), ("²", 400), ("٣", 400), (" 5", 400), ("5 ", 400), ("+5", 400),
                                         ("0x10", 400), ("1.0", 400), ("9" * 5000, 400), ("007", 200)])
def test_limit_edges(call, three, limit, code):
    for path in ("/api/requests", "/api/mail/unmatched"):
        resp = call("GET", f"{path}?" + urlencode({"limit": limit}))
        assert resp.status_code == code, (path, limit)
        if code == 400:
            assert set(body(resp)["fields"]) == {"limit"}
    if limit == "1":
        assert len(body(call("GET", "/api/requests?limit=1"))["items"]) == 1


def _cursors(store) -> dict[str, str]:
    store.update_status("Q-1", "выполнена", "x")
    status_cursor = store.list_requests(status="заявка отправлена", limit=1).next_cursor
    return {
        "garbage": "!!!",
        "not base64": "@@@@",
        "invalid utf-8": "__4",  # base64 of b"\xff\xfe"
        "another list": status_cursor,
        "a row key of another kind": encode_cursor("h_q-1_00000001"),
        "over long": "A" * 5000,
        "over long key": encode_cursor("u_" + "9" * 3000),
        "percent": "%25%00",
        "unicode": "курсор",
    }


def test_bad_cursors_are_400_on_every_list(call, three):
    cursors = _cursors(three)
    for kind, cursor in cursors.items():
        query = urlencode({"cursor": cursor})
        resp = call("GET", "/api/requests?" + query)
        assert resp.status_code == 400 and "cursor" in body(resp)["fields"], kind
        assert call("GET", "/?" + query).status_code == 400, kind
        assert call("GET", "/requests?" + query).status_code == 400, kind
        if kind not in ("another list", "a row key of another kind"):  # the mail list's keys are its own
            assert call("GET", "/mail/unmatched?" + query).status_code == 400, kind
            assert call("GET", "/api/mail/unmatched?" + query).status_code == 400, kind


def test_a_cursor_of_the_filtered_list_works_only_there(call, three):
    cursor = _cursors(three)["another list"]
    resp = call("GET", "/api/requests?" + urlencode({"status": "заявка отправлена", "cursor": cursor}))
    assert resp.status_code == 200 and len(body(resp)["items"]) == 1


@pytest.mark.parametrize("q, expected", [(".*", ["Q-1"]), ("(x)[y]", ["Q-2"]), ("[", ["Q-2"]), ("\\", []), ("^", []),
                                         ("$", []), ("a.*b", ["Q-1"]), ("a.b", []), ("%", []), ("_", []),
                                         ("' or 1 eq 1 or '", []), ("\x00", []), ("\u202e", [])])
def test_search_text_is_matched_literally(call, three, q, expected):
    got = body(call("GET", "/api/requests?" + urlencode({"q": q})))["items"]
    assert [i["number"] for i in got] == expected
    assert call("GET", "/?" + urlencode({"q": q})).status_code == 200


def test_search_of_10000_characters_is_answered(call, three):
    q = "ж" * 10_000
    assert body(call("GET", "/api/requests?" + urlencode({"q": q})))["items"] == []
    page = call("GET", "/?" + urlencode({"q": q}))
    assert page.status_code == 200 and "ж" * 201 not in text(page)  # the page searches the first 200
    assert call("GET", "/?" + urlencode({"q": "обычная" + "ж" * 10_000})).status_code == 200


# ----- /static ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/static/..%2f..%2ffunction_app.py", "/static/..%2F", "/static/%2e%2e%5cfunction_app.py",
    "/static/%2e%2e/%2e%2e/etc/passwd", "/static/%25%32%65%25%32%65/function_app.py",
    "/static/%c0%ae%c0%ae/function_app.py", "/static/....//function_app.py", "/static/\\..\\function_app.py",
    "/static/./omis.css", "/static/omis.css/.", "/static/omis.css/", "/static/%00", "/static/%00omis.css",
    "/static/omis.css%00", "/static/%2F%2Fetc%2Fpasswd", "/static//omis.css", "/static/~/.bashrc",
    "/static/%7e/.bashrc", "/static/.%2e/function_app.py", "/static/%ff", "/static/" + "a" * 5000,
    "/static/omis.css:$DATA", "/static/OMIS.CSS.", "/static/file:///etc/passwd", "/static/%5c%5cserver%5cshare",
    "/static/.gitignore", "/static/omis.css%20",
])
def test_static_refuses_traversal_and_odd_names(call, path):
    resp = call("GET", path)
    assert resp.status_code == 404 and "Такого файла нет" in text(resp)


# ----- the real host on a socket ------------------------------------------------------------------

@pytest.fixture
def live_host(omis_env, store) -> Iterator[tuple[str, int]]:
    """The app on the real local host, on a free port, with a short socket timeout."""
    with serving(timeout=1.0) as address:
        yield address


def raw_exchange(address: tuple[str, int], data: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes or `wait` passes; return what came back."""
    with socket.create_connection(address, timeout=wait) as sock:
        sock.sendall(data)
        chunks: list[bytes] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"Connection: close" not in b"".join(chunks):
                break  # a keep-alive answer: one response is enough
        return b"".join(chunks)


def status_of(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1."), reply[:80]
    return int(reply.split(b" ", 2)[1])


def healthz(address: tuple[str, int]) -> int:
    return status_of(raw_exchange(address, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))


def post_json(payload: bytes, extra: bytes = b"", length: bytes | None = None) -> bytes:
    size = str(len(payload)).encode() if length is None else length
    return (b"POST /api/requests HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + size + b"\r\n" + extra + b"\r\n" + payload)


MALFORMED_HTTP = {
    "bad request line": (b"GARBAGE\r\n\r\n", 400),
    "three words, not HTTP": (b"GET / FTP/1.0\r\n\r\n", 400),
    "unknown version": (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 505),
    "request line over 64 KiB": (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    "header over 64 KiB": (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    "too many headers": (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431),
    "unknown method": (b"FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    "letters as length": (post_json(b"{}", length=b"abc"), 400),
    "negative length": (post_json(b"{}", length=b"-1"), 400),
    "superscript length": (post_json(b"{}", length="²".encode()), 400),
    "two different lengths": (post_json(b'{"number": "H-1"}', extra=b"Content-Length: 2\r\n"), 400),
    "huge length": (post_json(b"{}", length=b"99999999999999999999999999"), 413),
    "length over 8 MiB": (post_json(b"{}", length=b"9000000"), 413),
    "chunked body": ((b"POST /api/requests HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n11\r\n{\"number\": \"H-2\"}\r\n0\r\n\r\n"), 411),
    "body shorter than its length": (post_json(b'{"number": "H-3"}', length=b"500"), 408),
    "host with a slash": (b"GET /static/omis.css HTTP/1.1\r\nHost: evil/api\r\n\r\n", 400),
    "host with a broken IPv6": (b"GET /healthz HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    "absolute-form target": (b"GET http://localhost/healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
    "non-UTF-8 path": (b"GET /requests/\xff\xfe%FF HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
    "NUL in path": (b"GET /requests/%00 HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
    "raw traversal": (b"GET /static/../function_app.py HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
    "raw backslash traversal": (b"GET /static/..\\..\\function_app.py HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
    "non-UTF-8 header values": ((b"GET /new HTTP/1.1\r\nHost: localhost\r\nX-MS-CLIENT-PRINCIPAL-NAME: \xff\xfe\r\n"
                                 b"Cookie: omis_flash=\xc3\x28.\xff\r\nAccept-Language: \x80\r\n\r\n"), 200),
    "malformed JSON": (post_json(b'{"number": '), 400),
}


@pytest.mark.parametrize("kind", list(MALFORMED_HTTP))
def test_malformed_http_gets_its_4xx_and_the_host_still_serves(live_host, store, kind):
    data, expected = MALFORMED_HTTP[kind]
    started = time.monotonic()
    reply = raw_exchange(live_host, data)
    assert status_of(reply) == expected, reply[:300]
    assert time.monotonic() - started < 4  # answered (or dropped after the 1 s timeout), never left hanging
    assert healthz(live_host) == 200
    assert_nothing_stored(store)


def test_a_stalled_client_does_not_block_others(live_host, store):
    with socket.create_connection(live_host, timeout=5) as stalled:
        stalled.sendall(post_json(b'{"number": "H-4"', length=b"100"))
        assert healthz(live_host) == 200  # served while the other connection waits for its body
        reply = stalled.recv(65536)
    assert status_of(reply) == 408
    assert_nothing_stored(store)


def test_a_client_that_hangs_up_mid_body_stores_nothing(live_host, store):
    with socket.create_connection(live_host, timeout=5) as sock:
        sock.sendall(post_json(b'{"number": "H-5"}', length=b"40"))
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(65536) == b""  # closed without acting on half a body
    assert healthz(live_host) == 200
    assert_nothing_stored(store)


def test_keep_alive_connection_survives_a_bad_request(live_host, store):
    bad = post_json(b"[1, 2]")
    good = post_json(b'{"number": "H-6"}')
    with socket.create_connection(live_host, timeout=5) as sock:
        sock.sendall(bad + good)
        data = b""
        while data.count(b"HTTP/1.1 ") < 2:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
    assert data.startswith(b"HTTP/1.1 400") and b"HTTP/1.1 201" in data
    assert [r.number for r in store.list_requests().items] == ["H-6"]
