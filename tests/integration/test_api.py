"""The JSON API through the app's own function objects, on Azurite."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

JSON = {"Content-Type": "application/json"}


def body(resp):
    return json.loads(resp.get_body())


def create(call, number, **fields):
    return call("POST", "/api/requests", json.dumps({"number": number, **fields}), JSON)


def test_create_then_get_with_history_and_delayed(call):
    resp = create(call, "10231", position="Позиция 7", description="Замена")
    assert resp.status_code == 201
    created = body(resp)
    assert created["status"] == "заявка отправлена" and created["author"] == "Инженер"
    assert created["created_at"].endswith("Z")
    assert resp.headers["Location"] == "/api/requests/10231"
    got = body(call("GET", "/api/requests/10231"))
    assert got["delayed"] is False and [h["source"] for h in got["history"]] == ["api"]


def test_signed_in_user_becomes_author(call):
    resp = call("POST", "/api/requests", json.dumps({"number": "A1"}),
                {**JSON, "X-MS-CLIENT-PRINCIPAL-NAME": "anna@example.org"})
    assert body(resp)["author"] == "anna@example.org"


@pytest.mark.parametrize("payload, field", [
    ({"number": ""}, "number"),
    ({"number": "a" * 33}, "number"),
    ({"number": "bad#1"}, "number"),
    ({"number": "ok", "position": "x" * 201}, "position"),
    ({"number": "ok", "description": "x" * 4001}, "description"),
    ({"number": 5}, "number"),
    ({"number": "ok", "extra": 1}, "extra"),
])
def test_bad_fields_are_400_and_nothing_is_stored(call, payload, field):
    resp = call("POST", "/api/requests", json.dumps(payload), JSON)
    assert resp.status_code == 400
    assert field in body(resp)["fields"] and body(resp)["error"]
    assert body(call("GET", "/api/requests"))["items"] == []


@pytest.mark.parametrize("raw", [b"{not json", b"[1,2]", b"\xff\xfe", b""])
def test_malformed_json_is_400(call, raw):
    resp = call("POST", "/api/requests", raw, JSON)
    assert resp.status_code == 400 and "error" in body(resp)


def test_other_content_types_are_415(call):
    resp = call("POST", "/api/requests", "number=1", {"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415


def test_body_over_64_kib_is_413(call):
    resp = call("POST", "/api/requests", json.dumps({"number": "1", "description": "x" * 70_000}), JSON)
    assert resp.status_code == 413


def test_duplicate_is_409(call):
    create(call, "AB-17")
    resp = create(call, "ab-17")
    assert resp.status_code == 409 and "fields" in body(resp)


def test_unknown_number_is_404(call):
    assert call("GET", "/api/requests/nope").status_code == 404
    resp = call("POST", "/api/requests/nope/status", json.dumps({"status": "выполнена"}), JSON)
    assert resp.status_code == 404


@pytest.mark.parametrize("encode", [lambda n: quote(n, safe=""), lambda n: quote(n, safe="/")])
def test_number_with_slash_in_either_url_form(call, encode):
    create(call, "ТО-2026/77")
    assert body(call("GET", "/api/requests/" + encode("ТО-2026/77")))["number"] == "ТО-2026/77"
    resp = call("POST", f"/api/requests/{encode('то-2026/77')}/status",
                json.dumps({"status": "выполнена", "comment": "готово"}), JSON)
    assert resp.status_code == 200 and body(resp)["status"] == "выполнена"


def test_status_change_validates(call):
    create(call, "S1")
    resp = call("POST", "/api/requests/S1/status", json.dumps({"status": "готово"}), JSON)
    assert resp.status_code == 400 and "status" in body(resp)["fields"]
    resp = call("POST", "/api/requests/S1/status", json.dumps({"status": "выполнена", "comment": "x" * 2001}), JSON)
    assert resp.status_code == 400 and "comment" in body(resp)["fields"]
    assert body(call("GET", "/api/requests/S1"))["status"] == "заявка отправлена"


def test_list_filters_and_cursor(call):
    for i in range(5):
        create(call, f"L{i}", position="Котельная" if i % 2 else "Насосная")
    call("POST", "/api/requests/L0/status", json.dumps({"status": "выполнена"}), JSON)
    first = body(call("GET", "/api/requests?limit=2"))
    assert [i["number"] for i in first["items"]] == ["L0", "L4"] and first["next"]
    second = body(call("GET", "/api/requests?limit=2&cursor=" + first["next"]))
    assert [i["number"] for i in second["items"]] == ["L3", "L2"]
    assert [i["number"] for i in body(call("GET", "/api/requests?status=" + quote("выполнена")))["items"]] == ["L0"]
    assert [i["number"] for i in body(call("GET", "/api/requests?q=" + quote("котельная")))["items"]] == ["L3", "L1"]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "status=zzz", "cursor=%21%21"])
def test_bad_list_parameters_are_400(call, query):
    assert call("GET", "/api/requests?" + query).status_code == 400


def test_unmatched_mail_api_lists_kept_mail(call):
    from datetime import datetime, timezone

    from functions.storage import UnmatchedMail, get_store

    mail = UnmatchedMail("k1" * 20, "Заявка №99999", "Иван <i@x>", datetime(2026, 11, 20, tzinfo=timezone.utc),
                         ("99999",), "<m@x>", "номер не найден")
    get_store().mail.keep_unmatched(mail)
    items = body(call("GET", "/api/mail/unmatched"))["items"]
    assert items == [{"id": mail.id, "subject": "Заявка №99999", "from": "Иван <i@x>",
                      "received": "2026-11-20T00:00:00Z", "numbers": ["99999"], "message_id": "<m@x>",
                      "reason": "номер не найден", "state": "open"}]


def test_healthz_ok(call):
    resp = call("GET", "/healthz")
    assert resp.status_code == 200 and body(resp) == {"status": "ok"}


def test_storage_down_is_503_and_recovers(call, monkeypatch, omis_env):
    from functions import settings
    from scripts.azurite import connection_string, free_port

    monkeypatch.setenv("OMIS_TABLES_CONNECTION_STRING", connection_string(free_port()))
    settings.reset_settings()
    assert call("GET", "/healthz").status_code == 503
    resp = call("GET", "/api/requests")
    assert resp.status_code == 503 and "недоступно" in body(resp)["error"]
    monkeypatch.setenv("OMIS_TABLES_CONNECTION_STRING", omis_env["OMIS_TABLES_CONNECTION_STRING"])
    settings.reset_settings()
    assert call("GET", "/healthz").status_code == 200


def test_unknown_route_and_method(call):
    assert call("GET", "/api/nothing-here").status_code == 404
    resp = call("DELETE", "/api/requests")
    assert resp.status_code == 405 and "GET" in resp.headers["Allow"]


LEVELS_ENV = ('{"normal": {"title": "Обычная", "accept": "4h", "update": "1d", "resolve": "5d", "clock": "24x7"},'
              ' "crash": {"title": "Авария", "accept": "15m", "update": "1h", "resolve": "8h", "clock": "24x7"}}')


def test_a_request_carries_its_level_and_deadlines(call, configure):
    configure(OMIS_SLA_LEVELS=LEVELS_ENV)
    created = body(call("POST", "/api/requests", json.dumps({"number": "L-1", "level": "crash"}), JSON))
    assert created["level"] == "crash" and created["waiting_on"] == "contractor" and created["breached"] is False
    assert created["deadline_kind"] == "accept" and created["delayed"] is False
    assert [d["kind"] for d in created["deadlines"]] == ["accept", "resolve"]
    for name in ("due", "promised", "last_news_at", "archived", "aliases", "outbox", "history"):
        assert name in created, name
    default = body(call("POST", "/api/requests", json.dumps({"number": "L-2"}), JSON))
    assert default["level"] == "normal"


def test_an_unknown_level_or_a_bad_due_is_400_with_the_field(call, configure):
    configure(OMIS_SLA_LEVELS=LEVELS_ENV)
    for extra, field in (({"level": "platinum"}, "level"), ({"due": "завтра"}, "due"),
                         ({"due": "2020-01-01T10:00:00Z"}, "due"), ({"due": 5}, "due")):
        resp = call("POST", "/api/requests", json.dumps({"number": "BAD-1", **extra}), JSON)
        assert resp.status_code == 400 and field in body(resp)["fields"], extra
    assert call("GET", "/api/requests/BAD-1").status_code == 404


def test_due_overrides_resolve_and_null_clears_it(call, configure):
    configure(OMIS_SLA_LEVELS=LEVELS_ENV)
    created = body(call("POST", "/api/requests", json.dumps({"number": "D-1", "due": "2099-12-05T18:00:00+03:00"}),
                        JSON))
    assert created["due"] == "2099-12-05T15:00:00Z"
    assert {d["kind"]: d["at"] for d in created["deadlines"]}["resolve"] == "2099-12-05T15:00:00Z"
    cleared = body(call("PATCH", "/api/requests/D-1", json.dumps({"due": None}), JSON))
    assert cleared["due"] is None and {d["kind"]: d["at"] for d in cleared["deadlines"]}["resolve"] != created["due"]


def test_list_filters_by_deadline_order_breached_waiting_and_level(call, configure, store):
    from datetime import datetime, timedelta, timezone

    configure(OMIS_SLA_LEVELS=LEVELS_ENV)
    from functions.storage import get_store

    fresh = get_store()
    now = datetime.now(timezone.utc)
    fresh.add_request("OLD-1", now=now - timedelta(days=1))                       # accept passed
    fresh.add_request("CR-1", level="crash", now=now - timedelta(minutes=5))        # accept in 10 min
    fresh.add_request("Q-1", now=now - timedelta(hours=1))
    fresh.update_status("Q-1", "требует уточнения", "адрес?", now=now - timedelta(minutes=30))
    fresh.add_request("DONE-1", now=now - timedelta(hours=2))
    fresh.update_status("DONE-1", "выполнена", now=now - timedelta(hours=1))

    def numbers(query: str) -> list[str]:
        resp = call("GET", "/api/requests?" + query)
        assert resp.status_code == 200, resp.get_body()
        return [i["number"] for i in body(resp)["items"]]

    assert numbers("sort=deadline") == ["OLD-1", "CR-1", "Q-1", "DONE-1"]   # no deadline last
    assert numbers("breached=1") == ["OLD-1"]
    assert numbers("waiting_on=us") == ["Q-1"]
    assert set(numbers("waiting_on=contractor")) == {"OLD-1", "CR-1"}
    assert numbers("level=crash") == ["CR-1"]
    for bad in ("sort=sideways", "waiting_on=them", "level=nope"):
        assert call("GET", "/api/requests?" + bad).status_code == 400, bad
