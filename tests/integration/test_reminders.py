"""Reminder passes against real Azurite and a fake Bot API on loopback, with an injected clock."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from functions.alerts.remind import notify_delays
from functions.model import STATUS_ACCEPTED, STATUS_CLARIFY, STATUS_DONE
from tests.fakes.telegram_server import FakeTelegram

MSK = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 11, 26, 7, 0, tzinfo=timezone.utc)   # Thursday 10:00 in Moscow
WRONG_TOKEN = "987654321:AAH-wrong_secret_token-ZYXWVUTSRQ"


def msk(day: int, hour: int, minute: int = 0) -> datetime:
    """Return a moment of November 2026 given in Moscow time."""
    return datetime(2026, 11, day, hour, minute, tzinfo=MSK)


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    """Run a fake Bot API for one test."""
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def with_telegram(configure, telegram: FakeTelegram) -> FakeTelegram:
    """Point OMIS at the fake Bot API."""
    configure(**telegram.settings_env())
    return telegram


@pytest.fixture
def sleeps() -> list[float]:
    """Collect the waits the client asks for instead of sleeping."""
    return []



def test_delayed_request_is_reminded_once_then_again_after_repeat(store, with_telegram: FakeTelegram) -> None:
    store.add_request("ТО-1", position="Котельная №3", now=T0)
    store.add_request("ТО-2", now=T0 + timedelta(minutes=30))     # not yet delayed at the first pass

    first = notify_delays(now=T0 + timedelta(minutes=61))
    assert (first.delayed, first.reminded, first.skipped_repeat, first.failed, first.sent) == (1, 1, 0, 0, True)
    [message] = with_telegram.messages
    assert "<b>ТО-1</b>" in message.text and "Котельная №3" in message.text and "ТО-2" not in message.text

    again = notify_delays(now=T0 + timedelta(minutes=61 + 50))
    assert (again.delayed, again.reminded, again.skipped_repeat) == (2, 1, 1)
    assert again.numbers == ["ТО-2"]

    later = notify_delays(now=T0 + timedelta(minutes=61 + 61))
    assert later.numbers == ["ТО-1"] and later.skipped_repeat == 1
    assert len(with_telegram.messages) == 3
    assert store.get_request("ТО-1").last_reminded_at == T0 + timedelta(minutes=122)


def test_repeat_interval_is_its_own_setting(store, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_DELAY_MINUTES="60", OMIS_ALERT_REPEAT_MINUTES="240"))
    store.add_request("R-1", now=T0)
    assert notify_delays(now=T0 + timedelta(hours=2)).reminded == 1
    assert notify_delays(now=T0 + timedelta(hours=5)).skipped_repeat == 1
    assert notify_delays(now=T0 + timedelta(hours=6, minutes=1)).reminded == 1


def test_status_change_starts_the_count_again(store, with_telegram: FakeTelegram) -> None:
    store.add_request("S-1", now=T0)
    assert notify_delays(now=T0 + timedelta(hours=2)).reminded == 1
    store.update_status("S-1", STATUS_ACCEPTED, now=T0 + timedelta(hours=2, minutes=10))
    assert notify_delays(now=T0 + timedelta(hours=3)).delayed == 0
    report = notify_delays(now=T0 + timedelta(hours=3, minutes=11))
    assert report.reminded == 1     # the old reminder does not count against the new status
    assert STATUS_ACCEPTED in with_telegram.messages[-1].text


def test_final_and_fresh_requests_are_never_read(store, with_telegram: FakeTelegram) -> None:
    store.add_request("F-1", now=T0)
    store.update_status("F-1", STATUS_DONE, now=T0 + timedelta(minutes=5))
    store.add_request("F-2", now=T0 + timedelta(hours=3))
    store.add_request("F-3", now=T0)
    report = notify_delays(now=T0 + timedelta(hours=3, minutes=30))
    assert (report.entities_read, report.delayed, report.numbers) == (1, 1, ["F-3"])


def test_clarification_goes_under_its_own_heading(store, with_telegram: FakeTelegram) -> None:
    store.add_request("У-1", now=T0)
    store.update_status("У-1", STATUS_CLARIFY, comment="Просим уточнить адрес", now=T0)
    store.add_request("У-2", now=T0)
    notify_delays(now=T0 + timedelta(hours=2))
    text = with_telegram.messages[0].text
    assert text.index("<b>У-2</b>") < text.index("Ждут нашего уточнения: 1") < text.index("<b>У-1</b>")


def test_minutes_override_the_threshold(store, with_telegram: FakeTelegram) -> None:
    store.add_request("M-1", now=T0)
    assert notify_delays(now=T0 + timedelta(minutes=10)).delayed == 0
    assert notify_delays(minutes=5, now=T0 + timedelta(minutes=10)).reminded == 1


def test_nothing_goes_out_off_hours_and_it_waits_for_the_morning(store, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_WORK_HOURS="Mon-Fri 09:00-18:00"))
    store.add_request("W-1", now=msk(26, 10))
    store.add_request("W-2", now=msk(26, 17, 30))   # 30 working minutes by the evening

    evening = notify_delays(now=msk(26, 20))
    assert (evening.delayed, evening.skipped_off_hours, evening.reminded, evening.text) == (1, 1, 0, "")
    assert telegram.messages == [] and store.get_request("W-1").last_reminded_at is None

    morning = notify_delays(now=msk(27, 9, 10))      # W-2: 30 + 10 working minutes, still under 60
    assert morning.numbers == ["W-1"]
    assert "рабочего времени" in telegram.messages[0].text
    assert notify_delays(now=msk(27, 10, 1)).numbers == ["W-2"]


def test_holidays_are_off_hours(store, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_WORK_HOURS="Mon-Fri 09:00-18:00", OMIS_HOLIDAYS="2026-11-27"))
    store.add_request("H-1", now=msk(26, 10))
    assert notify_delays(now=msk(27, 12)).skipped_off_hours == 1     # Friday, a holiday
    assert notify_delays(now=msk(28, 12)).skipped_off_hours == 1     # Saturday
    assert notify_delays(now=msk(30, 9, 30)).reminded == 1           # Monday
    assert len(telegram.messages) == 1


def test_holidays_alone_stop_reminders_on_those_days(store, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_HOLIDAYS="2026-11-27"))
    store.add_request("H-2", now=msk(26, 10))
    assert notify_delays(now=msk(27, 12)).skipped_off_hours == 1
    assert notify_delays(now=msk(28, 3)).reminded == 1


def test_dry_run_changes_nothing(store, with_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    store.add_request("D-1", now=T0)
    before = store.get_request("D-1")
    report = notify_delays(send=False, now=T0 + timedelta(hours=2))
    assert report.dry_run and report.numbers == ["D-1"] and report.reminded == 0 and not report.sent
    assert "<b>D-1</b>" in report.text and "<b>D-1</b>" in caplog.text
    assert with_telegram.calls == []
    assert store.get_request("D-1") == before
    assert notify_delays(now=T0 + timedelta(hours=2)).reminded == 1


def test_429_is_waited_out_and_the_reminder_recorded(store, with_telegram: FakeTelegram, sleeps: list[float]) -> None:
    store.add_request("Q-1", now=T0)
    with_telegram.too_many_requests(retry_after=3)
    report = notify_delays(now=T0 + timedelta(hours=2), sleep=sleeps.append)
    assert sleeps == [3.0]
    assert report.sent and report.reminded == 1 and report.failed == 0
    assert notify_delays(now=T0 + timedelta(hours=2, minutes=10)).skipped_repeat == 1


def test_failed_send_records_nothing_so_the_next_pass_reminds_again(store, with_telegram: FakeTelegram) -> None:
    store.add_request("E-1", now=T0)
    with_telegram.server_error()
    failed = notify_delays(now=T0 + timedelta(hours=2))
    assert (failed.sent, failed.reminded, failed.failed, failed.ok) == (False, 0, 1, False)
    assert store.get_request("E-1").last_reminded_at is None
    retry = notify_delays(now=T0 + timedelta(hours=2, minutes=10))
    assert (retry.sent, retry.reminded) == (True, 1)
    assert [m.text.count("E-1") for m in with_telegram.messages] == [1]


def test_split_digest_records_only_the_parts_telegram_accepted(store, with_telegram: FakeTelegram) -> None:
    for i in range(40):
        store.add_request(f"P-{i:02d}", position="п" * 190, now=T0 + timedelta(seconds=i))
    with_telegram.respond_next(200, None)       # the first part goes through ...
    with_telegram.server_error()                # ... the second is refused
    first = notify_delays(now=T0 + timedelta(hours=2))
    assert not first.sent and 0 < first.reminded < 40 and first.reminded + first.failed == 40
    delivered = {n for n in first.numbers if f"<b>{n}</b>" in with_telegram.messages[0].text}
    assert len(delivered) == first.reminded

    second = notify_delays(now=T0 + timedelta(hours=2, minutes=10))
    assert second.sent and set(second.numbers) == set(first.numbers) - delivered
    assert second.skipped_repeat == first.reminded


def test_without_telegram_the_digest_is_logged_and_recorded(store, caplog: pytest.LogCaptureFixture) -> None:
    store.add_request("L-1", now=T0)
    report = notify_delays(now=T0 + timedelta(hours=2))
    assert report.log_only and report.reminded == 1 and not report.sent and report.ok
    assert "[FAKE TELEGRAM]" in caplog.text and "L-1" in caplog.text
    caplog.clear()
    assert notify_delays(now=T0 + timedelta(hours=2, minutes=10)).skipped_repeat == 1
    assert "[FAKE TELEGRAM]" not in caplog.text


def test_notify_command_reports_and_exits(store, with_telegram: FakeTelegram, cli_main,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    store.add_request("C-1", now=datetime.now(timezone.utc) - timedelta(hours=3))
    assert cli_main(["notify", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "пробный запуск" in out and "C-1" in out and with_telegram.messages == []
    with_telegram.server_error()
    assert cli_main(["notify"]) == 1
    assert "не отправлено 1" in capsys.readouterr().out
    assert cli_main(["notify", "--minutes", "0"]) == 0
    assert "напомнено 1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli_main(["notify", "--minutes", "-5"])
    assert exc.value.code == 2


def test_token_is_never_printed(store, configure, telegram: FakeTelegram, cli_main,
                                capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    configure(**telegram.settings_env(OMIS_TELEGRAM_TOKEN=WRONG_TOKEN))
    caplog.set_level(logging.DEBUG)
    store.add_request("T-1", now=datetime.now(timezone.utc) - timedelta(hours=3))
    assert cli_main(["notify"]) == 1
    assert cli_main(["telegram-chats"]) == 1
    captured = capsys.readouterr()
    assert "OMIS_TELEGRAM_TOKEN" in captured.out + caplog.text
    for text in (captured.out, captured.err, caplog.text):
        assert WRONG_TOKEN not in text
        assert WRONG_TOKEN.split(":", 1)[1] not in text


def test_telegram_chats_lists_id_type_and_title(with_telegram: FakeTelegram, cli_main,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with_telegram.add_update("message", {"message_id": 1, "chat": {"id": -1001234567890, "type": "supergroup",
                                                                   "title": "Диспетчерская <ОМИС>"}})
    with_telegram.add_update("my_chat_member", {"chat": {"id": 555, "type": "private", "first_name": "Анна"}})
    assert cli_main(["telegram-chats"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any("-1001234567890" in line and "supergroup" in line and "Диспетчерская <ОМИС>" in line
               and "← OMIS_TELEGRAM_CHAT_ID" in line for line in lines)
    assert any("555" in line and "private" in line and "Анна" in line for line in lines)
    assert with_telegram.token not in out


def test_telegram_chats_explains_an_empty_list(with_telegram: FakeTelegram, cli_main,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["telegram-chats"]) == 0
    assert "Бот пока не видел ни одного чата" in capsys.readouterr().out


def test_telegram_chats_without_token_is_a_usage_error(omis_env, cli_main,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["telegram-chats"]) == 2
    assert "OMIS_TELEGRAM_TOKEN" in capsys.readouterr().err


def test_test_message_reaches_the_chat_and_touches_no_request(with_telegram: FakeTelegram, cli_main,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["notify", "--test-message"]) == 0
    [message] = with_telegram.messages
    assert "проверочное сообщение" in message.text and message.chat_id == with_telegram.chat_id
    assert "Проверочное сообщение отправлено" in capsys.readouterr().out


def test_test_message_needs_the_chat_settings(omis_env, cli_main, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["notify", "--test-message"]) == 2
    err = capsys.readouterr().err
    assert "OMIS_TELEGRAM_TOKEN" in err and "OMIS_TELEGRAM_CHAT_ID" in err


def test_test_message_failure_exits_1(with_telegram: FakeTelegram, cli_main) -> None:
    with_telegram.chat_not_found()
    assert cli_main(["notify", "--test-message"]) == 1
