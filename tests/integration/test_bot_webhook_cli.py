"""`python -m functions telegram-webhook --set URL | --delete | --info` against the fake Bot API."""
from __future__ import annotations

import pytest

from tests.fakes.telegram_server import FakeTelegram, Webhook

SECRET = "cli-webhook-secret_0123456789"
URL = "https://func-omis.azurewebsites.net/telegram/webhook"


@pytest.fixture
def bot(configure, telegram: FakeTelegram) -> FakeTelegram:
    """Point OMIS at the fake Bot API, with the webhook secret set."""
    configure(**telegram.settings_env(OMIS_TELEGRAM_WEBHOOK_SECRET=SECRET))
    return telegram


def test_set_registers_the_url_with_the_secret_for_messages_and_buttons(bot: FakeTelegram, cli_main, capsys) -> None:
    assert cli_main(["telegram-webhook", "--set", URL]) == 0
    assert bot.webhook == Webhook(URL, SECRET, ("message", "callback_query"))
    out = capsys.readouterr().out
    assert f"Webhook установлен: {URL}" in out and SECRET not in out


@pytest.mark.parametrize("url", ["http://func-omis.azurewebsites.net/telegram/webhook",
                                 "https://func-omis.azurewebsites.net/api/requests",
                                 "https://func-omis.azurewebsites.net/telegram/webhook?x=1",
                                 "https:///telegram/webhook", "func-omis.azurewebsites.net/telegram/webhook"])
def test_set_wants_an_https_url_ending_in_the_webhook_path(bot: FakeTelegram, cli_main, capsys, url: str) -> None:
    assert cli_main(["telegram-webhook", "--set", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Ошибка: адрес webhook") and ("https://" in err and "/telegram/webhook" in err)
    assert bot.webhook is None and bot.calls == []


def test_set_needs_the_secret(configure, telegram: FakeTelegram, cli_main, capsys) -> None:
    configure(**telegram.settings_env())
    assert cli_main(["telegram-webhook", "--set", URL]) == 2
    assert "OMIS_TELEGRAM_WEBHOOK_SECRET" in capsys.readouterr().err
    assert telegram.calls == []


def test_every_action_needs_the_token(omis_env, cli_main, capsys) -> None:
    for args in (["--set", URL], ["--delete"], ["--info"]):
        assert cli_main(["telegram-webhook", *args]) == 2
    assert capsys.readouterr().err.count("OMIS_TELEGRAM_TOKEN не задан") == 2   # --set stops at the secret first


def test_exactly_one_action_is_asked_for(bot: FakeTelegram, cli_main) -> None:
    with pytest.raises(SystemExit) as none:
        cli_main(["telegram-webhook"])
    with pytest.raises(SystemExit) as both:
        cli_main(["telegram-webhook", "--info", "--delete"])
    assert none.value.code == both.value.code == 2


def test_info_shows_the_url_pending_updates_and_the_last_error(bot: FakeTelegram, cli_main, capsys) -> None:
    assert cli_main(["telegram-webhook", "--info"]) == 0
    assert "Webhook не установлен" in capsys.readouterr().out
    cli_main(["telegram-webhook", "--set", URL])
    bot.add_message("/help")
    bot.webhook_last_error = (1_796_000_000, "Wrong response from the webhook: 401 Unauthorized")
    capsys.readouterr()
    assert cli_main(["telegram-webhook", "--info"]) == 0
    out = capsys.readouterr().out
    assert f"Webhook: {URL}" in out and "Ожидают доставки: 1" in out
    assert "Типы обновлений: message, callback_query" in out
    assert "Последняя ошибка доставки: " in out and "401 Unauthorized" in out and "OMIS_TELEGRAM_WEBHOOK_SECRET" in out


def test_delete_removes_the_webhook_so_updates_can_be_polled(bot: FakeTelegram, cli_main, capsys) -> None:
    cli_main(["telegram-webhook", "--set", URL])
    assert cli_main(["telegram-webhook", "--delete"]) == 0
    assert bot.webhook is None
    assert "Webhook удалён" in capsys.readouterr().out
    assert [c.params for c in bot.calls if c.method == "deleteWebhook"] == [{"drop_pending_updates": False}]


def test_a_refusal_of_telegram_exits_1_with_its_reason(bot: FakeTelegram, cli_main, capsys) -> None:
    bot.fail_next(400, "Bad Request: bad webhook: Failed to resolve host: Name or service not known",
                  method="setWebhook")
    assert cli_main(["telegram-webhook", "--set", URL]) == 1
    err = capsys.readouterr().err
    assert "setWebhook" in err and "Failed to resolve host" in err
    assert bot.token not in err
