"""The bot's commands, acted on through handle_update against Azurite and the fake Bot API, with a fixed clock."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from functions.alerts.bot import handle_update
from functions.alerts.remind import notify
from functions.model import STATUS_ACCEPTED, STATUS_DONE
from tests.fakes.telegram_server import FakeTelegram, SentMessage, message_payload, update
from tests.support import fresh_store

MSK = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 11, 26, 7, 0, tzinfo=timezone.utc)    # Thursday 10:00 in Moscow
ANNA = {"id": 42, "is_bot": False, "first_name": "Анна", "last_name": "Смирнова", "username": "asmirnova"}
_ids = itertools.count(9000)


def say(text: str, now: datetime, **kwargs) -> str:
    """Deliver a message with a command to the bot; return the outcome."""
    return handle_update(update("message", message_payload(text, **kwargs), next(_ids)), store=fresh_store(), now=now)


def answer(bot: FakeTelegram) -> SentMessage:
    """Return the bot's last answer."""
    assert bot.messages, "the bot did not answer"
    return bot.messages[-1]


def test_help_lists_the_commands_in_the_chat_and_topic_it_came_from(bot: FakeTelegram) -> None:
    assert say("/help", T0, thread_id=77, message_id=5) == "done"
    reply = answer(bot)
    assert (reply.chat_id, reply.message_thread_id, reply.reply_to) == (bot.chat_id, "77", 5)
    for command in ("/delayed", "/status НОМЕР", "/snooze НОМЕР 1h|4h|1d|завтра", "/help"):
        assert command in reply.text


def test_a_command_named_to_this_bot_is_answered_and_to_another_bot_is_not(bot: FakeTelegram) -> None:
    assert say("/help@omis_test_bot", T0) == "done"
    assert say("/help@Other_Bot", T0) == "ignored"
    assert say("/nonsense", T0) == "ignored"
    assert len(bot.messages) == 1
    assert say("/nonsense@omis_test_bot", T0) == "done"
    assert "Не знаю команды /nonsense" in answer(bot).text


def test_delayed_names_the_breached_requests_in_the_digest_words(bot: FakeTelegram) -> None:
    store = fresh_store()
    store.add_request("Д-1", position="Котельная №3", now=T0)
    store.add_request("Д-2", now=T0 + timedelta(minutes=50))           # not breached yet
    store.add_request("Д-3", now=T0)
    store.update_status("Д-3", STATUS_DONE, now=T0 + timedelta(minutes=5))
    assert say("/delayed", T0 + timedelta(minutes=61)) == "done"
    text = answer(bot).text
    assert "Просрочено заявок: 1" in text and "<b>Д-1</b>" in text and "Котельная №3" in text
    assert "Ждём ответа подрядчика" in text and "ответ просрочен на 1 мин" in text
    assert "Д-2" not in text and "Д-3" not in text


def test_delayed_says_when_nothing_is_late_and_names_snoozed_requests(bot: FakeTelegram) -> None:
    assert say("/delayed", T0) == "done"
    assert "Просроченных заявок нет" in answer(bot).text
    fresh_store().add_request("Д-4", now=T0)
    say("/snooze Д-4 4h", T0 + timedelta(minutes=10))
    say("/delayed", T0 + timedelta(minutes=70))
    assert "<b>Д-4</b>" in answer(bot).text and "отложены: Д-4 — до чт 26.11 14:10" in answer(bot).text


def test_status_shows_the_request_its_deadline_and_three_last_changes(bot: FakeTelegram) -> None:
    store = fresh_store()
    store.add_request("С-1", position="ТП-12", now=T0)
    store.update_status("С-1", STATUS_ACCEPTED, "бригада выехала", now=T0 + timedelta(minutes=10))
    store.update_comment("С-1", "на месте", now=T0 + timedelta(minutes=20))
    store.update_comment("С-1", "ждём запчасть", now=T0 + timedelta(minutes=30))
    assert say("/status с-1", T0 + timedelta(hours=1)) == "done"
    text = answer(bot).text
    assert text.startswith("<b>С-1</b>") and "Позиция: ТП-12" in text
    assert "Статус: принята в работу (с чт 26.11 10:10)" in text
    assert "Срок: новости от подрядчика до" in text
    assert "Заявка зарегистрирована" not in text       # the fourth change from the end is left out
    assert [line for line in text.split("\n") if line.startswith("• ")] == [
        "• чт 26.11 10:10 · Инженер (веб) · принята в работу · <i>бригада выехала</i>",
        "• чт 26.11 10:20 · Инженер (веб) · принята в работу · <i>на месте</i>",
        "• чт 26.11 10:30 · Инженер (веб) · принята в работу · <i>ждём запчасть</i>",
    ]


def test_status_of_a_breached_request_says_how_late_it_is(bot: FakeTelegram) -> None:
    fresh_store().add_request("С-2", now=T0)
    say("/status С-2", T0 + timedelta(hours=2))
    assert "Срок: ответ подрядчика до чт 26.11 11:00 — <b>просрочено на 1 ч</b>." in answer(bot).text


def test_status_of_an_unknown_number_says_so_and_an_old_number_finds_the_renamed_request(bot: FakeTelegram) -> None:
    store = fresh_store()
    store.add_request("ОПЕЧАТКА-1", now=T0)
    store.edit_request("ОПЕЧАТКА-1", new_number="Н-1", now=T0 + timedelta(minutes=1))
    say("/status Н-404", T0 + timedelta(minutes=2))
    assert answer(bot).text == "Заявка «Н-404» не найдена."
    say("/status опечатка-1", T0 + timedelta(minutes=2))
    assert answer(bot).text.startswith("<b>Н-1</b> (прежний номер «опечатка-1»)")
    say("/status", T0 + timedelta(minutes=2))
    assert answer(bot).text == "Укажите номер заявки: /status НОМЕР"


@pytest.mark.parametrize(("word", "until"), [("1h", T0 + timedelta(hours=1)), ("4ч", T0 + timedelta(hours=4)),
                                             ("1d", T0 + timedelta(days=1)),
                                             ("завтра", datetime(2026, 11, 27, 9, 0, tzinfo=MSK))])
def test_snooze_holds_the_reminders_until_then_with_the_users_name_in_history(bot: FakeTelegram, word: str,
                                                                             until: datetime) -> None:
    store = fresh_store()
    store.add_request("З-1", now=T0 - timedelta(hours=2))       # breached an hour ago
    assert say(f"/snooze З-1 {word}", T0, user=ANNA) == "done"
    request = store.get_request("З-1")
    assert request.snoozed_until == until
    last = request.history[-1]
    assert (last.source, last.author) == ("telegram", "Анна Смирнова")
    assert f"{until.astimezone(MSK):%d.%m.%Y %H:%M}" in last.comment
    assert "З-1: напоминаний не будет до" in answer(bot).text
    report = notify(store=store, now=until - timedelta(minutes=1))
    assert (report.reminded, report.skipped_snoozed) == (0, 1)
    assert notify(store=store, now=until + timedelta(minutes=1)).numbers == ["З-1"]


def test_snooze_until_tomorrow_is_the_next_working_morning_when_hours_are_set(configure, bot: FakeTelegram) -> None:
    configure(OMIS_WORK_HOURS="Mon-Fri 09:00-18:00", OMIS_HOLIDAYS="2026-11-30")
    store = fresh_store()
    store.add_request("З-2", now=T0)
    friday_evening = datetime(2026, 11, 27, 19, 0, tzinfo=MSK)
    say("/snooze З-2 завтра", friday_evening)
    assert store.get_request("З-2").snoozed_until == datetime(2026, 12, 1, 9, 0, tzinfo=MSK)  # Monday is a holiday


def test_snooze_names_the_user_by_username_when_there_is_no_name(bot: FakeTelegram) -> None:
    store = fresh_store()
    store.add_request("З-3", now=T0)
    say("/snooze З-3 1h", T0, user={"id": 7, "is_bot": False, "first_name": "", "username": "night_shift"})
    assert store.get_request("З-3").history[-1].author == "@night_shift"


def test_snooze_explains_what_it_needs_and_refuses_closed_requests(bot: FakeTelegram) -> None:
    store = fresh_store()
    store.add_request("З-4", now=T0)
    store.update_status("З-4", STATUS_DONE, now=T0 + timedelta(minutes=1))
    for text in ("/snooze", "/snooze З-4", "/snooze З-4 2 часа"):
        say(text, T0 + timedelta(minutes=2))
        assert answer(bot).text == "Укажите номер и срок: /snooze НОМЕР 1h|4h|1d|завтра"
    say("/snooze З-404 1h", T0 + timedelta(minutes=2))
    assert answer(bot).text == "Заявка «З-404» не найдена."
    say("/snooze З-4 1h", T0 + timedelta(minutes=2))
    assert "закрыта" in answer(bot).text
    assert store.get_request("З-4").snoozed_until is None
    assert len(store.get_request("З-4").history) == 2


def test_answers_are_escaped_html(bot: FakeTelegram) -> None:
    store = fresh_store()
    store.add_request("Е-1", position="<b>щит</b> & шкаф", now=T0)
    say("/status Е-1", T0 + timedelta(minutes=1))
    assert "Позиция: &lt;b&gt;щит&lt;/b&gt; &amp; шкаф" in answer(bot).text
    say("/status <script>", T0 + timedelta(minutes=1))
    assert answer(bot).text == "Заявка «&lt;script&gt;» не найдена."
