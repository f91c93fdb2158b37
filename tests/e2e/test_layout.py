"""Layout measured in the browser: numbers that never break inside, nothing wider than a phone, a compact phone view."""
from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import pytest

from .browser import Page, expect
from .seed import unmatched_mail

pytestmark = pytest.mark.e2e

SLASHED = "ТО-2026/79"
PLAIN = "10502"
LONG = "СЕВЕРНЫЙ-ТЕПЛО-2026/ОБЪЕКТ.77"          # 29 of 32 characters: wider than a phone's heading
LONG_TEXT = ("Не передаются показания теплосчётчика, проверить линию связи и питание вычислителя "
             "https://example.org/очень/длинная/ссылка/без/пробелов/" + "x" * 120 + " ") * 12


def ensure(live_server, number: str, **fields) -> None:
    """Create a request once per session (the live server is shared by the browser tests)."""
    status, found = live_server.api("POST", "/api/requests", {"number": number, **fields})
    assert status in (201, 409), found


def card_url(number: str) -> str:
    return "/requests/" + quote(number, safe="")


@pytest.fixture(scope="module")
def crowded(live_server, live_store) -> dict[str, str]:
    """Requests and mail with the longest texts the fields allow; return the paths of every page."""
    for number in (SLASHED, PLAIN, LONG):
        ensure(live_server, number, position="Котельная №3, узел учёта тепловой энергии и теплоносителя " * 3,
               description=LONG_TEXT[:4000])
        live_server.api("POST", "/api/requests/" + quote(number, safe="") + "/status",
                        {"status": "требует уточнения", "comment": LONG_TEXT[:2000]})
    if live_store.get_request("LAY-LATE-1") is None:     # three days without an answer: breached, marked
        live_store.add_request("LAY-LATE-1", "Просроченная " * 10, LONG_TEXT[:1000],
                               now=datetime.now(timezone.utc) - timedelta(days=3))
    ensure(live_server, "LAY-ARCH-1", position="Архивная " * 20)
    live_server.api("DELETE", "/api/requests/LAY-ARCH-1")
    mail = unmatched_mail(message_id=f"<layout-{os.getpid()}@contractor.example>",
                          subject="Заявка ЛОНГ-2026/ОЧЕНЬ-ДЛИННЫЙ-НОМЕР-1 " + "тема " * 60,
                          sender="Очень длинное имя отправителя из подрядной организации "
                                 "<very.long.dispatcher.address.of.the.contractor@contractor-company.example>",
                          text=LONG_TEXT, numbers=("ЛОНГ-2026/ОЧЕНЬ-ДЛИННЫЙ-НОМЕР-1", "10999"),
                          received=datetime.now(timezone.utc) - timedelta(minutes=5))
    live_store.mail.keep_unmatched(mail)
    return {"list": "/", "archive": "/?archived=1", "card": card_url(LONG), "late": card_url("LAY-LATE-1"),
            "new": "/new",
            "unmatched": "/mail/unmatched", "mail": f"/mail/unmatched/{mail.id}",
            "search": "/?" + urlencode({"q": "котельная"})}


OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const wide = [];
    for (const el of document.body.querySelectorAll("*")) {
        if (el.closest(".sr-only, thead, datalist, select, script")) continue;   // not drawn, or clipped
        const style = getComputedStyle(el);
        if (style.display === "none" || style.visibility === "hidden") continue;
        const box = el.getBoundingClientRect();
        if (box.width === 0 && box.height === 0) continue;
        if (box.right > width + 1 || box.left < -1) {
            wide.push(`${el.tagName.toLowerCase()}.${el.className}: ${Math.round(box.left)}..${Math.round(box.right)}`);
        }
    }
    return {page: document.documentElement.scrollWidth, width, wide: wide.slice(0, 8)};
}"""

PIECES_WHOLE = """(number) => {
    // Each piece between <wbr>s is one text node: it must sit on one line (a break only at a <wbr>).
    const broken = [];
    for (const node of number.childNodes) {
        if (node.nodeType !== Node.TEXT_NODE) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        const lines = new Set(Array.from(range.getClientRects(), (r) => Math.round(r.top)));
        if (lines.size > 1) broken.push(node.textContent);
    }
    return broken;
}"""


def lines_of(locator) -> int:
    """Count the lines an inline element is drawn on."""
    return locator.evaluate("(el) => new Set(Array.from(el.getClientRects(), (r) => Math.round(r.top))).size")


def assert_fits(page: Page, what: str) -> None:
    found = page.evaluate(OVERFLOW)
    assert found["page"] <= found["width"] and not found["wide"], f"{what} is wider than the screen: {found}"


# ----- numbers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("number", [SLASHED, PLAIN])
def test_a_number_is_on_one_line_in_the_list_beside_long_texts(page: Page, crowded, number):
    page.goto("/?" + urlencode({"q": number}))
    cell = page.locator("td.number .num").filter(has_text=re.compile("^" + re.escape(number) + "$"))
    expect(cell).to_have_count(1)
    assert lines_of(cell) == 1
    expect(page.get_by_role("link", name=number, exact=True)).to_have_count(1)   # read out whole, no spaces
    note = page.locator("tr", has=cell).locator("td.note")
    assert note.bounding_box()["height"] > 3 * cell.bounding_box()["height"]      # the comment did wrap beside it


@pytest.mark.parametrize("number", [SLASHED, PLAIN, LONG])
def test_a_number_is_on_one_line_on_its_card_on_a_laptop(page: Page, crowded, number):
    page.goto(card_url(number))
    assert lines_of(page.locator("h1 .num")) == 1
    assert lines_of(page.locator(".facts dd .num").first) == 1


def test_a_long_number_breaks_on_a_phone_only_after_its_separators(phone: Page, crowded):
    phone.goto(card_url(LONG))
    heading = phone.locator("h1 .num")
    assert lines_of(heading) > 1                                    # it had to break…
    assert heading.evaluate(PIECES_WHOLE) == []                     # …and did so only at / - .
    assert heading.inner_text().replace("\n", "") == LONG
    phone.goto("/?" + urlencode({"q": LONG}))
    cell = phone.locator("td.number .num").first
    assert lines_of(cell) > 1 and cell.evaluate(PIECES_WHOLE) == []
    assert_fits(phone, "the list with a long number")


@pytest.mark.parametrize("number", [SLASHED, PLAIN])
def test_a_short_number_stays_whole_on_a_phone(phone: Page, crowded, number):
    phone.goto("/?" + urlencode({"q": number}))
    assert lines_of(phone.locator("td.number .num").first) == 1
    phone.goto(card_url(number))
    assert lines_of(phone.locator("h1 .num")) == 1


# ----- phones ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["list", "archive", "card", "late", "new", "unmatched", "mail", "search"])
def test_nothing_is_wider_than_a_phone(phone: Page, crowded, name):
    phone.goto(crowded[name])
    assert_fits(phone, name)


def test_nothing_is_wider_than_a_phone_with_forms_open_and_refused(phone: Page, crowded):
    phone.goto(card_url(LONG))
    phone.locator("details.edit > summary").click()
    assert_fits(phone, "the card with «Изменить» open")
    phone.locator("#edit-number").fill("плохой#номер")
    phone.get_by_role("button", name="Сохранить изменения").click()
    expect(phone.locator("#edit-number-error")).to_be_visible()
    assert_fits(phone, "the card with the edit form refused")
    phone.goto("/new")
    phone.locator("#number").fill(SLASHED)
    phone.get_by_role("button", name="Сохранить").click()
    expect(phone.locator("#number-error")).to_be_visible()
    assert_fits(phone, "the new-request form refused")
    phone.goto(crowded["unmatched"])
    phone.locator("details.create > summary").first.click()
    assert_fits(phone, "unmatched mail with «Создать заявку» open")


def test_the_phone_header_is_compact(phone: Page, crowded):
    phone.goto("/")
    header = phone.locator("header.topbar").bounding_box()
    assert header["height"] <= 100, header
    for name in ("Заявки", "Новая заявка", "Неразобранные письма", "Архив"):
        link = phone.get_by_role("navigation", name="Разделы").get_by_role("link", name=name, exact=False).first
        expect(link).to_be_in_viewport()


def test_the_phone_list_is_dense(phone: Page, crowded, live_server):
    ensure(live_server, "DENSE-1", position="Щитовая")
    phone.goto("/?" + urlencode({"q": "DENSE-1"}))
    row = phone.locator("tbody tr").first
    assert row.bounding_box()["height"] <= 150, row.bounding_box()
    number, status = row.locator("td.number"), row.locator("td.state .status")
    assert abs(number.bounding_box()["y"] - row.locator("td.when").bounding_box()["y"]) < 4   # number and time share a line
    assert status.bounding_box()["y"] < row.locator("td.position").bounding_box()["y"]


def test_the_status_form_comes_before_a_long_description_on_a_phone(phone: Page, crowded):
    phone.goto(card_url(LONG))
    status = phone.locator("#status").bounding_box()
    description = phone.locator(".card-description").bounding_box()
    assert status["y"] < description["y"]
    assert status["y"] < 1.5 * 844, status                      # about a screen down, not past 4000 characters
    assert description["height"] > 844                          # the description really is that long


def test_the_status_form_stands_beside_the_facts_on_a_laptop(page: Page, crowded):
    page.goto(card_url(LONG))
    status = page.locator("#status").bounding_box()
    facts = page.locator(".card-facts").bounding_box()
    assert status["x"] > facts["x"] + facts["width"] and status["y"] < facts["y"] + facts["height"]
