"""The pages in a real browser: Chromium driven by Playwright against `python -m functions serve`."""
from __future__ import annotations

import re
from urllib.parse import quote, urlencode

import pytest

from .browser import Page, expect

pytestmark = pytest.mark.e2e


def open_form(page: Page) -> None:
    page.goto("/")
    page.get_by_role("navigation", name="Разделы").get_by_role("link", name="Новая заявка").click()
    expect(page.get_by_role("heading", name="Новая заявка")).to_be_visible()


def fill_form(page: Page, number: str, position: str, description: str) -> None:
    page.get_by_label("Номер").fill(number)
    page.get_by_label("Позиция").fill(position)
    page.get_by_label("Описание").fill(description)


def test_added_request_is_first_in_the_list_with_a_flash(page: Page, live_server):
    open_form(page)
    fill_form(page, "Э2Э-101", "Котельная №3", "Заменить манометр")
    page.get_by_role("button", name="Сохранить").click()
    page.wait_for_url(live_server.base_url + "/")
    expect(page.get_by_role("status")).to_have_text("Заявка «Э2Э-101» добавлена.")
    first = page.locator("table.requests tbody tr").first
    expect(first.locator("td").nth(0)).to_have_text("Э2Э-101")
    expect(first.locator("td").nth(1)).to_have_text("Котельная №3")
    page.reload()
    expect(page.locator(".flash")).to_have_count(0)


def test_invalid_form_shows_errors_keeps_values_and_stores_nothing(page: Page, live_server):
    open_form(page)
    fill_form(page, "плохой#номер", "Насосная Э2Э", "Течь у задвижки")
    with page.expect_response(re.compile(r"/add_request$")) as answer:
        page.get_by_role("button", name="Сохранить").click()
    assert answer.value.status == 400
    expect(page.locator("#number-error")).to_contain_text("только буквы, цифры")
    expect(page.get_by_label("Номер")).to_have_value("плохой#номер")
    expect(page.get_by_label("Позиция")).to_have_value("Насосная Э2Э")
    expect(page.get_by_label("Описание")).to_have_value("Течь у задвижки")
    expect(page.get_by_label("Номер")).to_be_focused()
    status, found = live_server.api("GET", "/api/requests?" + urlencode({"q": "Насосная Э2Э"}))
    assert status == 200 and found["items"] == []


def test_status_change_on_the_card_grows_the_history(page: Page, live_server):
    number = "ТО-2026/77"
    status, _ = live_server.api("POST", "/api/requests", {"number": number, "position": "Узел учёта"})
    assert status == 201
    page.goto("/")
    page.get_by_role("link", name=number, exact=True).click()
    page.wait_for_url(live_server.base_url + "/requests/" + quote(number, safe=""))
    expect(page.get_by_role("heading", level=1)).to_contain_text(number)
    history = page.locator("ol.timeline > li")
    expect(history).to_have_count(1)
    page.get_by_label("Статус").select_option("принята в работу")
    page.get_by_label("Комментарий").fill("Подрядчик позвонил: взяли в работу")
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_role("status")).to_have_text(f"Заявка «{number}»: статус «принята в работу».")
    expect(history).to_have_count(2)
    expect(history.nth(1)).to_contain_text("Подрядчик позвонил: взяли в работу")
    expect(history.nth(1)).to_contain_text("веб")
    expect(page.locator(".page-head .status")).to_have_text("принята в работу")
    assert live_server.api("GET", "/api/requests/" + quote(number, safe=""))[1]["status"] == "принята в работу"


def test_script_typed_into_a_field_is_shown_as_text(page: Page, live_server):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    evil = "<script>alert('xss')</script><img src=x onerror=alert(1)>"
    open_form(page)
    fill_form(page, "XSS-Э2Э", evil, evil)
    page.get_by_role("button", name="Сохранить").click()
    row = page.locator("table.requests tbody tr").first
    expect(row.locator("td").nth(1)).to_have_text(evil)
    row.get_by_role("link", name="XSS-Э2Э").click()
    expect(page.locator(".description")).to_have_text(evil)
    assert page.locator("main script, main img").count() == 0
    assert dialogs == []


def test_post_without_the_csrf_token_is_refused(page: Page, live_server):
    open_form(page)
    fill_form(page, "CSRF-Э2Э", "Без токена", "")
    page.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    with page.expect_response(re.compile(r"/add_request$")) as answer:
        page.get_by_role("button", name="Сохранить").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert").first).to_contain_text("Форма устарела")
    expect(page.get_by_label("Номер")).to_have_value("CSRF-Э2Э")      # what was typed is still there
    assert live_server.api("GET", "/api/requests/" + quote("CSRF-Э2Э", safe=""))[0] == 404


def test_list_reads_well_on_a_phone(browser, live_server):
    context = browser.new_context(base_url=live_server.base_url, viewport={"width": 390, "height": 844},
                                  locale="ru-RU", is_mobile=True)
    try:
        phone = context.new_page()
        live_server.api("POST", "/api/requests", {"number": "PHONE-1", "position": "Щитовая"})
        phone.goto("/")
        expect(phone.get_by_role("link", name="PHONE-1")).to_be_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the list is wider than the phone screen: {width}px"
    finally:
        context.close()
