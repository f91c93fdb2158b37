"""The mail OMIS writes: subjects, Russian bodies, escaped HTML, MIME with our Message-ID (pure)."""
from __future__ import annotations

import datetime as dt
import email
from email import policy

import pytest

from functions.mail.compose import (
    FALLBACK_DOMAIN,
    build_mime,
    compose_nudge,
    compose_request,
    message_id_domain,
    new_message_id,
    request_subject,
)
from functions.mail.parse import parse_mail

DATE = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.timezone.utc)


def request(**overrides):
    values = {"number": "ТО-2026/77", "position": "Подстанция 5", "description": "Не работает\nсчётчик <A&B>",
              "level_title": "Срочная", "deadlines": ["Ответ — до 26.11.2026 13:30", "Решение — до 27.11.2026 12:30"],
              "author": "Инженер Иванов"}
    values.update(overrides)
    return compose_request(**values)


def test_request_subject_names_the_number_and_the_position_when_there_is_one():
    assert request_subject("101", "Подстанция 5") == "Заявка №101 — Подстанция 5"
    assert request_subject("101", "  ") == "Заявка №101"
    assert request().subject == "Заявка №ТО-2026/77 — Подстанция 5"


def test_request_body_has_every_field_the_caller_gave():
    mail = request()
    for part in ("ТО-2026/77", "Подстанция 5", "Не работает", "Срочная", "Ответ — до 26.11.2026 13:30",
                 "Решение — до 27.11.2026 12:30", "Инженер Иванов"):
        assert part in mail.text and part in mail.html


def test_request_without_position_or_description_leaves_their_lines_out():
    mail = request(position=None, description="")
    assert "Позиция" not in mail.text and "Описание" not in mail.text
    assert "Позиция" not in mail.html and "Описание" not in mail.html


def test_html_is_escaped_and_keeps_line_breaks():
    mail = request(author="<script>alert(1)</script>")
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert "счётчик &lt;A&amp;B&gt;" in mail.html and "Не работает<br>" in mail.html
    assert "счётчик <A&B>" in mail.text


def test_nudge_is_short_polite_and_names_the_passed_deadline():
    mail = compose_nudge(number="101", position="Поз. 7", passed="Прошёл срок ответа: 26.11.2026 18:00")
    assert mail.subject == "Напоминание по заявке №101 — Поз. 7"
    assert "Прошёл срок ответа: 26.11.2026 18:00." in mail.text and "№101" in mail.html
    assert len(mail.text) < 600
    assert compose_nudge(number="101", position=None, subject="Заявка №101").subject == "RE: Заявка №101"


@pytest.mark.parametrize("mail", [request(description=""), compose_nudge(number="101", position="Поз. 7",
                                                                         passed="Прошёл срок ответа")])
def test_our_own_words_set_no_status_if_the_contractor_quotes_them(mail):
    parsed = parse_mail(mail.subject, mail.text)
    assert parsed.numbers and set(parsed.statuses.values()) == {None} and parsed.general_status is None


def test_message_ids_are_new_each_time_and_on_the_mailbox_domain():
    first, second = new_message_id("contoso.example"), new_message_id("contoso.example")
    assert first != second and first.startswith("<") and first.endswith("@contoso.example>")
    assert message_id_domain("OMIS@Contoso.Example") == "contoso.example"
    assert message_id_domain("заявки@почта.рф") == "xn--80a1acny.xn--p1ai"
    assert message_id_domain("6f1c2b3a-0000-4f70-8a9b-0c1d2e3f4a5b") == FALLBACK_DOMAIN
    with pytest.raises(ValueError):
        new_message_id("not a domain")


def test_mime_carries_our_ids_a_utf8_subject_and_both_alternatives():
    mail = request()
    raw = build_mime(sender="omis@contoso.example", to=["ivan@contractor.example", "petr@почта.рф"],
                     subject=mail.subject, text=mail.text, html=mail.html, message_id="<omis.1@contoso.example>",
                     date=DATE, in_reply_to="<c-1@contractor.example>",
                     references=["<c-0@contractor.example>", "<c-1@contractor.example>", "<c-1@contractor.example>"])

    assert raw.isascii() and b"\r\n" in raw
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Message-ID"] == "<omis.1@contoso.example>"
    assert parsed["In-Reply-To"] == "<c-1@contractor.example>"
    assert parsed["References"] == "<c-0@contractor.example> <c-1@contractor.example>"
    assert parsed["Subject"] == "Заявка №ТО-2026/77 — Подстанция 5"
    assert parsed["To"].addresses[1].domain == "xn--80a1acny.xn--p1ai"
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == mail.text
    assert "счётчик &lt;A&amp;B&gt;" in parsed.get_body(("html",)).get_content()


def test_mime_refuses_a_non_latin_local_part():
    with pytest.raises(ValueError, match="до @"):
        build_mime(sender=None, to=["пётр@почта.рф"], subject="s", text="t", html="h",
                   message_id="<ok@contoso.example>", date=DATE)


def test_new_mail_mime_has_no_threading_headers():
    raw = build_mime(sender=None, to=["ivan@contractor.example"], subject="Заявка №1", text="т", html="<p>т</p>",
                     message_id="<omis.2@contoso.example>", date=DATE)
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["In-Reply-To"] is None and parsed["References"] is None and parsed["From"] is None


@pytest.mark.parametrize("field, value", [("message_id", "omis.3@contoso.example"),
                                          ("message_id", "<no-at-sign>"), ("in_reply_to", "<a b@c>")])
def test_mime_refuses_what_is_not_a_message_id(field, value):
    args = {"sender": None, "to": ["ivan@contractor.example"], "subject": "s", "text": "t", "html": "h",
            "message_id": "<ok@contoso.example>", "date": DATE}
    args[field] = value
    with pytest.raises(ValueError, match="Message-ID"):
        build_mime(**args)
