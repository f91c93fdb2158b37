"""Telegram refuses, stalls or is misconfigured: no reminder counts as sent unless it was (issue 7, item 3).

Real reminder passes against Azurite and the fake Bot API on loopback, with an injected clock
and sleep, and logs captured at DEBUG (urllib3 prints every request path, which holds the token).
A request created at T0 without news has passed its accept deadline (the default level's
accept = OMIS_DELAY_MINUTES = 60 minutes) at T0 + 1 h, and stays breached: it is due for a
reminder every OMIS_ALERT_REPEAT_MINUTES.
"""
from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from functions.alerts.remind import ReminderReport, notify
from tests.fakes.telegram_server import FakeTelegram

from .conftest import ShortTimeouts, current_store

T0 = datetime(2026, 11, 26, 7, 0, tzinfo=timezone.utc)
WRONG_TOKEN = "987654321:AAH-wrong_secret_token-ZYXWVUTSRQ"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def no_fault(fake: FakeTelegram) -> dict[str, str]:
    return {}


# Each fault: script the fake and/or return settings that break the pass; the pass after it runs normally.
FAULTS: dict[str, Callable[[FakeTelegram], dict[str, str]]] = {
    "429-retry_after-beyond-the-budget": lambda fake: fake.too_many_requests(retry_after=5, times=4) or {},
    "500": lambda fake: fake.server_error() or {},
    "401-wrong-token": lambda fake: {"OMIS_TELEGRAM_TOKEN": WRONG_TOKEN},
    "400-chat-not-found": lambda fake: {"OMIS_TELEGRAM_CHAT_ID": "-1009999999999"},
    "403-bot-kicked": lambda fake: fake.bot_kicked() or {},
    "timeout": lambda fake: fake.respond_next(504, {"ok": False, "error_code": 504, "description": "Gateway Timeout"},
                                              delay=1.0) or {},
    "unreachable": lambda fake: {"OMIS_TELEGRAM_API_URL": closed_port_url()},
}


def remind(at: datetime, sleeps: list[float]) -> ReminderReport:
    with ShortTimeouts(read=0.3) as session:
        return notify(now=at, session=session, sleep=sleeps.append)


@pytest.mark.parametrize("fault", FAULTS)
def test_failed_send_records_nothing_never_shows_the_token_and_the_next_pass_reminds_once(
        proxied_store, configure, fault: str, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    with FakeTelegram(accept_chats={"-1001234567890"}) as telegram:
        configure(**telegram.settings_env(), OMIS_ALERT_REPEAT_MINUTES="60")
        current_store().add_request("Т-1", now=T0)
        sleeps: list[float] = []
        first = remind(T0 + timedelta(hours=2), sleeps)           # reminded and recorded
        broken = FAULTS[fault](telegram)
        configure(**broken)

        failed = remind(T0 + timedelta(hours=3), sleeps)          # due again, but the send fails

        assert (failed.sent, failed.reminded, failed.failed, failed.ok) == (False, 0, 1, False)
        assert current_store().get_request("Т-1").last_reminded_at == T0 + timedelta(hours=2)   # the earlier one stays
        assert sum(sleeps) <= 3 * 60                                                # bounded waiting
        configure(**telegram.settings_env())
        retry = remind(T0 + timedelta(hours=3, minutes=10), sleeps)
        later = remind(T0 + timedelta(hours=3, minutes=20), sleeps)

        assert first.sent and retry.sent and (retry.reminded, later.skipped_repeat) == (1, 1)
        assert current_store().get_request("Т-1").last_reminded_at == T0 + timedelta(hours=3, minutes=10)
        assert [m.text.count("<b>Т-1</b>") for m in telegram.messages] == [1, 1]   # one per interval
        secret = (broken.get("OMIS_TELEGRAM_TOKEN") or telegram.token).split(":", 1)[1]
        assert "sendMessage" in caplog.text or fault == "unreachable"     # the DEBUG lines were there
        for text in (caplog.text, failed.summary(), failed.text):
            assert secret not in text and telegram.token.split(":", 1)[1] not in text


def test_first_ever_reminder_that_fails_leaves_the_request_unreminded(proxied_store, configure, telegram):
    configure(**telegram.settings_env())
    current_store().add_request("Т-2", now=T0)
    telegram.server_error()

    failed = remind(T0 + timedelta(hours=2), [])

    assert failed.failed == 1 and current_store().get_request("Т-2").last_reminded_at is None
    assert [r.last_reminded_at for r in current_store().requests.breached(T0 + timedelta(hours=2))] == [None]


def test_notify_command_with_a_wrong_token_exits_1_and_prints_no_token(
        proxied_store, configure, telegram, cli_main, capsys, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    configure(**telegram.settings_env(OMIS_TELEGRAM_TOKEN=WRONG_TOKEN))
    current_store().add_request("Т-3", now=datetime.now(timezone.utc) - timedelta(hours=3))

    assert cli_main(["--log-level", "DEBUG", "notify"]) == 1

    out, err = capsys.readouterr()
    assert "не отправлено 1" in out and "OMIS_TELEGRAM_TOKEN" in caplog.text
    for text in (out, err, caplog.text):
        assert WRONG_TOKEN.split(":", 1)[1] not in text
    assert current_store().get_request("Т-3").last_reminded_at is None


def test_answer_lost_after_telegram_accepted_repeats_the_reminder_once_rather_than_lose_it(
        proxied_store, configure, telegram):
    configure(**telegram.settings_env())
    current_store().add_request("Т-4", now=T0)
    telegram.delay_next(1.0)            # Telegram takes the message, but answers after our timeout

    unsure = remind(T0 + timedelta(hours=2), [])
    retry = remind(T0 + timedelta(hours=2, minutes=10), [])
    later = remind(T0 + timedelta(hours=2, minutes=20), [])

    for _ in range(100):                # bounded: until the fake has answered the stalled call too
        if len(telegram.messages) == 2:
            break
        threading.Event().wait(0.05)
    assert (unsure.failed, retry.reminded, later.skipped_repeat) == (1, 1, 1)
    assert len(telegram.messages) == 2  # the one known limit: a lost answer means one repeat, never a loss
