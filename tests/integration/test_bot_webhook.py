"""POST /telegram/webhook through the app's own function objects, against Azurite and the fake Bot API."""
from __future__ import annotations

import json
import logging
import threading

import pytest

from functions.alerts.bot import handle_update
from functions.storage.bot import BOT_PARTITION
from tests.fakes.telegram_server import FakeTelegram, message_payload, update

SECRET = "test-webhook-secret_0123456789-ABC"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture
def bot(configure, telegram: FakeTelegram) -> FakeTelegram:
    """Point OMIS at the fake Bot API, with the webhook secret set."""
    configure(**telegram.settings_env(OMIS_TELEGRAM_WEBHOOK_SECRET=SECRET))
    return telegram


def post(call, body: object, secret: str | None = SECRET, raw: bytes | None = None):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[HEADER] = secret
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    return call("POST", "/telegram/webhook", data, headers)


def help_update(update_id: int = 7001, chat_id: str = "-1001234567890") -> dict:
    return update("message", message_payload("/help", chat_id=chat_id), update_id)


def bot_rows() -> list[dict]:
    from functions.storage import get_store

    table = get_store().tables.requests
    return list(table.query("PartitionKey eq @pk", {"pk": BOT_PARTITION}))


def test_without_the_secret_setting_the_webhook_is_not_there(call, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env())
    response = post(call, help_update(), secret=SECRET)
    assert response.status_code == 404
    assert telegram.messages == []


@pytest.mark.parametrize("given", [None, "", "wrong-secret", SECRET + "x", SECRET[:-1], SECRET.lower()])
def test_a_missing_or_wrong_secret_is_refused(call, bot: FakeTelegram, given: str | None) -> None:
    response = post(call, help_update(), secret=given)
    assert response.status_code == 401
    assert bot.messages == [] and bot.calls == []
    assert bot_rows() == []


def test_the_right_secret_is_obeyed_and_the_answer_goes_to_the_chat(call, bot: FakeTelegram) -> None:
    response = post(call, help_update())
    assert response.status_code == 200
    [answer] = bot.messages
    assert answer.chat_id == "-1001234567890" and answer.reply_to == 1
    assert "/status НОМЕР" in answer.text and "/snooze НОМЕР 1h|4h|1d|завтра" in answer.text


def test_the_route_needs_no_sign_in_in_azure(call, configure, bot: FakeTelegram) -> None:
    configure(WEBSITE_INSTANCE_ID="instance-1")      # App Service: every other route wants a signed-in user
    assert call("GET", "/api/requests").status_code == 401
    assert post(call, help_update()).status_code == 200
    assert len(bot.messages) == 1


def test_a_redelivered_update_is_acted_on_once(call, bot: FakeTelegram) -> None:
    for _ in range(3):
        assert post(call, help_update(7002)).status_code == 200
    assert len(bot.messages) == 1
    assert post(call, help_update(7003)).status_code == 200   # another update is acted on
    assert len(bot.messages) == 2


def test_two_deliveries_at_once_act_once(call, bot: FakeTelegram) -> None:
    arrived, release = bot.hold_next(method="sendMessage")
    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(post(call, help_update(7004)).status_code))
    first.start()
    assert arrived.wait(10)                     # the first delivery is answering right now
    second = post(call, help_update(7004))      # Telegram delivers the same update again meanwhile
    release.set()
    first.join(10)
    assert second.status_code == 200 and results == [200]
    assert len(bot.messages) == 1


def test_a_foreign_chat_gets_no_action_and_nothing_is_written(call, bot: FakeTelegram) -> None:
    assert post(call, help_update(7005, chat_id="-100999")).status_code == 200
    assert bot.messages == [] and bot.calls == []
    assert bot_rows() == []


def test_the_escalation_chat_is_obeyed_too(call, configure, bot: FakeTelegram) -> None:
    configure(OMIS_ESCALATION_CHAT_ID="-100777", OMIS_ESCALATION_MINUTES="120")
    assert post(call, help_update(7006, chat_id="-100777")).status_code == 200
    assert [m.chat_id for m in bot.messages] == ["-100777"]


@pytest.mark.parametrize("raw", [b"not json", b"\xff\xfe", b"[]", b"{}", b'{"update_id": "7"}', b"",
                                 b'{"update_id": -1}', b'{"update_id": true, "message": {}}'])
def test_an_update_that_cannot_be_read_is_answered_200_and_logged(call, bot: FakeTelegram, raw: bytes,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    response = post(call, None, raw=raw)
    assert response.status_code == 200
    assert "Telegram" in caplog.text and ("не JSON" in caplog.text or "не прочитано" in caplog.text)
    assert bot.messages == []


def test_updates_that_are_not_for_omis_are_left_alone(call, bot: FakeTelegram) -> None:
    payloads = [update("message", message_payload("просто текст"), 7010),
                update("edited_message", message_payload("/help"), 7011),
                update("message", message_payload("/start@other_bot"), 7012),
                update("my_chat_member", {"chat": {"id": -1001234567890}}, 7013)]
    for body in payloads:
        assert post(call, body).status_code == 200
    assert bot.messages == []
    assert bot_rows() == []


def test_an_oversized_body_is_refused(call, bot: FakeTelegram) -> None:
    body = help_update(7014)
    body["message"]["text"] = "/help " + "я" * 70_000
    assert post(call, body).status_code == 413
    assert bot.messages == []


def test_an_unfinished_claim_is_taken_over_after_its_lease(bot: FakeTelegram, store) -> None:
    from datetime import datetime, timedelta, timezone

    from functions.storage import get_store
    from functions.storage.bot import BotStore

    t0 = datetime(2026, 11, 26, 7, 0, tzinfo=timezone.utc)
    store = get_store()
    assert BotStore(store.tables.requests).claim_update(7020, t0) == t0      # an instance claimed it, then died
    assert handle_update(help_update(7020), store=store, now=t0 + timedelta(minutes=1)) == "duplicate"
    assert bot.messages == []
    assert handle_update(help_update(7020), store=store, now=t0 + timedelta(minutes=6)) == "done"
    assert handle_update(help_update(7020), store=store, now=t0 + timedelta(minutes=30)) == "duplicate"
    assert len(bot.messages) == 1


def test_old_update_marks_are_pruned_now_and_then(bot: FakeTelegram, store) -> None:
    from datetime import datetime, timedelta, timezone

    from functions.storage import get_store
    from functions.storage.bot import BotStore

    t0 = datetime(2026, 11, 26, 7, 0, tzinfo=timezone.utc)
    store = get_store()
    bots = BotStore(store.tables.requests)
    for update_id in (7101, 7102):
        bots.claim_update(update_id, t0)
        bots.finish_update(update_id)
    handle_update(help_update(7149), store=store, now=t0 + timedelta(days=4))
    assert len(bot_rows()) == 3
    handle_update(help_update(7150), store=store, now=t0 + timedelta(days=4))   # a multiple of 50: prunes
    assert sorted(row["RowKey"] for row in bot_rows()) == ["u_7149", "u_7150"]
