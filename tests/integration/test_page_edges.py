"""Edges found by attacking the pages: unknown addresses, huge numbers, refused forms keep what was typed."""
from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from functions.storage import StorageUnavailable, Store, get_store

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def text(resp) -> str:
    return resp.get_body().decode("utf-8")


def token(call) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', text(call("GET", "/new"))).group(1)


def test_an_unknown_address_is_the_html_404_page(call):
    for path in ("/nothing-here", "/a/b/c", "/requests-archive"):
        resp = call("GET", path)
        assert resp.status_code == 404 and resp.mimetype == "text/html", path
        assert "Такой страницы нет" in text(resp) and "<nav" in text(resp)


def test_an_unknown_api_address_is_a_json_404(call):
    resp = call("GET", "/api/nothing-here")
    assert resp.status_code == 404 and resp.mimetype == "application/json"
    assert "error" in json.loads(resp.get_body())


def test_a_16000_character_number_is_404_before_storage_is_asked(call, store):
    get_store().stats.reset()
    for path in ("/requests/" + "x" * 16_000, "/api/requests/" + "x" * 16_000):
        assert call("GET", path).status_code == 404, path[:20]
    assert get_store().stats.calls <= 2          # the unmatched-mail count of the 404 page's menu, nothing more


def test_a_form_over_64_kib_is_shown_again_with_what_was_typed(call, store):
    fields = {"number": "BIG-1", "position": "Котельная", "description": "д" * 40_000, "csrf_token": token(call)}
    body = urlencode(fields)
    resp = call("POST", "/add_request", body, FORM)
    page = text(resp)
    assert resp.status_code == 413 and "64 КиБ" in page
    assert 'value="BIG-1"' in page and 'value="Котельная"' in page
    assert store.get_request("BIG-1") is None


def test_a_form_refused_for_a_storage_outage_is_shown_again_with_what_was_typed(call, store, monkeypatch):
    def down(*args, **kwargs):
        raise StorageUnavailable("Хранилище недоступно: обрыв в тесте")

    monkeypatch.setattr(Store, "add_request", down)
    fields = {"number": "OUT-1", "position": "Насосная", "description": "Течь", "csrf_token": token(call)}
    resp = call("POST", "/add_request", urlencode(fields), FORM)
    page = text(resp)
    assert resp.status_code == 503 and "ничего не сохранено" in page
    assert 'value="OUT-1"' in page and 'value="Насосная"' in page and ">Течь</textarea>" in page


def test_a_card_form_refused_for_csrf_is_shown_again_with_the_comment(call, store):
    store.add_request("CSRF-2")
    resp = call("POST", "/requests/CSRF-2/status", urlencode({"status": "выполнена", "comment": "мой текст",
                                                               "csrf_token": "stale"}), FORM)
    page = text(resp)
    assert resp.status_code == 403 and "мой текст" in page and 'action="/requests/CSRF-2/status"' in page
    assert store.get_request("CSRF-2").status == "заявка отправлена"


def test_healthz_creates_the_tables_again_when_they_vanished(call, store):
    store.tables.service.delete_table(store.tables.requests.name)
    store.tables.service.delete_table(store.tables.mail.name)
    assert call("GET", "/healthz").status_code == 200
    names = {t.name for t in store.tables.service.list_tables()}
    assert {store.tables.requests.name, store.tables.mail.name} <= names
