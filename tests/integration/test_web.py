"""The HTML pages through the app's own function objects, on Azurite."""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import ClassVar
from urllib.parse import quote, urlencode

import azure.functions as func
import pytest

from functions.alerts.digest import format_quiet as format_duration
from functions.model import utcnow
from functions.web import signing
from functions.web.render import format_ts
from functions.web.static import static_path

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SLASHED = "ТО-2026/77"


def text(resp) -> str:
    return resp.get_body().decode("utf-8")


def csrf_token(call, path: str = "/new", headers: dict[str, str] | None = None) -> str:
    page = text(call("GET", path, headers=headers))
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def post_form(call, path: str, fields: dict[str, str], headers: dict[str, str] | None = None,
              token: str | None = "fetch"):
    if token == "fetch":
        token = csrf_token(call, headers=headers)
    data = dict(fields)
    if token is not None:
        data["csrf_token"] = token
    return call("POST", path, urlencode(data), {**FORM, **(headers or {})})


def add(call, number: str, position: str = "", description: str = "", headers: dict[str, str] | None = None):
    return post_form(call, "/add_request", {"number": number, "position": position, "description": description},
                     headers)


def listed_numbers(page: str) -> list[str]:
    # A number is <bdi class="num"> with <wbr> after its separators (functions/web/textfmt.py).
    return [html.unescape(m.replace("<wbr>", "")) for m in re.findall(
        r'<td data-label="Номер" class="number"><a href="[^"]*"><bdi class="num">((?:[^<]|<wbr>)*)</bdi></a>', page)]


def flash_of(resp) -> str:
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("omis_flash=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    return cookie.split(";")[0]


# ----- the list --------------------------------------------------------------------------

def test_empty_list_explains_how_to_add_the_first_request(call):
    resp = call("GET", "/")
    assert resp.status_code == 200
    page = text(resp)
    assert "Заявок пока нет" in page and 'href="/new"' in page
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.mimetype == "text/html"


def test_root_and_requests_show_the_same_list(call, store):
    store.add_request("R-1", "Котельная")
    assert listed_numbers(text(call("GET", "/"))) == listed_numbers(text(call("GET", "/requests"))) == ["R-1"]


def test_root_route_is_not_the_empty_template(app_routes):
    # The real host maps an empty route to the function's name (/page_index), not to "/".
    root = next(r for r in app_routes if r.name == "page_index")
    assert root.template == "{empty:maxlength(0)?}" and root.methods == {"GET"}


def test_unknown_single_segment_is_not_the_list(call):
    assert call("GET", "/favicon.ico").status_code == 404  # maxlength(0) keeps the root route to "/"


def test_list_is_last_updated_first(call, store):
    t0 = utcnow() - timedelta(minutes=30)
    for i, number in enumerate(["A-1", "A-2", "A-3"]):
        store.add_request(number, now=t0 + timedelta(minutes=i))
    store.update_status("A-1", "принята в работу", "взяли", author="Робот", now=t0 + timedelta(minutes=10))
    assert listed_numbers(text(call("GET", "/"))) == ["A-1", "A-3", "A-2"]


def test_list_shows_comment_author_and_two_line_time(call, store, omis_env):
    at = datetime(2026, 11, 26, 15, 17, tzinfo=timezone.utc)
    store.add_request("C-1", "Узел 5", now=at)
    store.update_status("C-1", "выполнена", "Работы завершены", author="Робот", now=at)
    page = text(call("GET", "/"))
    assert "Работы завершены" in page and "— <bdi>Робот</bdi>" in page and "Узел 5" in page
    assert '26.11.2026<br>18:17</time>' in page


def test_filter_by_status_and_counts(call, store):
    store.add_request("S-1")
    store.add_request("S-2")
    store.update_status("S-2", "выполнена", author="Инженер")
    page = text(call("GET", "/?" + urlencode({"status": "выполнена"})))
    assert listed_numbers(page) == ["S-2"]
    assert re.search(r"все <b>2</b>", page)
    assert re.search(r"заявка отправлена <b>1</b>", page) and re.search(r"выполнена <b>1</b>", page)
    assert text(call("GET", "/?" + urlencode({"status": "выполнена", "q": "S-1"}))).count("Ничего не найдено") == 1


@pytest.mark.parametrize("q, expected", [("n-7", ["N-7"]), ("котельн", ["N-8"]), ("ТЕЧЬ", ["N-9"])])
def test_search_by_number_position_and_comment(call, store, q, expected):
    store.add_request("N-7", "Насосная")
    store.add_request("N-8", "Котельная")
    store.add_request("N-9", "Щитовая")
    store.update_status("N-9", "принята в работу", "Течь устранена частично", author="Робот")
    assert listed_numbers(text(call("GET", "/?" + urlencode({"q": q})))) == expected


def test_paging_follows_the_store_cursor(call, store):
    t0 = utcnow() - timedelta(hours=1)
    for i in range(53):
        store.add_request(f"P-{i:02d}", now=t0 + timedelta(seconds=i))
    first = text(call("GET", "/"))
    assert listed_numbers(first)[:2] == ["P-52", "P-51"] and len(listed_numbers(first)) == 50
    next_url = html.unescape(re.search(r'<a href="([^"]+)" rel="next">', first).group(1))
    second = text(call("GET", next_url))
    assert listed_numbers(second) == ["P-02", "P-01", "P-00"]
    assert "В начало" in second and 'rel="next"' not in second


def test_bad_cursor_and_unknown_status_are_400_pages(call):
    assert call("GET", "/?cursor=%21%21").status_code == 400
    resp = call("GET", "/?" + urlencode({"status": "потеряна"}))
    assert resp.status_code == 400 and "Неизвестный статус" in text(resp)


def test_delayed_rows_say_how_long_they_are_quiet(call, store):
    store.add_request("D-OLD", now=utcnow() - timedelta(hours=3, minutes=5))
    store.add_request("D-NEW")
    store.add_request("D-DONE", now=utcnow() - timedelta(hours=5))
    store.update_status("D-DONE", "выполнена", author="Робот", now=utcnow() - timedelta(hours=4))
    page = text(call("GET", "/"))
    rows = dict(zip(listed_numbers(page), page.split("<tr")[2:], strict=True))
    assert 'class="delayed"' in rows["D-OLD"] and "Без ответа 3 ч 5 мин" in rows["D-OLD"]
    assert "Просрочено" in rows["D-OLD"] and "Ждём подрядчика" in rows["D-OLD"]
    assert "Без ответа" not in rows["D-NEW"] and "Без ответа" not in rows["D-DONE"]


def test_format_ts_and_duration():
    assert str(format_ts(datetime(2026, 11, 26, 15, 17, tzinfo=timezone.utc))).endswith(">26.11.2026<br>18:17</time>")
    assert format_ts(None) == "—"
    assert [format_duration(m) for m in (5, 65, 47 * 60, 50 * 60 + 7)] == ["5 мин", "1 ч 5 мин", "1 дн 23 ч",
                                                                          "2 дн 2 ч"]


# ----- the new-request form --------------------------------------------------------------

def test_adding_redirects_to_the_list_with_a_flash(call, store):
    resp = add(call, " 10231 ", "Позиция 7", "Замена датчика")
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    cookie = flash_of(resp)
    page_resp = call("GET", "/", headers={"Cookie": cookie})
    page = text(page_resp)
    assert "Заявка «<bdi>10231</bdi>» добавлена." in page and listed_numbers(page)[0] == "10231"
    assert page_resp.headers["Set-Cookie"].startswith("omis_flash=;") and "Max-Age=0" in page_resp.headers["Set-Cookie"]
    created = store.get_request("10231")
    assert created.author == "Инженер" and [h.source for h in created.history] == ["web"]
    assert "добавлена" not in text(call("GET", "/"))


def test_forged_or_stale_flash_is_ignored(call, omis_env):
    forged = signing.make_flash("another-key", "Взломано")
    stale = signing.make_flash(omis_env["OMIS_SECRET_KEY"], "Старое", now=utcnow().timestamp() - 3600)
    for value in (forged, stale, "garbage"):
        page = text(call("GET", "/", headers={"Cookie": f"other=1; omis_flash={value}"}))
        assert "Взломано" not in page and "Старое" not in page and 'class="flash"' not in page


@pytest.mark.parametrize("fields, field", [
    ({"number": "", "position": "Котельная", "description": "Течь"}, "number"),
    ({"number": "bad#1", "position": "Котельная", "description": "Течь"}, "number"),
    ({"number": "x" * 33, "position": "", "description": ""}, "number"),
    ({"number": "OK-1", "position": "п" * 201, "description": "Текст"}, "position"),
    ({"number": "OK-1", "position": "", "description": "д" * 4001}, "description"),
])
def test_bad_input_shows_the_form_again_and_stores_nothing(call, store, fields, field):
    resp = add(call, **fields)
    assert resp.status_code == 400
    page = text(resp)
    assert f'id="{field}-error"' in page and re.search(f'aria-describedby="{field}-error[ "]', page)
    assert f'value="{html.escape(fields["number"])}"' in page
    assert f'>{fields["description"]}</textarea>' in page
    assert store.list_requests().items == []


def test_duplicate_number_is_409_with_a_link_to_it(call, store):
    store.add_request("ТО-5")
    resp = add(call, "то-5", "Другая")
    assert resp.status_code == 409
    page = text(resp)
    assert "уже есть" in page and 'value="Другая"' in page and f'href="/requests/{quote("ТО-5", safe="")}"' in page
    assert len(store.list_requests().items) == 1


def test_form_fields_are_labelled(call):
    page = text(call("GET", "/new"))
    for name in ("number", "position", "description"):
        assert f'<label for="{name}">' in page and f'id="{name}" name="{name}"' in page
    assert "Сохранить" in page


# ----- safety ----------------------------------------------------------------------------

def _tokens(omis_env) -> dict[str, str | None]:
    key = omis_env["OMIS_SECRET_KEY"]
    return {
        "missing": None,
        "empty": "",
        "garbage": "not-a-token",
        "wrong key": signing.make_csrf_token("other-key", "Инженер"),
        "other user": signing.make_csrf_token(key, "mallory@example.org"),
        "expired": signing.make_csrf_token(key, "Инженер", now=utcnow().timestamp() - 13 * 3600),
    }


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "wrong key", "other user", "expired"])
def test_add_without_a_valid_csrf_token_is_403_and_stores_nothing(call, store, omis_env, kind):
    resp = post_form(call, "/add_request", {"number": "X-1", "position": "введённая позиция"},
                     token=_tokens(omis_env)[kind])
    page = text(resp)
    assert resp.status_code == 403 and "Форма устарела" in page and "ничего не сохранено" in page
    assert 'value="X-1"' in page and 'value="введённая позиция"' in page      # what was typed is kept
    assert store.get_request("X-1") is None


@pytest.mark.parametrize("kind", ["missing", "wrong key", "other user"])
def test_status_change_without_a_valid_csrf_token_is_403(call, store, omis_env, kind):
    store.add_request("X-2")
    resp = post_form(call, "/requests/X-2/status", {"status": "выполнена"}, token=_tokens(omis_env)[kind])
    assert resp.status_code == 403
    assert store.get_request("X-2").status == "заявка отправлена"


def test_cross_site_post_is_403_even_with_a_token(call, store):
    resp = post_form(call, "/add_request", {"number": "X-3"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status_code == 403 and store.get_request("X-3") is None


def test_token_is_bound_to_the_signed_in_user(call, store):
    anna = {"X-MS-CLIENT-PRINCIPAL-NAME": "anna@example.org"}
    token = csrf_token(call, headers=anna)
    assert post_form(call, "/add_request", {"number": "U-1"}, token=token).status_code == 403
    resp = post_form(call, "/add_request", {"number": "U-1"}, headers=anna, token=token)
    assert resp.status_code == 303 and store.get_request("U-1").author == "anna@example.org"
    assert "anna@example.org" in text(call("GET", "/requests/U-1", headers=anna))


def test_body_over_64_kib_is_413(call, store):
    resp = post_form(call, "/add_request", {"number": "BIG", "description": "x" * (65 * 1024)})
    assert resp.status_code == 413 and "64 КиБ" in text(resp)
    assert store.get_request("BIG") is None


def test_form_must_be_urlencoded(call, store):
    resp = call("POST", "/add_request", '{"number": "J-1"}', {"Content-Type": "application/json"})
    assert resp.status_code == 415 and store.get_request("J-1") is None


def test_user_and_contractor_text_is_shown_as_text(call, store):
    evil = '<script>alert("x")</script>'
    assert add(call, "XSS-1", evil, evil + "<img src=x onerror=alert(1)>").status_code == 303
    store.update_status("XSS-1", "требует уточнения", evil, author="<b>Робот</b>")
    for path in ("/", "/requests/XSS-1"):
        page = text(call("GET", path))
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>Робот" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


@pytest.mark.parametrize("path", ["/", "/requests", "/new", "/mail/unmatched", "/requests/none", "/static/omis.css",
                                  "/static/nothing.css"])
def test_security_headers_on_every_page(call, path):
    resp = call("GET", path)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_storage_outage_is_a_503_page(call, monkeypatch):
    from functions.storage import StorageUnavailable, Store

    def down(*args, **kwargs):
        raise StorageUnavailable("Хранилище недоступно: ServiceRequestError")

    monkeypatch.setattr(Store, "list_requests", down)
    resp = call("GET", "/")
    assert resp.status_code == 503 and "Хранилище недоступно" in text(resp) and "Traceback" not in text(resp)


# ----- the request card ------------------------------------------------------------------

def test_card_shows_the_request_and_its_history(call, store):
    store.add_request("K-1", "Котельная", "Заменить насос")
    resp = call("GET", "/requests/K-1")
    page = text(resp)
    assert resp.status_code == 200
    for word in ("Номер", "Позиция", "Описание", "Статус", "Комментарий", "Автор", "Создана", "Обновлена",
                 "История", "Сохранить", "Заменить насос", "Заявка зарегистрирована."):
        assert word in page
    assert page.count('class="event source-web"') == 1


def test_status_change_redirects_to_the_card_and_the_history_grows(call, store):
    store.add_request("K-2")
    token = csrf_token(call, "/requests/K-2")
    resp = post_form(call, "/requests/K-2/status", {"status": "выполнена", "comment": "По телефону: готово"},
                     token=token)
    assert resp.status_code == 303 and resp.headers["Location"] == "/requests/K-2"
    page = text(call("GET", "/requests/K-2", headers={"Cookie": flash_of(resp)}))
    assert "Заявка «<bdi>K-2</bdi>»: статус «<bdi>выполнена</bdi>»." in page
    assert page.count('class="event source-web"') == 2 and "По телефону: готово" in page
    changed = store.get_request("K-2")
    assert changed.status == "выполнена" and changed.comment_author == "Инженер"


def test_comment_only_change_keeps_the_status(call, store):
    store.add_request("K-3")
    resp = post_form(call, "/requests/K-3/status", {"status": "заявка отправлена", "comment": "Звонил"})
    assert resp.status_code == 303
    assert store.get_request("K-3").comment == "Звонил" and store.get_request("K-3").status == "заявка отправлена"


@pytest.mark.parametrize("fields, field", [
    ({"status": "потеряна", "comment": "x"}, "status"),
    ({"status": "заявка отправлена", "comment": "  "}, "comment"),
    ({"status": "выполнена", "comment": "к" * 2001}, "comment"),
])
def test_bad_status_change_shows_the_card_with_errors(call, store, fields, field):
    store.add_request("K-4")
    resp = post_form(call, "/requests/K-4/status", fields)
    assert resp.status_code == 400 and f'id="{field}-error"' in text(resp)
    assert len(store.get_request("K-4").history) == 1


def test_mail_history_shows_subject_position_and_source(call, store):
    store.add_request("M-1")
    store.apply_mail(store.requests.resolve("M-1"), message="k1", status="принята в работу", comment="Взяли в работу",
                     received=utcnow(), author="Робот", message_id="<m1@x>", subject="Re: заявка M-1", position="7")
    page = text(call("GET", "/requests/M-1"))
    assert 'class="event source-mail"' in page and "почта" in page
    assert "Письмо «<bdi>Re: заявка M-1</bdi>»" in page and "позиция <bdi>7</bdi>" in page


def test_unknown_request_is_a_404_page(call):
    resp = call("GET", "/requests/NOPE-1")
    assert resp.status_code == 404 and "Заявки «<bdi>NOPE-1</bdi>» нет" in text(resp)
    assert post_form(call, "/requests/NOPE-1/status", {"status": "выполнена"}).status_code == 404


@pytest.mark.parametrize("path", [
    "/requests/" + quote(SLASHED, safe=""),   # %2F kept encoded
    "/requests/" + quote(SLASHED, safe="/"),  # %2F already decoded by the host
])
def test_number_with_slash_in_both_url_forms(call, store, path):
    store.add_request(SLASHED, "Узел")
    assert 'href="/requests/%D0%A2%D0%9E-2026%2F77"' in text(call("GET", "/"))
    assert "Узел" in text(call("GET", path))
    resp = post_form(call, path + "/status", {"status": "принята в работу"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/requests/%D0%A2%D0%9E-2026%2F77"
    assert store.get_request(SLASHED).status == "принята в работу"


def test_route_value_still_encoded_is_decoded(app_routes, store):
    # Some hosts hand the catch-all value over without decoding %2F at all.
    store.add_request(SLASHED)
    card = next(r for r in app_routes if r.name == "page_request")
    req = func.HttpRequest("GET", "http://localhost/requests/x", headers={}, body=b"",
                           route_params={"rest": quote(SLASHED, safe="")})
    assert card.function(req).status_code == 200


# ----- unmatched mail --------------------------------------------------------------------

def test_unmatched_mail_page(call, store):
    from functions.storage import UnmatchedMail

    assert "Неразобранных писем нет" in text(call("GET", "/mail/unmatched"))
    store.mail.keep_unmatched(UnmatchedMail(message_key="k1", subject="<i>Заявка 999</i>", sender="contractor@example.org",
                                      received=datetime(2026, 11, 26, 15, 17, tzinfo=timezone.utc),
                                      numbers=("999",), message_id="<m@x>", reason="номер не найден",
                                      text="Выполнена <script>x</script>"))
    page = text(call("GET", "/mail/unmatched"))
    assert "&lt;i&gt;Заявка 999&lt;/i&gt;" in page and "contractor@example.org" in page and "999" in page
    assert "<script>x" not in page and "26.11.2026 18:17" in page
    assert call("GET", "/mail/unmatched?cursor=%C3%BF").status_code == 400


# ----- static files ----------------------------------------------------------------------

@pytest.mark.parametrize("name, ctype", [("omis.css", "text/css; charset=utf-8"),
                                         ("omis.js", "text/javascript; charset=utf-8"),
                                         ("favicon.svg", "image/svg+xml; charset=utf-8")])
def test_static_files_have_content_types_and_cache_headers(call, name, ctype):
    resp = call("GET", f"/static/{name}")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == ctype
    assert resp.headers["Cache-Control"] == "public, max-age=3600" and resp.get_body()
    versioned = call("GET", f"/static/{name}?v=abc")
    assert "immutable" in versioned.headers["Cache-Control"]
    again = call("GET", f"/static/{name}", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304 and not again.get_body()


def test_pages_link_versioned_static_files(call):
    page = text(call("GET", "/"))
    css = re.search(r'href="(/static/omis\.css\?v=[0-9a-f]{12})"', page).group(1)
    assert call("GET", css).status_code == 200
    assert re.search(r'<script src="/static/omis\.js\?v=[0-9a-f]{12}" defer>', page)
    assert "<script>" not in page and "style=" not in page


@pytest.mark.parametrize("path", [
    "/static/../function_app.py", "/static/%2e%2e/function_app.py", "/static/%2E%2E%2Ffunction_app.py",
    "/static/%252e%252e/function_app.py", "/static/..%5cfunction_app.py", "/static/%5c..%5cfunction_app.py",
    "/static//etc/passwd", "/static/%2Fetc%2Fpasswd", "/static/C:%5cWindows%5cwin.ini", "/static/.git/config",
    "/static/", "/static/missing.css", "/static/omis.css%00.txt",
])
def test_static_cannot_leave_its_folder(call, path):
    resp = call("GET", path)
    assert resp.status_code == 404 and resp.mimetype == "text/html"


@pytest.mark.parametrize("tail", ["../function_app.py", "..\\function_app.py", "/etc/passwd", "a/../../x",
                                  "./omis.css", "", "omis.css/"])
def test_static_path_refuses_escapes(tail):
    assert static_path(tail) is None


def test_static_path_finds_a_file():
    assert static_path("omis.css").name == "omis.css"


def test_unexpected_failure_is_a_500_page_without_a_trace(call, monkeypatch):
    from functions.storage import Store

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(Store, "counts", broken)
    resp = call("GET", "/")
    page = text(resp)
    assert resp.status_code == 500 and "Внутренняя ошибка" in page
    assert "secret detail" not in page and "Traceback" not in page


# ----- edit, archive, unmatched-mail actions ---------------------------------------------------

def _keep_mail(store, key: str = "<w1@x>", numbers: tuple[str, ...] = ("W-1",)) -> str:
    from functions.mail.sync import message_key
    from functions.storage import UnmatchedMail

    mail = UnmatchedMail(message_key=message_key(key, None), subject="Заявка W-1 выполнена", sender="c@x",
                         received=utcnow() - timedelta(hours=1), numbers=numbers, message_id=key,
                         reason="номер не найден", text="Заявка W-1 выполнена.")
    assert store.mail.keep_unmatched(mail)
    return mail.id


def test_refused_edit_shows_the_card_with_the_edit_form_open(call, store):
    store.add_request("W-E1", "Узел")
    resp = post_form(call, "/requests/W-E1/edit", {"number": "W#E1", "position": "Новый узел", "description": "",
                                                   "level": "normal", "due": ""})
    page = text(resp)
    assert resp.status_code == 400 and '<details class="panel edit" id="edit" open>' in page
    assert 'id="edit-number-error"' in page and 'value="Новый узел"' in page
    assert store.get_request("W-E1").position == "Узел"


def test_a_look_alike_confirmation_for_another_number_does_not_count(call, store):
    store.add_request("AB-1")
    fields = {"number": "АВ-1", "confirm_similar": "1", "similar_number": "АВ-2"}
    resp = post_form(call, "/add_request", fields)
    assert resp.status_code == 409 and 'name="similar_number" value="АВ-1"' in text(resp)
    assert post_form(call, "/add_request", {**fields, "similar_number": "АВ-1"}).status_code == 303


def test_archive_says_what_it_did_and_the_card_offers_restore(call, store):
    store.add_request("W-A1")
    resp = post_form(call, "/requests/W-A1/archive", {})
    assert resp.status_code == 303 and resp.headers["Location"] == "/requests/W-A1"
    page = text(call("GET", "/requests/W-A1", headers={"Cookie": flash_of(resp)}))
    assert "перенесена в архив: её нет в списке и напоминаниях" in page and "Вернуть из архива" in page
    assert post_form(call, "/requests/W-A1/status", {"status": "выполнена"}).status_code == 409
    assert listed_numbers(text(call("GET", "/?archived=1"))) == ["W-A1"] and listed_numbers(text(call("GET", "/"))) == []


def test_attach_goes_back_to_the_list_with_a_link_to_the_request(call, store):
    store.add_request("W-1")
    item = _keep_mail(store)
    resp = post_form(call, f"/mail/unmatched/{item}/attach", {"number": "W-1"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/mail/unmatched"
    page = text(call("GET", "/mail/unmatched", headers={"Cookie": flash_of(resp)}))
    assert 'привязано к заявке «<bdi>W-1</bdi>». <a href="/requests/W-1">Открыть заявку' in page
    again = post_form(call, f"/mail/unmatched/{item}/attach", {"number": "W-1"})        # sent twice
    assert again.status_code == 303 and again.headers["Location"] == "/mail/unmatched"
    assert "уже привязано" in text(call("GET", "/mail/unmatched", headers={"Cookie": flash_of(again)}))
    assert [h.source for h in store.get_request("W-1").history].count("mail") == 1


def test_a_refused_action_on_the_mail_page_stays_on_the_mail_page(call, store):
    item = _keep_mail(store)
    resp = post_form(call, f"/mail/unmatched/{item}/attach", {"number": "НЕТ-1", "view": "item"})
    page = text(resp)
    assert resp.status_code == 404 and "Текст письма" in page and "Заявка «<bdi>НЕТ-1</bdi>» не найдена." in page
    listed = post_form(call, f"/mail/unmatched/{item}/attach", {"number": "НЕТ-1"})
    assert listed.status_code == 404 and f'id="mail-{item}"' in text(listed)


def test_the_menu_counts_unmatched_mail(call, store):
    _keep_mail(store, "<w2@x>")
    _keep_mail(store, "<w3@x>")
    assert '<span class="badge" title="Писем ждут разбора">2</span>' in text(call("GET", "/"))


class _TextPlaces(HTMLParser):
    """Collect where a marker appears as page text: the open elements around each occurrence."""

    VOID: ClassVar[frozenset[str]] = frozenset({"input", "br", "wbr", "meta", "link", "img", "hr"})

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker, self.stack, self.places = marker, [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag):]

    def handle_data(self, data):
        if self.marker in data:
            self.places.append((tuple(self.stack), data))


def test_user_text_is_isolated_for_direction_wherever_it_appears(call, store, configure):
    rtl = "שלום"                                       # Hebrew: a right-to-left word in every user field
    configure(OMIS_DEV_USER=f"Инженер {rtl}")
    number = f"{rtl}-1"
    store.add_request(number, f"Котельная {rtl}", f"Описание {rtl}", author=f"Автор {rtl}")
    store.update_status(number, "принята в работу", f"Комментарий {rtl}", author=f"Автор {rtl}")
    item = _keep_mail(store, "<rtl@x>", numbers=(f"{rtl}-2",))
    from dataclasses import replace

    mail = replace(store.mail.get_unmatched(item), message_key="f" * 40, subject=f"Тема {rtl}",
                   sender=f"{rtl} <rtl@x>", text=f"Текст {rtl}")
    assert store.mail.keep_unmatched(mail)
    for path in ("/", "/requests/" + quote(number, safe=""), "/mail/unmatched", f"/mail/unmatched/{mail.id}",
                 "/?" + urlencode({"q": rtl})):
        parser = _TextPlaces(rtl)
        parser.feed(text(call("GET", path)))
        assert parser.places, path
        for stack, data in parser.places:
            isolated = "bdi" in stack or "textarea" in stack or "option" in stack or (
                stack[-1:] == ("title",) and "\u2068" in data)
            assert isolated, f"{path}: {data!r} inside {stack}"
