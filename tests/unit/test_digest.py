"""Reminder texts: the deadline and escalation digests, splitting to Telegram's limit."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from functions.alerts.digest import (
    GROUP_TITLES,
    TELEGRAM_LIMIT,
    DigestItem,
    build_deadline_digest,
    build_escalation_digest,
    format_deadline_line,
    format_quiet,
    format_working,
    split_message,
    telegram_length,
)
from functions.model import DEFAULT_STATUS, STATUS_ACCEPTED, STATUS_CLARIFY, Request
from tests.fakes.telegram_server import html_visible_text

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 26, 18, 37, tzinfo=timezone.utc)
PUBLIC_URL = "https://omis.example.org"


def make_request(number: str = "ТО-2026/77", *, status: str = DEFAULT_STATUS, position: str = "12",
                 comment: str = "", changed: datetime = datetime(2026, 11, 26, 15, 17, tzinfo=timezone.utc)) -> Request:
    """Build a stored-looking request whose status last changed at `changed`."""
    return Request(number=number, position=position, description="", author="Инженер", status=status,
                   comment=comment, comment_author="Инженер", created_at=changed,
                   status_updated_at=changed, updated_at=changed)


def quiet(request: Request) -> float:
    """Return the calendar minutes a request has been quiet at NOW."""
    return (NOW - request.status_updated_at).total_seconds() / 60


@pytest.mark.parametrize(("minutes", "expected"), [
    (45, "45 мин"),
    (200, "3 ч 20 мин"),
    (2 * 1440 + 4 * 60, "2 дн 4 ч"),
    (2 * 1440 + 4 * 60 + 59, "2 дн 4 ч"),
    (180, "3 ч"),
    (2880, "2 дн"),
    (1439, "23 ч 59 мин"),
    (59.9, "59 мин"),
    (0, "0 мин"),
    (-5, "0 мин"),
])
def test_format_quiet_reads_like_russian_short_units(minutes: float, expected: str) -> None:
    assert format_quiet(minutes) == expected


def test_short_text_is_one_part_and_blank_text_none() -> None:
    assert split_message("коротко\nи ясно") == ["коротко\nи ясно"]
    assert split_message("  \n ") == []


def test_overlong_line_is_hard_split_without_cutting_entities() -> None:
    text = "&amp;&lt;" * 1000                      # 9000 characters, no line break, no space
    parts = split_message(text)
    assert len(parts) == 3
    assert "".join(parts) == text
    for part in parts:
        assert len(part) <= TELEGRAM_LIMIT
        html_visible_text(part)


def test_overlong_line_prefers_breaking_at_a_space() -> None:
    text = " ".join(["слово"] * 1500)
    parts = split_message(text)
    assert all(len(part) <= TELEGRAM_LIMIT for part in parts)
    assert all(not part.startswith(" ") and " ".join(part.split()) == part.strip() for part in parts)
    assert "".join(parts).split() == text.split()


def test_split_counts_utf16_units_like_telegram() -> None:
    text = "😀" * 3000                              # 3000 characters, 6000 UTF-16 units
    parts = split_message(text)
    assert len(parts) == 2
    assert all(telegram_length(part) <= TELEGRAM_LIMIT for part in parts)
    assert "".join(parts) == text


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "б", " ", "\n", "&amp;", "<b>x</b>", "😀"]), max_size=200).map("".join),
       st.integers(min_value=16, max_value=80))
def test_split_keeps_every_character_and_the_limit(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(telegram_length(part) <= limit and part.strip() for part in parts)
    assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", text)


# ----- the deadline digest (SPEC §4) ---------------------------------------------------------

DEADLINE_NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)      # 15:00 in Moscow


def item(number: str = "ТО-2026/77", *, kind: str = "accept", overdue: float = 130, working_time: bool = False,
         deadline: datetime = datetime(2026, 12, 5, 9, 50, tzinfo=timezone.utc), position: str = "Котельная №3",
         level_title: str = "Срочная", status: str = DEFAULT_STATUS, comment: str = "",
         last_news_at: datetime | None = None) -> DigestItem:
    """Build a breached request's digest item; the deadline defaults to 12:50 in Moscow."""
    return DigestItem(number=number, position=position, level_title=level_title, status=status, kind=kind,
                      deadline=deadline, overdue_minutes=overdue, working_time=working_time,
                      last_news_at=last_news_at, comment=comment)


def line_of(entry: DigestItem, public_url: str | None = None) -> str:
    return format_deadline_line(entry, now=DEADLINE_NOW, tz=MOSCOW, public_url=public_url)


@pytest.mark.parametrize(("minutes", "expected"), [(0, "0 мин"), (45, "45 мин"), (120, "2 ч"), (1625, "27 ч 5 мин")])
def test_working_time_is_shown_in_hours_not_days(minutes: float, expected: str) -> None:
    assert format_working(minutes) == expected


@pytest.mark.parametrize(("entry", "wording"), [
    (item(kind="accept", overdue=130), "срок ответа 05.12 12:50, ответ просрочен на 2 ч 10 мин"),
    (item(kind="update", overdue=27 * 60, last_news_at=datetime(2026, 12, 3, 7, 0, tzinfo=timezone.utc)),
     "молчит 1 дн 3 ч сверх срока 05.12 12:50, последние новости 03.12 10:00"),
    (item(kind="update", overdue=90), "молчит 1 ч 30 мин сверх срока 05.12 12:50"),
    (item(kind="resolve", overdue=180, deadline=datetime(2026, 12, 5, 15, 0, tzinfo=timezone.utc)),
     "срок выполнения прошёл 05.12 18:00, 3 ч назад"),
    (item(kind="promise", overdue=180, deadline=datetime(2026, 12, 5, 15, 0, tzinfo=timezone.utc)),
     "обещано к 05.12 18:00, просрочено на 3 ч"),
    (item(kind="clarify", overdue=26 * 60, status=STATUS_CLARIFY),
     "ждёт нашего ответа 1 дн 2 ч сверх срока 05.12 12:50"),
    (item(kind="accept", overdue=27 * 60 + 5, working_time=True),
     "ответ просрочен на 27 ч 5 мин рабочего времени"),
    (item(kind="resolve", overdue=600, working_time=True), "срок выполнения прошёл 05.12 12:50, 10 ч рабочего времени назад"),
    (item(kind="accept", deadline=datetime(2025, 12, 30, 9, 0, tzinfo=timezone.utc)), "срок ответа 30.12.2025 12:00"),
])
def test_each_kind_says_when_and_how_late_in_its_own_words(entry: DigestItem, wording: str) -> None:
    line = line_of(entry)
    assert wording in line
    assert ("рабочего времени" in line) == entry.working_time
    html_visible_text(line)


def test_deadline_line_names_number_position_level_and_status() -> None:
    line = line_of(item(status=STATUS_ACCEPTED, comment="выезд\n согласован"))
    assert line.startswith("• <b>ТО-2026/77</b> · позиция: Котельная №3 · Срочная · принята в работу · срок ответа")
    assert line.endswith(" · <i>выезд согласован</i>")
    assert "\n" not in line
    assert "позиция" not in line_of(item(position="   "))


def test_deadline_line_links_the_number_when_a_public_url_is_set() -> None:
    line = line_of(item(), PUBLIC_URL + "/")
    assert line.startswith('• <a href="https://omis.example.org/requests/%D0%A2%D0%9E-2026%2F77"><b>ТО-2026/77</b></a>')
    assert "href" not in line_of(item())


def test_deadline_line_escapes_every_user_value() -> None:
    entry = item("<b>&", position="<i>поз & co</i>", level_title="A&B <x>", status="<s>",
                 comment="ответ <b>&amp; ещё")
    line = line_of(entry, PUBLIC_URL)
    assert "<b>&lt;b&gt;&amp;</b>" in line and "/requests/%3Cb%3E%26" in line
    assert "позиция: &lt;i&gt;поз &amp; co&lt;/i&gt;" in line
    assert " · A&amp;B &lt;x&gt; · &lt;s&gt; · " in line
    assert "<i>ответ &lt;b&gt;&amp;amp; ещё</i>" in line
    visible = html_visible_text(line)
    assert "A&B <x>" in visible and "ответ <b>&amp; ещё" in visible


def test_deadline_line_shortens_a_long_comment() -> None:
    comment = re.search(r"<i>(.*)</i>", line_of(item(comment="слово " * 200)))
    assert comment is not None and comment.group(1).endswith("…") and len(comment.group(1)) <= 150


def at(hour: int) -> datetime:
    return datetime(2026, 12, 5, hour, 0, tzinfo=timezone.utc)


def test_digest_groups_by_kind_in_spec_order_with_counts_and_a_total() -> None:
    items = [
        item("C-1", kind="clarify", deadline=at(1), status=STATUS_CLARIFY),
        item("P-1", kind="promise", deadline=at(2)),
        item("A-2", kind="accept", deadline=at(8)),
        item("U-1", kind="update", deadline=at(3)),
        item("A-1", kind="accept", deadline=at(4)),
        item("R-1", kind="resolve", deadline=at(5)),
        item("A-3", kind="accept", deadline=at(8)),
    ]
    digest = build_deadline_digest(items, now=DEADLINE_NOW, tz=MOSCOW, public_url=PUBLIC_URL)
    lines = digest.split("\n")
    assert lines[0] == "<b>⏰ Просрочено заявок: 7</b>"
    headings = [line for line in lines if line.startswith("<b>") and "⏰" not in line]
    assert headings == ["<b>Ждём ответа подрядчика: 3</b>", "<b>Подрядчик молчит: 1</b>",
                        "<b>Просрочен срок выполнения: 1</b>", "<b>Подрядчик не сдержал обещание: 1</b>",
                        "<b>Подрядчик ждёт нас: 1</b>"]
    numbers = [re.search(r"<b>([^<]+)</b>", line).group(1) for line in lines if line.startswith("•")]
    assert numbers == ["A-1", "A-2", "A-3", "U-1", "R-1", "P-1", "C-1"]     # earliest deadline first in a group
    assert all(lines[lines.index(heading) - 1] == "" for heading in headings)
    html_visible_text(digest)


def test_digest_leaves_out_empty_groups_and_is_empty_without_items() -> None:
    digest = build_deadline_digest([item(kind="promise")], now=DEADLINE_NOW, tz=MOSCOW, public_url=None)
    assert digest.split("\n")[:3] == ["<b>⏰ Просрочено заявок: 1</b>", "", "<b>Подрядчик не сдержал обещание: 1</b>"]
    assert all(title not in digest for kind, title in GROUP_TITLES.items() if kind != "promise")
    assert build_deadline_digest([], now=DEADLINE_NOW, tz=MOSCOW, public_url=None) == ""
    assert build_escalation_digest([], now=DEADLINE_NOW, tz=MOSCOW, public_url=None, escalation_minutes=60) == ""


def test_digest_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown deadline kind"):
        build_deadline_digest([item(kind="late")], now=DEADLINE_NOW, tz=MOSCOW, public_url=None)


def test_escalation_digest_has_its_heading_and_the_same_lines() -> None:
    items = [item("E-1", kind="resolve", overdue=600, working_time=True), item("E-2", kind="accept", overdue=300)]
    digest = build_escalation_digest(items, now=DEADLINE_NOW, tz=MOSCOW, public_url=PUBLIC_URL,
                                     escalation_minutes=240)
    lines = digest.split("\n")
    assert lines[0] == "<b>🚨 Эскалация: 2</b>"
    assert lines[1] == "Срок прошёл больше 4 ч назад."
    team = build_deadline_digest(items, now=DEADLINE_NOW, tz=MOSCOW, public_url=PUBLIC_URL)
    assert [line for line in lines if line.startswith("•")] == [line for line in team.split("\n") if line.startswith("•")]
    assert "<b>Ждём ответа подрядчика: 1</b>" in lines and "<b>Просрочен срок выполнения: 1</b>" in lines
    html_visible_text(digest)


def test_long_deadline_digest_splits_within_the_limit_keeping_every_line() -> None:
    kinds = list(GROUP_TITLES)
    items = [item(f"ТО-2026/{i:03d}", kind=kinds[i % 5], position="Позиция " + "я" * 190, level_title="Т" * 100,
                  comment="к" * 400, overdue=60 + i, working_time=bool(i % 2)) for i in range(80)]
    digest = build_deadline_digest(items, now=DEADLINE_NOW, tz=MOSCOW, public_url=PUBLIC_URL)
    assert telegram_length(digest) > 3 * TELEGRAM_LIMIT
    parts = split_message(digest)
    assert len(parts) >= 4
    for part in parts:
        assert telegram_length(part) <= TELEGRAM_LIMIT
        html_visible_text(part)
    assert [line for part in parts for line in part.split("\n") if line] == [
        line for line in digest.split("\n") if line]
