"""The Telegram client against a fake Bot API on loopback: real requests, real HTTP."""
from __future__ import annotations

import logging
import socket
import time
import traceback
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests

from functions.alerts.digest import DigestItem, build_deadline_digest
from functions.alerts.telegram import TelegramChat, TelegramError, escape_html, list_chats, send_message
from functions.model import DEFAULT_STATUS
from functions.settings import Settings, load_settings
from tests.fakes.telegram_server import FakeTelegram

WRONG_TOKEN = "987654321:AAH-wrong_secret_token-ZYXWVUTSRQ"


@pytest.fixture
def sleeps() -> list[float]:
    """Collect the waits the client asks for instead of sleeping."""
    return []


def settings_for(fake: FakeTelegram, **extra: str) -> Settings:
    """Build settings pointing at the fake."""
    return load_settings(fake.settings_env(**extra))


def closed_port_url() -> str:
    """Return a loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_message_is_sent_and_recorded(telegram: FakeTelegram) -> None:
    assert send_message("<b>Привет</b> &amp; всё", settings=settings_for(telegram)) is True
    [message] = telegram.messages
    assert message.text == "<b>Привет</b> &amp; всё"
    assert message.chat_id == telegram.chat_id
    assert message.parse_mode == "HTML"
    assert message.link_preview_disabled is True
    assert message.deprecated_fields == ()
    assert message.message_thread_id is None


def test_link_previews_are_turned_off_with_link_preview_options(telegram: FakeTelegram) -> None:
    assert send_message("https://omis.example/requests/1", settings=settings_for(telegram)) is True
    assert telegram.calls[-1].params["link_preview_options"] == {"is_disabled": True}
    assert "disable_web_page_preview" not in telegram.calls[-1].params


def test_forum_topic_is_named_when_set(telegram: FakeTelegram) -> None:
    assert send_message("тема", settings=settings_for(telegram, OMIS_TELEGRAM_THREAD_ID="42")) is True
    assert telegram.messages[0].message_thread_id == "42"
    assert telegram.calls[-1].params["message_thread_id"] == 42  # an integer in the JSON, as the Bot API types it


def test_given_session_is_used_and_left_open(telegram: FakeTelegram) -> None:
    with requests.Session() as session:
        assert send_message("раз", settings=settings_for(telegram), session=session) is True
        assert send_message("два", settings=settings_for(telegram), session=session) is True
    assert [m.text for m in telegram.messages] == ["раз", "два"]


def test_long_digest_goes_out_in_several_accepted_parts(telegram: FakeTelegram) -> None:
    now = datetime(2026, 11, 26, 18, 0, tzinfo=timezone.utc)
    items = [DigestItem(number=f"ТО-2026/{i:03d}", position="Позиция <№> & " + "п" * 120, level_title="Обычная",
                        status=DEFAULT_STATUS, kind="accept", deadline=now - timedelta(hours=1, minutes=i),
                        overdue_minutes=60 + i, working_time=False, last_news_at=None) for i in range(70)]
    digest = build_deadline_digest(items, now=now, tz=ZoneInfo("Europe/Moscow"), public_url="https://omis.example.org")
    assert len(digest) > 2 * 4096

    assert send_message(digest, settings=settings_for(telegram)) is True

    texts = [m.text for m in telegram.messages]
    assert len(texts) >= 3
    assert all(len(text) <= 4096 for text in texts)
    assert "\n".join(texts).split("\n") == digest.split("\n")


def test_fake_enforces_the_real_length_limit(telegram: FakeTelegram) -> None:
    response = requests.post(f"{telegram.url}/bot{telegram.token}/sendMessage",
                             data={"chat_id": telegram.chat_id, "text": "я" * 4097}, timeout=5)
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
    assert telegram.messages == []


def test_fake_speaks_get_with_query_parameters(telegram: FakeTelegram) -> None:
    base = f"{telegram.url}/bot{telegram.token}"
    me = requests.get(f"{base}/getMe", timeout=5).json()
    assert me["ok"] is True and me["result"]["is_bot"] is True
    sent = requests.get(f"{base}/sendMessage", params={"chat_id": "5", "text": "привет"}, timeout=5).json()
    assert sent["ok"] is True and sent["result"]["text"] == "привет"
    assert telegram.messages[0].chat_id == "5"


def test_429_is_waited_out_then_sent(telegram: FakeTelegram, sleeps: list[float]) -> None:
    telegram.too_many_requests(retry_after=3)
    assert send_message("после паузы", settings=settings_for(telegram), sleep=sleeps.append) is True
    assert sleeps == [3.0]
    assert [call.status for call in telegram.calls] == [429, 200]
    assert [m.text for m in telegram.messages] == ["после паузы"]


def test_429_retries_are_bounded(telegram: FakeTelegram, sleeps: list[float],
                                 caplog: pytest.LogCaptureFixture) -> None:
    telegram.too_many_requests(retry_after=1, times=10)
    assert send_message("никак", settings=settings_for(telegram), sleep=sleeps.append) is False
    assert sleeps == [1.0, 1.0, 1.0]
    assert len(telegram.calls) == 4
    assert "429" in caplog.text


def test_429_asking_for_too_long_a_wait_gives_up(telegram: FakeTelegram, sleeps: list[float]) -> None:
    telegram.too_many_requests(retry_after=600)
    assert send_message("никак", settings=settings_for(telegram), sleep=sleeps.append) is False
    assert sleeps == []


def test_server_error_returns_false(telegram: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    telegram.server_error(500)
    assert send_message("текст", settings=settings_for(telegram)) is False
    assert "Telegram временно недоступен (HTTP 500" in caplog.text
    assert telegram.messages == []


def test_wrong_token_returns_false_and_never_shows_the_token(telegram: FakeTelegram,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)         # urllib3 logs every request path at DEBUG
    settings = settings_for(telegram, OMIS_TELEGRAM_TOKEN=WRONG_TOKEN)

    assert send_message("текст", settings=settings) is False
    with pytest.raises(TelegramError) as raised:
        list_chats(settings)

    assert "OMIS_TELEGRAM_TOKEN" in caplog.text and "401" in caplog.text
    assert "OMIS_TELEGRAM_TOKEN" in str(raised.value)
    assert "/bot***/" in caplog.text        # the redacted urllib3 debug line is there ...
    assert WRONG_TOKEN not in caplog.text   # ... and the token nowhere
    assert WRONG_TOKEN not in "".join(traceback.format_exception(raised.value))
    assert [call.status for call in telegram.calls] == [401, 401]


def test_unreachable_api_returns_false_and_never_shows_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = closed_port_url()
    settings = load_settings({"OMIS_TELEGRAM_API_URL": url, "OMIS_TELEGRAM_TOKEN": WRONG_TOKEN,
                              "OMIS_TELEGRAM_CHAT_ID": "-100"})

    assert send_message("текст", settings=settings) is False
    with pytest.raises(TelegramError) as raised:
        list_chats(settings)

    assert f"не удалось связаться с {url}" in caplog.text
    assert f"не удалось связаться с {url}" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert WRONG_TOKEN not in caplog.text
    assert WRONG_TOKEN not in "".join(traceback.format_exception(raised.value))


def test_chat_not_found_returns_false(caplog: pytest.LogCaptureFixture) -> None:
    with FakeTelegram(accept_chats={"-100555"}) as telegram:
        assert send_message("текст", settings=settings_for(telegram)) is False
        assert telegram.messages == []
    assert "чат не найден" in caplog.text and "OMIS_TELEGRAM_CHAT_ID" in caplog.text


def test_bot_removed_from_chat_returns_false(telegram: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    telegram.bot_kicked()
    assert send_message("текст", settings=settings_for(telegram)) is False
    assert "бот не может писать в чат (403" in caplog.text


def test_group_upgrade_is_reported_and_every_part_delivered_to_new_chat(caplog: pytest.LogCaptureFixture) -> None:
    new_chat = "-1009876543210"
    with FakeTelegram(accept_chats={new_chat}) as telegram:
        telegram.migrate(int(new_chat))
        text = "\n".join(["строка " + "x" * 90] * 60)       # two parts
        assert send_message(text, settings=settings_for(telegram)) is True
        assert [m.chat_id for m in telegram.messages] == [new_chat, new_chat]
    assert ("группа стала супергруппой, новый id чата: -1009876543210, укажите его в OMIS_TELEGRAM_CHAT_ID"
            in caplog.text)
    assert [r.levelno for r in caplog.records if "супергруппой" in r.getMessage()] == [logging.ERROR]


def test_broken_html_is_reported(telegram: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    assert send_message("a < b", settings=settings_for(telegram)) is False
    assert "не удалось разобрать HTML-разметку" in caplog.text
    assert send_message(escape_html("a < b & c > d"), settings=settings_for(telegram)) is True
    assert telegram.messages[0].text == "a &lt; b &amp; c &gt; d"


def test_failed_second_part_makes_the_whole_send_fail(telegram: FakeTelegram,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    telegram.respond_next(200, None)         # first part: answered normally
    telegram.server_error(502)
    text = "\n".join(["строка " + "x" * 90] * 60)
    assert send_message(text, settings=settings_for(telegram)) is False
    assert len(telegram.messages) == 1
    assert "отправлено частей 1 из 2" in caplog.text


def test_timeout_returns_false(telegram: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    telegram.delay_next(5)
    started = time.monotonic()
    assert send_message("текст", settings=settings_for(telegram), timeout=0.3) is False
    assert time.monotonic() - started < 3
    assert "не ответил за 0.3 с" in caplog.text


@pytest.mark.parametrize("env", [
    {},
    {"OMIS_TELEGRAM_TOKEN": WRONG_TOKEN},
    {"OMIS_TELEGRAM_CHAT_ID": "-100"},
])
def test_without_token_or_chat_the_text_goes_to_the_log(env: dict[str, str], caplog: pytest.LogCaptureFixture,
                                                        telegram: FakeTelegram) -> None:
    caplog.set_level(logging.INFO)
    settings = load_settings({"OMIS_TELEGRAM_API_URL": telegram.url, **env})
    assert send_message("<b>Заявки</b> без ответа", settings=settings) is False
    assert "[FAKE TELEGRAM] <b>Заявки</b> без ответа" in caplog.text
    assert telegram.calls == []


def test_list_chats_reads_chats_from_get_updates(telegram: FakeTelegram) -> None:
    telegram.add_update("message", {"message_id": 1, "date": 0, "text": "/start",
                                    "chat": {"id": 111, "type": "private", "first_name": "Иван",
                                             "last_name": "Петров"}})
    telegram.add_update("my_chat_member", {"chat": {"id": -100200, "type": "supergroup", "title": "Старое имя"},
                                           "date": 0})
    telegram.add_update("message", {"message_id": 2, "date": 0, "text": "привет",
                                    "chat": {"id": -100200, "type": "supergroup", "title": "Мониторинг"}})
    telegram.add_update("channel_post", {"message_id": 3, "date": 0,
                                         "chat": {"id": -100300, "type": "channel", "title": "Канал"}})
    telegram.add_update("edited_message", {"message_id": 4, "date": 0,
                                           "chat": {"id": 444, "type": "private", "username": "ops_bot_user"}})
    telegram.add_update("chat_member", {"chat": {"id": -500, "type": "group", "title": "Группа"}, "date": 0})
    telegram.add_update("message", {"message_id": 5, "date": 0, "chat": {"id": 111, "type": "private",
                                                                          "first_name": "Иван"}})
    telegram.add_update("poll", {"id": "1"})

    chats = list_chats(settings_for(telegram))

    assert chats == [
        TelegramChat(111, "private", "Иван"),
        TelegramChat(-100200, "supergroup", "Мониторинг"),
        TelegramChat(-100300, "channel", "Канал"),
        TelegramChat(444, "private", "@ops_bot_user"),
        TelegramChat(-500, "group", "Группа"),
    ]


def test_list_chats_needs_only_the_token(telegram: FakeTelegram) -> None:
    settings = load_settings({"OMIS_TELEGRAM_API_URL": telegram.url, "OMIS_TELEGRAM_TOKEN": telegram.token})
    assert list_chats(settings) == []


def test_list_chats_without_token_raises_clearly() -> None:
    with pytest.raises(TelegramError, match="OMIS_TELEGRAM_TOKEN не задан"):
        list_chats(load_settings({}))


def test_list_chats_explains_a_webhook_conflict(telegram: FakeTelegram) -> None:
    telegram.fail_next(409, "Conflict: can't use getUpdates method while webhook is active; "
                            "use deleteWebhook to delete the webhook first", method="getUpdates")
    with pytest.raises(TelegramError, match="deleteWebhook"):
        list_chats(settings_for(telegram))


def test_telegram_chats_reports_a_failure_on_stderr(configure, cli_main, capsys: pytest.CaptureFixture[str]) -> None:
    configure(OMIS_TELEGRAM_TOKEN=WRONG_TOKEN, OMIS_TELEGRAM_API_URL=closed_port_url())
    assert cli_main(["telegram-chats"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("Ошибка: Telegram: не удалось связаться с")
    assert WRONG_TOKEN not in err


def test_a_test_message_that_fails_says_so_on_stderr(configure, cli_main, capsys: pytest.CaptureFixture[str]) -> None:
    configure(OMIS_TELEGRAM_TOKEN=WRONG_TOKEN, OMIS_TELEGRAM_CHAT_ID="-100", OMIS_TELEGRAM_API_URL=closed_port_url())
    assert cli_main(["notify", "--test-message"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Проверочное сообщение не отправлено" in err
