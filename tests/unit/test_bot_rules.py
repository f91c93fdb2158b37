"""Pure rules of the Telegram bot: reading updates and commands, callback data, keyboards, snooze ends."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from functions.alerts.buttons import (
    ButtonKind,
    Pressed,
    callback_data,
    digest_keyboard,
    read_callback_data,
)
from functions.alerts.snoozing import TOMORROW, parse_choice, snooze_until
from functions.alerts.updates import Command, UnreadableUpdate, is_obeyed, parse_command, read_update, sender_name
from functions.settings import SettingsError, load_settings
from functions.storage.bot import new_digest_id
from functions.workhours import WorkingCalendar, parse_work_hours

MSK = ZoneInfo("Europe/Moscow")


def msk(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MSK)


# ----- commands and updates ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("/status 101", Command("status", None, ("101",))),
    ("  /Status@OMIS_Bot   ТО-2026/77  ", Command("status", "omis_bot", ("ТО-2026/77",))),
    ("/snooze 101 завтра", Command("snooze", None, ("101", "завтра"))),
    ("/help", Command("help", None, ())),
    ("status 101", None), ("/", None), ("/статус 101", None), ("", None), ("/help@", None), (None, None),
])
def test_a_command_is_read_with_its_bot_and_words(text: str | None, expected: Command | None) -> None:
    assert parse_command(text) == expected


def test_a_topic_message_is_answered_in_its_topic_and_a_reply_thread_is_not_a_topic() -> None:
    base = {"message_id": 5, "text": "/help", "chat": {"id": -100123, "type": "supergroup"},
            "from": {"id": 1, "first_name": "Иван"}}
    topic = read_update({"update_id": 1, "message": {**base, "message_thread_id": 77, "is_topic_message": True}})
    reply = read_update({"update_id": 2, "message": {**base, "message_thread_id": 3}})
    assert (topic.kind, topic.chat_id, topic.thread_id, topic.message_id, topic.user) == (
        "command", "-100123", 77, 5, "Иван")
    assert reply.thread_id is None


def test_a_press_is_read_from_the_message_that_carries_the_button() -> None:
    incoming = read_update({"update_id": 3, "callback_query": {
        "id": "cb1", "data": "s1:x", "from": {"id": 1, "username": "ops"},
        "message": {"message_id": 9, "chat": {"id": -100123, "type": "supergroup"}}}})
    assert (incoming.kind, incoming.callback_id, incoming.callback_data, incoming.message_id, incoming.user) == (
        "callback", "cb1", "s1:x", 9, "@ops")


@pytest.mark.parametrize("data", [None, [], "x", {}, {"update_id": "1"}, {"update_id": True}, {"update_id": -5},
                                  {"update_id": 1.5}])
def test_what_is_not_an_update_is_unreadable(data: object) -> None:
    with pytest.raises(UnreadableUpdate):
        read_update(data)


@pytest.mark.parametrize("data", [
    {"update_id": 1, "message": {"text": "привет", "chat": {"id": 1}}},
    {"update_id": 1, "edited_message": {"text": "/help", "chat": {"id": 1}}},
    {"update_id": 1, "message": {"text": "/help"}},                      # no chat
    {"update_id": 1, "callback_query": {"data": "s1:x"}},                # no id
    {"update_id": 1, "poll": {"id": "1"}},
])
def test_anything_but_a_command_or_a_press_is_other(data: dict) -> None:
    assert read_update(data).kind == "other"


@pytest.mark.parametrize(("user", "name"), [
    ({"first_name": "Анна", "last_name": "Смирнова", "username": "a"}, "Анна Смирнова"),
    ({"first_name": "Анна"}, "Анна"),
    ({"first_name": " ", "username": "night_shift"}, "@night_shift"),
    ({"id": 7}, "id 7"),
    ({"first_name": "Иван\u202e\n", "last_name": "\x1b[31mПетров"}, "Иван [31mПетров"),
    ({"first_name": "Я" * 300}, "Я" * 100),
    (None, ""),
])
def test_the_sender_is_named_by_first_and_last_name_else_username(user: object, name: str) -> None:
    assert sender_name(user) == name


def test_only_the_configured_chats_are_obeyed() -> None:
    message = {"update_id": 1, "message": {"text": "/help", "chat": {"id": -100123, "username": "omis_ops"}}}
    incoming = read_update(message)
    assert is_obeyed(incoming, ["-100123", None])
    assert is_obeyed(incoming, [None, "@OMIS_ops"])
    assert not is_obeyed(incoming, ["-1001234", "", None])
    assert not is_obeyed(incoming, [])


# ----- callback data and keyboards --------------------------------------------------------------

def test_callback_data_round_trips_and_fits_in_64_bytes() -> None:
    digest_id = new_digest_id(datetime(2026, 11, 26, 7, 0, tzinfo=timezone.utc))
    for code, index in (("s1", None), ("sd", None), ("n", 7), ("abcd", 999)):
        data = callback_data(code, digest_id, index)
        assert len(data.encode("utf-8")) <= 64
        assert read_callback_data(data) == Pressed(code, digest_id, index)


@pytest.mark.parametrize("data", ["", "s1", "s1:", ":abc", "S1:abc", "s1:abc:1000", "s1:a/b", "s1:" + "a" * 70,
                                  "toolong:abc", None, 5])
def test_foreign_callback_data_is_not_read(data: object) -> None:
    assert read_callback_data(data) is None


def test_callback_data_that_would_not_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="not valid"):
        callback_data("s1", "a" * 41)
    with pytest.raises(ValueError, match="bad button code"):
        ButtonKind("Nudge", "x")


def test_the_keyboard_has_digest_buttons_in_a_row_and_a_row_per_request_for_per_request_kinds() -> None:
    whole = [ButtonKind("s1", "Отложить все на 1 ч"), ButtonKind("sd", "Отложить все до завтра")]
    nudge = ButtonKind("n", "Напомнить подрядчику", per_request=True)
    keyboard = digest_keyboard("0" * 23, ["101", "ТО-2026/77"], [*whole, nudge])
    assert keyboard == {"inline_keyboard": [
        [{"text": "Отложить все на 1 ч", "callback_data": "s1:" + "0" * 23},
         {"text": "Отложить все до завтра", "callback_data": "sd:" + "0" * 23}],
        [{"text": "Напомнить подрядчику: 101", "callback_data": "n:" + "0" * 23 + ":0"}],
        [{"text": "Напомнить подрядчику: ТО-2026/77", "callback_data": "n:" + "0" * 23 + ":1"}],
    ]}
    assert digest_keyboard("0" * 23, ["101"], []) is None


# ----- snooze ends ------------------------------------------------------------------------------

@pytest.mark.parametrize(("word", "choice"), [("1h", "1h"), ("1Ч", "1h"), ("4h", "4h"), ("4ч", "4h"), ("1d", "1d"),
                                              ("1д", "1d"), ("Завтра", TOMORROW), ("tomorrow", TOMORROW),
                                              ("2h", None), ("", None), ("навсегда", None)])
def test_snooze_choices_are_read_in_latin_and_cyrillic(word: str, choice: str | None) -> None:
    assert parse_choice(word) == choice


def test_hours_are_wall_clock_hours_whatever_the_calendar() -> None:
    calendar = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-18:00"))
    now = msk(2026, 11, 27, 17, 30)
    assert snooze_until("1h", now, calendar) == msk(2026, 11, 27, 18, 30)
    assert snooze_until("1d", now, calendar) == msk(2026, 11, 28, 17, 30)


@pytest.mark.parametrize(("now", "until"), [
    (msk(2026, 11, 26, 10, 0), msk(2026, 11, 27, 9, 0)),     # Thursday → Friday morning
    (msk(2026, 11, 26, 7, 0), msk(2026, 11, 27, 9, 0)),      # before today's hours: still the next day
    (msk(2026, 11, 27, 19, 0), msk(2026, 11, 30, 10, 0)),    # Friday evening → Monday (a late start)
    (msk(2026, 11, 28, 12, 0), msk(2026, 11, 30, 10, 0)),    # Saturday → Monday
])
def test_tomorrow_is_the_start_of_the_next_working_day_with_working_hours(now: datetime, until: datetime) -> None:
    calendar = WorkingCalendar(MSK, parse_work_hours("Mon 10:00-18:00; Tue-Fri 09:00-13:00; Tue-Fri 14:00-18:00"))
    assert snooze_until(TOMORROW, now, calendar) == until


def test_tomorrow_skips_holidays_and_without_hours_is_nine_in_the_morning() -> None:
    with_hours = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-18:00"), frozenset({date(2026, 11, 27)}))
    assert snooze_until(TOMORROW, msk(2026, 11, 26, 12), with_hours) == msk(2026, 11, 30, 9)
    without_hours = WorkingCalendar(MSK, None, frozenset({date(2026, 11, 27)}))
    assert snooze_until(TOMORROW, msk(2026, 11, 26, 23, 50), without_hours) == msk(2026, 11, 28, 9)
    assert snooze_until(TOMORROW, msk(2026, 11, 28, 0, 10), WorkingCalendar(MSK)) == msk(2026, 11, 29, 9)


def test_tomorrow_is_counted_in_the_teams_time_zone() -> None:
    vladivostok = ZoneInfo("Asia/Vladivostok")
    now = datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc)           # already Friday 01:00 in Vladivostok
    assert snooze_until(TOMORROW, now, WorkingCalendar(vladivostok)) == datetime(2026, 11, 28, 9, 0,
                                                                                 tzinfo=vladivostok)
    assert snooze_until(TOMORROW, now, WorkingCalendar(MSK)) == msk(2026, 11, 27, 9)
    assert snooze_until("4h", now, WorkingCalendar(MSK)) - now == timedelta(hours=4)


# ----- the webhook secret setting -------------------------------------------------------------

@pytest.mark.parametrize("secret", ["a", "A-z_09", "x" * 256])
def test_a_webhook_secret_telegram_accepts_is_taken(secret: str) -> None:
    assert load_settings({"OMIS_TELEGRAM_WEBHOOK_SECRET": secret}).telegram_webhook_secret == secret


@pytest.mark.parametrize("secret", ["x" * 257, "has space", "секрет", "a+b", "a=b"])
def test_a_webhook_secret_telegram_would_refuse_stops_start_up(secret: str) -> None:
    with pytest.raises(SettingsError, match="OMIS_TELEGRAM_WEBHOOK_SECRET"):
        load_settings({"OMIS_TELEGRAM_WEBHOOK_SECRET": secret})


def test_the_webhook_secret_is_not_in_the_settings_repr() -> None:
    assert "hunter2" not in repr(load_settings({"OMIS_TELEGRAM_WEBHOOK_SECRET": "hunter2"}))
    assert load_settings({"OMIS_TELEGRAM_WEBHOOK_SECRET": "  "}).telegram_webhook_secret is None
