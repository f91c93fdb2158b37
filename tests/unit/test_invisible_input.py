"""Invisible and control characters: refused in numbers, refused or removed in typed text, removed from mail."""
from __future__ import annotations

import pytest

from functions.mail.message import clean_mail_text, message_from_graph
from functions.model import (
    ValidationError,
    clean_typed_text,
    number_error,
    validate_new_request,
    validate_status_change,
)

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f",
        "\u061c"]
# Default-ignorable code points (Unicode's DerivedCoreProperties) and invisible letters.
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\u2061", "\u2062", "\u2063", "\u2064", "\ufeff", "\u00ad",
             "\u034f", "\u180b", "\u180c", "\u180d", "\u180e", "\u180f", "\ufe00", "\ufe0f", "\U000e0001",
             "\U000e0041", "\U000e0100", "\U000e0fff", "\u3164", "\u115f", "\u1160", "\uffa0", "\u2800"]


@pytest.mark.parametrize("char", BIDI, ids=lambda c: f"U+{ord(c):04X}")
def test_a_number_with_a_bidi_control_is_refused_naming_it(char: str) -> None:
    message = number_error(f"АБ-17{char}1")
    assert message is not None and "направлением текста" in message and f"U+{ord(char):04X}" in message


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_a_number_with_an_invisible_character_is_refused_naming_it(char: str) -> None:
    for number in (f"AB{char}17", f"{char}17", f"17{char}"):
        message = number_error(number)
        assert message is not None and "невидимый символ" in message and f"U+{ord(char):04X}" in message


@pytest.mark.parametrize("number", ["ТО-2026/77", "AB-17", "N-less_1.2", "ΑΒ-17", "한국-1", "١٢٣"])
def test_visible_numbers_of_any_alphabet_are_still_fine(number: str) -> None:
    assert number_error(number) is None


@pytest.mark.parametrize("control", ["\x1b", "\x07", "\x7f", "\x85", "\r", "\x0b", "\x0c", "\x01", "\x9b"],
                         ids=lambda c: f"U+{ord(c):04X}")
def test_control_characters_in_typed_text_are_refused_per_field(control: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_new_request("A-1", f"pos{control}[2J", f"desc{control}")
    assert set(caught.value.fields) == {"position", "description"}
    assert f"U+{ord(control):04X}" in caught.value.fields["position"]
    with pytest.raises(ValidationError) as caught:
        validate_status_change("выполнена", f"готово{control}")
    assert set(caught.value.fields) == {"comment"}


def test_newlines_and_tabs_stay_and_crlf_becomes_lf() -> None:
    assert validate_new_request("A-1", "поз\t7", "строка\r\nстрока\nещё") == ("A-1", "поз\t7", "строка\nстрока\nещё")
    assert validate_status_change("выполнена", "a\r\nb")[1] == "a\nb"


def test_bidi_controls_and_invisible_characters_are_removed_from_typed_text() -> None:
    typed = "\u202eПозиция\u200b 7\ufeff"
    assert validate_new_request("A-1", typed, "a\u2066b\u2069c\u00ad")[1:] == ("Позиция 7", "abc")
    assert validate_status_change("выполнена", "ок\u200f\u061c")[1] == "ок"
    assert clean_typed_text("👩\u200d🔧 ❤\ufe0f") == "👩🔧 ❤"


def test_the_length_limit_counts_what_is_stored() -> None:
    assert validate_new_request("A-1", "п" * 200 + "\u200b" * 10, "")[1] == "п" * 200


def test_mail_text_loses_controls_and_bidi_but_keeps_lines_and_tabs() -> None:
    assert clean_mail_text("Заявка\u202e 101\x1b[31m\r\nвыполнена\tок\x07\r") == "Заявка 101[31m\nвыполнена\tок"
    assert clean_mail_text("\ud800x") == "\ufffdx"
    assert clean_mail_text(None) == ""


def test_graph_messages_are_cleaned_before_anyone_reads_them() -> None:
    message = message_from_graph({
        "id": "AAMk=", "internetMessageId": "<m1@x>", "receivedDateTime": "2026-12-01T10:00:00Z",
        "subject": "RE: Заявка\u202e 101\x1b]0;pwned\x07",
        "body": {"contentType": "text", "content": "Заявка 101\r\nвыполнена\x00\x08"},
        "uniqueBody": {"contentType": "text", "content": "выполнена\u2066"},
        "from": {"emailAddress": {"name": "Иван\u202e\r\nПетров", "address": "ivan@contractor.example"}},
    })
    assert message is not None
    assert message.subject == "RE: Заявка 101]0;pwned"
    assert message.body == "Заявка 101\nвыполнена"
    assert message.unique_body == "выполнена"
    assert message.sender_name == "Иван\nПетров"
