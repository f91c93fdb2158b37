"""Long polling: the poller against the fake Bot API, and `serve` reading updates in a real local host."""
from __future__ import annotations

import signal
from typing import Any

import pytest

from functions.alerts.bot import handle_update
from functions.alerts.polling import WEBHOOK_ACTIVE, UpdatePoller, poller_for_serve
from functions.settings import get_settings, load_settings
from functions.storage import StorageUnavailable
from tests.e2e.server import server_env, start_server
from tests.fakes.telegram_server import FakeTelegram, Webhook


def get_updates_calls(fake: FakeTelegram) -> list[dict[str, Any]]:
    return [call.params for call in fake.calls if call.method == "getUpdates"]


def test_the_poller_hands_each_update_to_the_bot_and_confirms_it(store, bot: FakeTelegram) -> None:
    first = bot.add_message("/help")
    pauses: list[float] = []
    poller = UpdatePoller(get_settings(), lambda update: handle_update(update), wait_seconds=0, pause=pauses.append)
    assert poller.poll_once() is True
    assert len(bot.messages) == 1 and poller.offset == first + 1
    second = bot.add_message("/help")
    assert poller.poll_once() is True                 # the offset confirms the first; only the second comes
    assert len(bot.messages) == 2 and poller.offset == second + 1
    assert [u["update_id"] for u in bot.updates] == [second]
    calls = get_updates_calls(bot)
    assert calls[0]["allowed_updates"] == ["message", "callback_query"] and "offset" not in calls[0]
    assert calls[1]["offset"] == first + 1 and pauses == []


def test_an_update_that_met_a_storage_outage_comes_again(bot: FakeTelegram) -> None:
    update_id = bot.add_message("/help")
    seen: list[int] = []

    def handle(update: dict[str, Any]) -> str:
        seen.append(update["update_id"])
        if len(seen) == 1:
            raise StorageUnavailable("Хранилище недоступно: тест")
        return "done"
    pauses: list[float] = []
    poller = UpdatePoller(get_settings(), handle, wait_seconds=0, pause=pauses.append)
    assert poller.poll_once() is True and poller.offset is None and pauses == [2.0]
    assert poller.poll_once() is True and poller.offset == update_id + 1
    assert seen == [update_id, update_id]


def test_a_webhook_set_for_the_bot_stops_polling_and_says_how_to_fix_it(bot: FakeTelegram,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    bot.webhook = Webhook("https://omis.example/telegram/webhook", "s", None)
    poller = UpdatePoller(get_settings(), lambda update: "done", wait_seconds=0, pause=lambda seconds: None)
    assert poller.poll_once() is False
    assert WEBHOOK_ACTIVE in caplog.text and "telegram-webhook --delete" in caplog.text


def test_a_wrong_token_stops_polling(bot: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(bot.settings_env(OMIS_TELEGRAM_TOKEN="987654321:AAH-wrong_secret_token-ZYXWVUTSRQ"))
    poller = UpdatePoller(settings, lambda update: "done", wait_seconds=0, pause=lambda seconds: None)
    assert poller.poll_once() is False
    assert "OMIS_TELEGRAM_TOKEN" in caplog.text and "AAH-wrong" not in caplog.text


def test_serve_polls_only_with_a_token_a_chat_and_no_webhook_secret(telegram: FakeTelegram) -> None:
    def poller(**env: str) -> UpdatePoller | None:
        return poller_for_serve(load_settings(env), lambda update: "done")
    assert poller() is None
    assert poller(OMIS_TELEGRAM_TOKEN=telegram.token) is None          # telegram-chats still finds the chats
    assert poller(**telegram.settings_env(OMIS_TELEGRAM_WEBHOOK_SECRET="s3cret")) is None
    assert isinstance(poller(**telegram.settings_env()), UpdatePoller)


def test_serve_answers_commands_by_long_polling_and_stops_on_ctrl_c(azurite: str, omis_env: dict[str, str],
                                                                   tmp_path) -> None:
    with FakeTelegram() as telegram:
        env = server_env(azurite, omis_env["OMIS_TABLE_PREFIX"])
        env.update(telegram.settings_env())
        telegram.add_message("/help", message_id=11)
        server = start_server(env, tmp_path / "serve.log")
        try:
            [first] = telegram.wait_for_messages(1)
            assert "/status НОМЕР" in first.text and first.reply_to == 11
            telegram.add_message("/delayed", message_id=12)       # while serve waits in getUpdates
            second = telegram.wait_for_messages(2)[1]
            assert second.reply_to == 12 and "Просроченных заявок нет" in second.text
        finally:
            server.process.send_signal(signal.SIGINT)
            code = server.process.wait(timeout=15)
        log = server.log.read_text(encoding="utf-8")
        assert code == 0, log
        assert "long polling" in log and "чтение обновлений остановлено" in log
        assert telegram.token.split(":", 1)[1] not in log
        polls = get_updates_calls(telegram)
        assert polls and all(int(p["timeout"]) > 0 for p in polls)
