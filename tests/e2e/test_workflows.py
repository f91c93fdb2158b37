"""Everyday workflows in a real browser: edit, look-alike numbers, archive, reopen, unmatched mail."""
from __future__ import annotations

import itertools
import os
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from .browser import Page, expect
from .seed import unmatched_mail

pytestmark = pytest.mark.e2e
_mails = itertools.count(1)


def card_url(number: str) -> str:
    return "/requests/" + quote(number, safe="")


def api_request(live_server, number: str) -> dict:
    status, found = live_server.api("GET", "/api/requests/" + quote(number, safe=""))
    assert status == 200, found
    return found


def create(live_server, number: str, **fields) -> dict:
    status, made = live_server.api("POST", "/api/requests", {"number": number, **fields})
    assert status == 201, made
    return made


def no_dialogs(page: Page) -> list[str]:
    """Record any alert/confirm the page opens (the workflows must not ask through dialogs)."""
    seen: list[str] = []
    page.on("dialog", lambda dialog: (seen.append(dialog.message), dialog.dismiss()))
    return seen


# ----- edit ----------------------------------------------------------------------------------

def test_edit_opens_with_its_errors_then_saves_and_keeps_the_old_number(page: Page, live_server):
    create(live_server, "ED-1", position="Котельная", description="Течь")
    page.goto(card_url("ED-1"))
    edit = page.locator("details.edit")
    expect(edit).not_to_have_attribute("open", "")
    edit.locator("summary").click()
    page.locator("#edit-number").fill("ED#1")
    page.locator("#edit-position").fill("Котельная №2")
    with page.expect_response(re.compile(r"/edit$")) as answer:
        page.get_by_role("button", name="Сохранить изменения").click()
    assert answer.value.status == 400
    expect(page.locator("details.edit")).to_have_attribute("open", "")
    expect(page.locator("#edit-number")).to_be_focused()
    expect(page.locator("#edit-number-error")).to_contain_text("только буквы, цифры")
    expect(page.locator("#edit-position")).to_have_value("Котельная №2")      # what was typed is kept
    assert api_request(live_server, "ED-1")["position"] == "Котельная"

    page.locator("#edit-number").fill("ED-1A")
    page.get_by_role("button", name="Сохранить изменения").click()
    page.wait_for_url(live_server.base_url + card_url("ED-1A"))
    expect(page.get_by_role("status")).to_have_text("Заявка «ED-1A»: изменения сохранены.")
    expect(page.locator(".facts")).to_contain_text("раньше: ED-1")
    expect(page.locator("ol.timeline > li").last).to_contain_text("Номер изменён: «ED-1» → «ED-1A».")
    assert api_request(live_server, "ED-1")["number"] == "ED-1A"            # the old number is an alias
    assert api_request(live_server, "ED-1A")["position"] == "Котельная №2"


def test_edit_to_a_taken_number_links_the_request_that_has_it(page: Page, live_server):
    create(live_server, "ED-2")
    create(live_server, "ED-3")
    page.goto(card_url("ED-3"))
    page.locator("details.edit > summary").click()
    page.locator("#edit-number").fill("ed-2")
    with page.expect_response(re.compile(r"/edit$")) as answer:
        page.get_by_role("button", name="Сохранить изменения").click()
    assert answer.value.status == 409
    expect(page.locator("#edit-number-error")).to_contain_text("уже есть")
    page.get_by_role("link", name="Открыть заявку ED-2").click()
    page.wait_for_url(live_server.base_url + card_url("ED-2"))


def test_edit_of_level_and_due_and_clearing_the_due(page: Page, live_server):
    create(live_server, "ED-4")
    page.goto(card_url("ED-4"))
    page.locator("details.edit > summary").click()
    due = (datetime.now(timezone.utc) + timedelta(days=5)).astimezone().strftime("%Y-%m-%dT%H:%M")
    page.locator("#edit-due").fill(due)
    page.get_by_role("button", name="Сохранить изменения").click()
    expect(page.get_by_role("status")).to_contain_text("изменения сохранены")
    assert api_request(live_server, "ED-4")["due"] is not None
    page.locator("details.edit > summary").click()
    expect(page.locator("#edit-due")).not_to_have_value("")
    page.locator("#edit-due").fill("")
    page.get_by_role("button", name="Сохранить изменения").click()
    expect(page.get_by_role("status")).to_contain_text("изменения сохранены")
    assert api_request(live_server, "ED-4")["due"] is None
    expect(page.locator("ol.timeline > li").last).to_contain_text("Срок снят.")


def test_limited_fields_have_maxlength_and_a_live_counter(page: Page, live_server):
    page.goto("/new")
    for name, limit in (("number", 32), ("position", 200), ("description", 4000)):
        expect(page.locator(f"#{name}")).to_have_attribute("maxlength", str(limit))
        expect(page.locator(f"#{name}-counter")).to_have_text(f"0 из {limit}")
    page.locator("#position").press_sequentially("Котельная")
    expect(page.locator("#position-counter")).to_have_text("9 из 200")
    page.locator("#number").press_sequentially("N" * 40)                 # the browser stops at 32
    expect(page.locator("#number")).to_have_value("N" * 32)
    expect(page.locator("#number-counter")).to_have_text("32 из 32")
    expect(page.locator("#number-counter")).to_have_class(re.compile(r"\bfull\b"))
    expect(page.locator("#live")).to_have_text("Достигнут предел: 32 символов.")
    create(live_server, "CNT-1")
    page.goto(card_url("CNT-1"))
    expect(page.locator("#comment")).to_have_attribute("maxlength", "2000")
    page.locator("#comment").fill("Позвонили")
    expect(page.locator("#comment-counter")).to_have_text("9 из 2000")


# ----- look-alike numbers ----------------------------------------------------------------------

def test_look_alike_number_is_refused_naming_and_linking_the_existing_one(page: Page, live_server):
    create(live_server, "AB-17")                                  # Latin A and B
    page.goto("/new")
    page.locator("#number").fill("АВ-17")                         # Cyrillic А and В
    page.locator("#position").fill("Щитовая")
    with page.expect_response(re.compile(r"/add_request$")) as answer:
        page.get_by_role("button", name="Сохранить").click()
    assert answer.value.status == 409
    confirm = page.locator(".confirm")
    expect(confirm).to_contain_text("похож на номер заявки AB-17")
    expect(confirm.get_by_role("link", name="AB-17")).to_have_attribute("href", card_url("AB-17"))
    checkbox = page.get_by_label("Это другая заявка: сохранить номер АВ-17")
    expect(checkbox).to_be_focused()
    expect(page.locator("#position")).to_have_value("Щитовая")

    with page.expect_response(re.compile(r"/add_request$")) as again:      # not ticked: refused again
        page.get_by_role("button", name="Сохранить").click()
    assert again.value.status == 409
    page.get_by_label("Это другая заявка: сохранить номер АВ-17").check()
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_role("status")).to_have_text("Заявка «АВ-17» добавлена.")
    assert api_request(live_server, "АВ-17")["position"] == "Щитовая"
    assert api_request(live_server, "AB-17")["position"] == ""


def test_a_confirmation_counts_only_for_the_number_it_was_shown_for(page: Page, live_server):
    create(live_server, "CX-5")                                   # Latin C and X
    page.goto("/new")
    page.locator("#number").fill("СХ-5")                          # Cyrillic С and Х
    page.get_by_role("button", name="Сохранить").click()
    page.get_by_label("Это другая заявка: сохранить номер СХ-5").check()
    page.locator("#number").fill("CХ-5")                          # changed after ticking: Latin C, Cyrillic Х
    with page.expect_response(re.compile(r"/add_request$")) as answer:
        page.get_by_role("button", name="Сохранить").click()
    assert answer.value.status == 409
    expect(page.locator(".confirm")).to_contain_text("CХ-5")
    assert live_server.api("GET", "/api/requests/" + quote("CХ-5", safe=""))[0] == 404


def test_look_alike_number_in_the_edit_form_needs_the_checkbox(page: Page, live_server):
    create(live_server, "KM-8")
    create(live_server, "LA-1")
    page.goto(card_url("LA-1"))
    page.locator("details.edit > summary").click()
    page.locator("#edit-number").fill("КМ-8")
    with page.expect_response(re.compile(r"/edit$")) as answer:
        page.get_by_role("button", name="Сохранить изменения").click()
    assert answer.value.status == 409
    expect(page.locator("details.edit")).to_have_attribute("open", "")
    expect(page.locator("details.edit .confirm")).to_contain_text("похож на номер заявки KM-8")
    page.get_by_label("Это другая заявка: сохранить номер КМ-8").check()
    page.get_by_role("button", name="Сохранить изменения").click()
    page.wait_for_url(live_server.base_url + card_url("КМ-8"))
    assert api_request(live_server, "КМ-8")["aliases"] == ["LA-1"]


# ----- archive ---------------------------------------------------------------------------------

def test_archive_asks_nothing_says_what_it_did_and_restore_brings_it_back(page: Page, live_server):
    dialogs = no_dialogs(page)
    create(live_server, "AR-1", position="Склад №4")
    page.goto(card_url("AR-1"))
    page.get_by_role("button", name="В архив").click()
    expect(page.get_by_role("status")).to_have_text(
        "Заявка «AR-1» перенесена в архив: её нет в списке и напоминаниях.")
    expect(page.locator(".card-head .archived")).to_have_text("В архиве")
    expect(page.locator("#status")).to_have_count(0)                   # an archived request is not changed
    assert dialogs == []
    page.goto("/")
    expect(page.get_by_role("link", name="AR-1", exact=True)).to_have_count(0)
    page.get_by_role("navigation", name="Разделы").get_by_role("link", name="Архив").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Архив")
    page.get_by_label("Номер, позиция или текст комментария").fill("склад №4")
    page.get_by_role("button", name="Найти").click()
    page.get_by_role("link", name="AR-1", exact=True).click()
    expect(page.get_by_role("link", name="← Архив")).to_be_visible()
    page.get_by_role("button", name="Вернуть из архива").click()
    expect(page.get_by_role("status")).to_have_text("Заявка «AR-1» возвращена из архива.")
    expect(page.locator("#status")).to_be_visible()
    assert api_request(live_server, "AR-1")["archived"] is False
    page.goto("/")
    expect(page.get_by_role("link", name="AR-1", exact=True)).to_be_visible()


# ----- reopening a final request ------------------------------------------------------------------

def test_reopening_a_final_request_asks_to_confirm(page: Page, live_server):
    create(live_server, "RO-1")
    live_server.api("POST", "/api/requests/RO-1/status", {"status": "выполнена", "comment": "Сделано"})
    page.goto(card_url("RO-1"))
    page.locator("#status").select_option("принята в работу")
    page.locator("#comment").fill("Течь снова")
    with page.expect_response(re.compile(r"/status$")) as answer:
        page.get_by_role("button", name="Сохранить").click()
    assert answer.value.status == 409
    expect(page.locator(".confirm")).to_contain_text(
        "Заявка закрыта (статус «выполнена»). Открыть её снова со статусом «принята в работу»?")
    yes = page.get_by_role("button", name="Да, открыть снова")
    expect(yes).to_be_focused()
    expect(page.get_by_role("link", name="Отмена")).to_have_attribute("href", card_url("RO-1"))
    expect(page.locator("#comment")).to_have_value("Течь снова")
    assert api_request(live_server, "RO-1")["status"] == "выполнена"
    yes.click()
    expect(page.get_by_role("status")).to_have_text("Заявка «RO-1»: статус «принята в работу».")
    expect(page.locator("ol.timeline > li").last).to_contain_text("Заявка открыта снова (была «выполнена»). Течь снова")
    assert api_request(live_server, "RO-1")["status"] == "принята в работу"


def test_reopen_cancelled_changes_nothing(page: Page, live_server):
    create(live_server, "RO-2")
    live_server.api("POST", "/api/requests/RO-2/status", {"status": "отклонена"})
    page.goto(card_url("RO-2"))
    page.locator("#status").select_option("заявка отправлена")
    page.get_by_role("button", name="Сохранить").click()
    page.get_by_role("link", name="Отмена").click()
    page.wait_for_url(live_server.base_url + card_url("RO-2"))
    expect(page.locator(".confirm")).to_have_count(0)
    assert api_request(live_server, "RO-2")["status"] == "отклонена"


# ----- unmatched mail ----------------------------------------------------------------------------

def keep_mail(live_store, *, numbers: tuple[str, ...], subject: str, text: str,
              received: datetime | None = None) -> str:
    """Keep a mail on the server's unmatched list as the mail pass would; return its id."""
    mail = unmatched_mail(message_id=f"<e2e-{os.getpid()}-{next(_mails)}@contractor.example>", subject=subject,
                          text=text, numbers=numbers,
                          received=received or datetime.now(timezone.utc) - timedelta(minutes=30))
    assert live_store.mail.keep_unmatched(mail)
    return mail.id


def open_mail_ids(live_server) -> list[str]:
    status, found = live_server.api("GET", "/api/mail/unmatched?limit=100")
    assert status == 200
    return [m["id"] for m in found["items"]]


def mail_entries(live_server, number: str) -> list[dict]:
    """Return the history entries a mail made (a request made from a mail is registered with source mail too)."""
    return [h for h in api_request(live_server, number)["history"] if h["source"] == "mail" and "message_id" in h]


def test_menu_counts_the_unmatched_mail(page: Page, live_server, live_store):
    keep_mail(live_store, numbers=("CNT-404",), subject="Заявка CNT-404", text="Про заявку CNT-404.")
    page.goto("/")
    badge = page.get_by_role("navigation", name="Разделы").locator(".badge")
    expect(badge).to_have_text(str(len(open_mail_ids(live_server))))


def test_attach_from_the_list_applies_the_mail_and_links_the_request(page: Page, live_server, live_store):
    item = keep_mail(live_store, numbers=("UM-1",), subject="Заявка UM-1 — выполнена",
                     text="Работы по заявке UM-1 выполнены.")
    create(live_server, "UM-1")
    page.goto("/mail/unmatched")
    mail = page.locator(f"#mail-{item}")
    field = mail.get_by_label("Номер заявки")
    expect(field).to_have_value("UM-1")                                   # the mail's number
    options = mail.locator("datalist option")
    assert "UM-1" in [options.nth(i).get_attribute("value") for i in range(options.count())]
    mail.get_by_role("button", name="Привязать к заявке").click()
    page.wait_for_url(live_server.base_url + "/mail/unmatched")
    expect(page.get_by_role("status")).to_contain_text("Письмо «Заявка UM-1 — выполнена» привязано к заявке «UM-1».")
    expect(page.locator(f"#mail-{item}")).to_have_count(0)
    page.get_by_role("status").get_by_role("link", name="Открыть заявку «UM-1»").click()
    page.wait_for_url(live_server.base_url + card_url("UM-1"))
    expect(page.locator(".page-head .status")).to_have_text("выполнена")
    expect(page.locator("ol.timeline .source-mail")).to_have_count(1)


def test_double_click_on_attach_applies_the_mail_once(page: Page, live_server, live_store):
    item = keep_mail(live_store, numbers=("UM-2",), subject="RE: UM-2", text="Заявку UM-2 приняли в работу.")
    create(live_server, "UM-2")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto("/mail/unmatched")
    page.locator(f"#mail-{item}").get_by_role("button", name="Привязать к заявке").dblclick()
    expect(page.get_by_role("status")).to_contain_text("привязано к заявке «UM-2»")
    assert len(posts) == 1
    assert len(mail_entries(live_server, "UM-2")) == 1 and item not in open_mail_ids(live_server)


def test_attach_sent_twice_at_once_still_applies_the_mail_once(page: Page, live_server, live_store):
    item = keep_mail(live_store, numbers=("UM-3",), subject="RE: UM-3", text="Заявка UM-3 выполнена.")
    create(live_server, "UM-3")
    page.goto("/mail/unmatched")
    # Past the page's own guard: the same form posted twice at once, as two tabs or a flaky network would.
    codes = page.locator(f"#mail-{item} form.attach").evaluate("""async (form) => {
        const send = () => fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form)),
                                               redirect: "manual"});
        const answers = await Promise.all([send(), send()]);
        return answers.map((a) => a.type === "opaqueredirect" ? 303 : a.status);
    }""")
    assert 303 in codes and set(codes) <= {303, 409}
    assert len(mail_entries(live_server, "UM-3")) == 1
    assert api_request(live_server, "UM-3")["status"] == "выполнена" and item not in open_mail_ids(live_server)
    page.goto("/mail/unmatched")
    expect(page.locator(f"#mail-{item}")).to_have_count(0)


def test_attach_to_an_unknown_number_shows_the_error_at_that_mail_and_a_look_alike(page: Page, live_server,
                                                                                  live_store):
    create(live_server, "QA-3")                                      # Latin A
    item = keep_mail(live_store, numbers=(), subject="Без номера", text="Работы завершены.")
    page.goto("/mail/unmatched")
    mail = page.locator(f"#mail-{item}")
    mail.get_by_label("Номер заявки").fill("QА-3")                   # Cyrillic А
    with page.expect_response(re.compile(r"/attach$")) as answer:
        mail.get_by_role("button", name="Привязать к заявке").click()
    assert answer.value.status == 404
    mail = page.locator(f"#mail-{item}")
    expect(mail.get_by_role("alert")).to_contain_text("Заявка «QА-3» не найдена.")
    expect(mail.get_by_role("alert").get_by_role("link", name="QA-3")).to_have_attribute("href", card_url("QA-3"))
    expect(mail.get_by_label("Номер заявки")).to_have_value("QА-3")
    expect(mail.get_by_label("Номер заявки")).to_be_focused()
    assert item in open_mail_ids(live_server)


def test_create_from_a_mail_is_prefilled_and_applies_the_mail(page: Page, live_server, live_store):
    item = keep_mail(live_store, numbers=("UM-NEW-4",), subject="Заявка UM-NEW-4: приняли в работу",
                     text="Заявку UM-NEW-4 взяли в работу, выезд завтра.")
    page.goto("/mail/unmatched")
    mail = page.locator(f"#mail-{item}")
    mail.locator("details.create > summary").click()
    expect(mail.get_by_label("Номер", exact=True)).to_have_value("UM-NEW-4")
    expect(mail.get_by_label("Описание")).to_have_value("Заявка UM-NEW-4: приняли в работу")
    mail.get_by_label("Позиция").fill("Насосная")
    mail.get_by_role("button", name="Создать заявку").click()
    expect(page.get_by_role("status")).to_contain_text("стало заявкой «UM-NEW-4»")
    made = api_request(live_server, "UM-NEW-4")
    assert made["position"] == "Насосная" and made["status"] == "принята в работу"
    assert len(mail_entries(live_server, "UM-NEW-4")) == 1 and item not in open_mail_ids(live_server)


def test_create_from_a_mail_with_a_look_alike_number_asks_for_the_checkbox(page: Page, live_server, live_store):
    create(live_server, "TK-7")                                       # Latin
    item = keep_mail(live_store, numbers=("ТК-7",), subject="Заявка ТК-7", text="По заявке ТК-7 нужен доступ.")
    page.goto("/mail/unmatched")
    page.locator(f"#mail-{item} details.create > summary").click()
    with page.expect_response(re.compile(r"/create$")) as answer:
        page.locator(f"#mail-{item}").get_by_role("button", name="Создать заявку").click()
    assert answer.value.status == 409
    mail = page.locator(f"#mail-{item}")
    expect(mail.locator("details.create")).to_have_attribute("open", "")
    expect(mail.locator(".confirm")).to_contain_text("похож на номер заявки TK-7")
    mail.get_by_label("Это другая заявка: сохранить номер ТК-7").check()
    mail.get_by_role("button", name="Создать заявку").click()
    expect(page.get_by_role("status")).to_contain_text("стало заявкой «ТК-7»")
    assert api_request(live_server, "ТК-7")["number"] == "ТК-7"


def test_dismiss_hides_the_mail_and_the_hidden_list_shows_who_did_it(page: Page, live_server, live_store):
    item = keep_mail(live_store, numbers=(), subject="Вопрос по договору E2E", text="Пришлите график.")
    page.goto("/mail/unmatched")
    page.locator(f"#mail-{item}").get_by_role("button", name="Скрыть").dblclick()
    expect(page.get_by_role("status")).to_have_text("Письмо «Вопрос по договору E2E» скрыто.")
    expect(page.locator(f"#mail-{item}")).to_have_count(0)
    page.get_by_role("link", name="Скрытые письма").click()
    hidden = page.locator(f"#mail-{item}")
    expect(hidden).to_contain_text("Скрыто: Инженер")
    expect(hidden.get_by_role("button")).to_have_count(0)


def test_one_mail_page_shows_the_whole_text_and_keeps_errors_on_it(page: Page, live_server, live_store):
    text = "Начало письма.\n" + "Подробности работ. " * 300 + "\nКонец письма: подпись диспетчера."
    item = keep_mail(live_store, numbers=("UM-5",), subject="Длинное письмо UM-5", text=text)
    create(live_server, "UM-5")
    page.goto("/mail/unmatched")
    page.locator(f"#mail-{item}").get_by_role("link", name="Письмо целиком").click()
    page.wait_for_url(live_server.base_url + f"/mail/unmatched/{item}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Длинное письмо UM-5")
    expect(page.locator(".mail-text")).to_contain_text("Конец письма: подпись диспетчера.")
    page.get_by_label("Номер заявки").fill("НЕТ-ТАКОЙ-5")
    with page.expect_response(re.compile(r"/attach$")) as answer:
        page.get_by_role("button", name="Привязать к заявке").click()
    assert answer.value.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Длинное письмо UM-5")    # still the mail's page
    expect(page.get_by_role("alert")).to_contain_text("не найдена")
    page.get_by_label("Номер заявки").fill("UM-5")
    page.get_by_role("button", name="Привязать к заявке").click()
    page.wait_for_url(live_server.base_url + "/mail/unmatched")
    expect(page.get_by_role("status")).to_contain_text("привязано к заявке «UM-5»")
    page.goto(f"/mail/unmatched/{item}")
    expect(page.locator(".facts")).to_contain_text("привязано к заявке UM-5")
    expect(page.get_by_role("button", name="Привязать к заявке")).to_have_count(0)
