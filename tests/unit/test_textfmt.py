"""How user text goes into a page: numbers, direction isolation, flash links (pure)."""
from __future__ import annotations

import pytest
from markupsafe import Markup

from functions.web.signing import make_flash, read_flash
from functions.web.textfmt import isolate_plain, isolate_quoted, number_html


@pytest.mark.parametrize("number, html", [
    ("10502", '<bdi class="num">10502</bdi>'),
    ("ТО-2026/77", '<bdi class="num">ТО-<wbr>2026/<wbr>77</bdi>'),
    ("A.B_C", '<bdi class="num">A.<wbr>B_C</bdi>'),
    ("END-", '<bdi class="num">END-</bdi>'),                 # nothing after the last separator: no break there
    ("a//b", '<bdi class="num">a/<wbr>/<wbr>b</bdi>'),
])
def test_a_number_may_break_only_after_its_separators(number, html):
    assert str(number_html(number)) == html


def test_a_number_is_escaped():
    assert number_html('<b>-"x"') == Markup('<bdi class="num">&lt;b&gt;-<wbr>&#34;x&#34;</bdi>')


def test_quoted_parts_of_a_message_are_isolated_and_escaped():
    message = "Заявка «<b>טופס-1</b>» и «x» добавлена."
    assert isolate_quoted(message) == Markup(
        "Заявка «<bdi>&lt;b&gt;טופס-1&lt;/b&gt;</bdi>» и «<bdi>x</bdi>» добавлена.")
    assert isolate_quoted("без кавычек <i>") == Markup("без кавычек &lt;i&gt;")


def test_markup_is_left_as_it_is():
    link = Markup('Войдите. <a href="/.auth/login/aad">Войти</a>')
    assert isolate_quoted(link) is link


def test_plain_isolation_wraps_in_first_strong_isolate():
    assert isolate_plain("שלום") == "\u2068שלום\u2069"


def test_a_flash_carries_a_link_on_this_site():
    value = make_flash("key", "Письмо привязано.", link=("/requests/A%2F1", "Открыть заявку «A/1»"))
    flash = read_flash("key", value)
    assert flash is not None and flash.message == "Письмо привязано."
    assert (flash.href, flash.link_text) == ("/requests/A%2F1", "Открыть заявку «A/1»")
    assert read_flash("other-key", value) is None


@pytest.mark.parametrize("href", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x",
                                  "/ok\nSet-Cookie: x"])
def test_a_flash_refuses_links_off_this_site(href):
    with pytest.raises(ValueError):
        make_flash("key", "Готово.", link=(href, "ссылка"))


def test_a_flash_without_a_link_has_none():
    flash = read_flash("key", make_flash("key", "Готово."))
    assert flash is not None and (flash.message, flash.href, flash.link_text) == ("Готово.", "", "")
