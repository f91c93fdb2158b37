"""Reminder passes against real Azurite and a fake Bot API on loopback, with an injected clock."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from functions.alerts.remind import notify
from functions.model import STATUS_ACCEPTED, STATUS_CLARIFY, STATUS_DONE
from tests.fakes.telegram_server import FakeTelegram
from tests.support import fresh_store

MSK = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 11, 26, 7, 0, tzinfo=timezone.utc)   # Thursday 10:00 in Moscow
WRONG_TOKEN = "987654321:AAH-wrong_secret_token-ZYXWVUTSRQ"


def msk(day: int, hour: int, minute: int = 0) -> datetime:
    """Return a moment of November 2026 given in Moscow time."""
    return datetime(2026, 11, day, hour, minute, tzinfo=MSK)



@pytest.fixture
def sleeps() -> list[float]:
    """Collect the waits the client asks for instead of sleeping."""
    return []


LEVELS = ('{"normal": {"title": "Обычная", "accept": "1h", "update": "1d", "resolve": "5d", "clarify": "1d",'
          ' "clock": "work"}, "crash": {"title": "Авария", "accept": "15m", "update": "1h", "resolve": "8h",'
          ' "clock": "24x7"}}')


def test_breached_request_is_reminded_once_then_again_after_repeat(store, bot: FakeTelegram) -> None:
    store.add_request("ТО-1", position="Котельная №3", now=T0)
    store.add_request("ТО-2", now=T0 + timedelta(minutes=30))     # its deadline has not passed at the first pass

    first = notify(now=T0 + timedelta(minutes=61))
    assert (first.breached, first.reminded, first.skipped_repeat, first.failed, first.sent) == (1, 1, 0, 0, True)
    [message] = bot.messages
    assert "<b>ТО-1</b>" in message.text and "Котельная №3" in message.text and "ТО-2" not in message.text
    assert "Ждём ответа подрядчика" in message.text and "ответ просрочен на 1 мин" in message.text

    again = notify(now=T0 + timedelta(minutes=61 + 50))
    assert (again.breached, again.reminded, again.skipped_repeat) == (2, 1, 1)
    assert again.numbers == ["ТО-2"]

    later = notify(now=T0 + timedelta(minutes=61 + 61))
    assert later.numbers == ["ТО-1"] and later.skipped_repeat == 1
    assert len(bot.messages) == 3
    assert store.get_request("ТО-1").last_reminded_at == T0 + timedelta(minutes=122)


def test_repeat_interval_is_its_own_setting(store, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_DELAY_MINUTES="60", OMIS_ALERT_REPEAT_MINUTES="240"))
    store.add_request("R-1", now=T0)
    assert notify(now=T0 + timedelta(hours=2)).reminded == 1
    assert notify(now=T0 + timedelta(hours=5)).skipped_repeat == 1
    assert notify(now=T0 + timedelta(hours=6, minutes=1)).reminded == 1


def test_news_meets_the_deadline_and_the_next_one_starts(store, bot: FakeTelegram) -> None:
    store.add_request("S-1", now=T0)
    assert notify(now=T0 + timedelta(hours=2)).reminded == 1
    store.update_status("S-1", STATUS_ACCEPTED, now=T0 + timedelta(hours=2, minutes=10))
    assert notify(now=T0 + timedelta(hours=3)).breached == 0
    report = notify(now=T0 + timedelta(hours=3, minutes=11))
    assert report.reminded == 1     # the old reminder does not count against the new deadline
    assert "Подрядчик молчит" in bot.messages[-1].text and STATUS_ACCEPTED in bot.messages[-1].text


def test_a_mail_without_a_status_is_news_too(store, bot: FakeTelegram) -> None:
    from functions.mail.sync import message_key

    store.add_request("N-1", now=T0)
    store.apply_mail(store.requests.resolve("N-1"), message=message_key("<n1@x>", None), status=None,
                     comment="бригада выехала", received=T0 + timedelta(minutes=50), message_id="<n1@x>",
                     subject="RE")
    assert notify(now=T0 + timedelta(minutes=70)).breached == 0    # accept met; update runs from 50 min
    assert notify(now=T0 + timedelta(minutes=111)).numbers == ["N-1"]


def test_final_and_fresh_requests_are_never_read(store, bot: FakeTelegram) -> None:
    store.add_request("F-1", now=T0)
    store.update_status("F-1", STATUS_DONE, now=T0 + timedelta(minutes=5))
    store.add_request("F-2", now=T0 + timedelta(hours=3))
    store.add_request("F-3", now=T0)
    report = notify(now=T0 + timedelta(hours=3, minutes=30))
    assert (report.index_rows, report.breached, report.numbers) == (1, 1, ["F-3"])


def test_digest_groups_requests_by_the_deadline_that_passed(store, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_SLA_LEVELS=LEVELS))
    store = fresh_store()
    store.add_request("A-1", now=T0)                                         # accept: 1 working hour
    store.add_request("U-1", now=T0)
    store.update_status("U-1", STATUS_ACCEPTED, now=T0 + timedelta(minutes=5))   # update: 1 day after
    store.add_request("К-1", now=T0)
    store.update_status("К-1", STATUS_CLARIFY, "Просим уточнить адрес", now=T0 + timedelta(minutes=5))
    store.add_request("C-1", level="crash", now=T0)                           # crash: 15 minutes, 24x7
    report = notify(now=T0 + timedelta(days=1, hours=1))
    text = telegram.messages[0].text
    assert sorted(report.numbers) == ["A-1", "C-1", "U-1", "К-1"]
    order = [text.index(h) for h in ("Ждём ответа подрядчика", "Подрядчик молчит", "Подрядчик ждёт нас")]
    assert order == sorted(order)
    assert text.index("Ждём ответа подрядчика") < text.index("<b>A-1</b>") < text.index("Подрядчик молчит")
    assert text.index("Подрядчик молчит") < text.index("<b>U-1</b>") < text.index("Подрядчик ждёт нас")
    assert text.index("Подрядчик ждёт нас") < text.index("<b>К-1</b>")
    assert "Авария" in text and "Обычная" in text


def test_a_broken_promise_is_reminded_under_its_heading(store, configure, telegram: FakeTelegram) -> None:
    from functions.mail.sync import message_key

    configure(**telegram.settings_env(OMIS_SLA_LEVELS=LEVELS))
    store = fresh_store()
    store.add_request("P-1", now=T0)
    store.apply_mail(store.requests.resolve("P-1"), message=message_key("<p1@x>", None), status=STATUS_ACCEPTED,
                     comment="выполним к 14:00", received=T0 + timedelta(minutes=10), message_id="<p1@x>",
                     subject="RE", promised=T0 + timedelta(hours=4))
    assert notify(now=T0 + timedelta(hours=3)).breached == 0
    notify(now=T0 + timedelta(hours=4, minutes=30))
    text = telegram.messages[0].text
    assert "Подрядчик не сдержал обещание" in text and "<b>P-1</b>" in text


def test_minutes_leave_out_deadlines_passed_more_recently(store, bot: FakeTelegram) -> None:
    store.add_request("M-1", now=T0)
    assert notify(min_overdue=30, now=T0 + timedelta(minutes=70)).breached == 0
    assert notify(min_overdue=5, now=T0 + timedelta(minutes=70)).reminded == 1


def test_a_snoozed_request_waits_for_its_snooze(store, bot: FakeTelegram) -> None:
    from functions.storage.bot import snooze_request

    store.add_request("Z-1", now=T0)
    snooze_request(store.requests, store.requests.resolve("Z-1"), T0 + timedelta(hours=3), author="Анна",
                   note="Отложено", now=T0 + timedelta(minutes=30), extend_only=False)
    report = notify(now=T0 + timedelta(hours=2))
    assert (report.breached, report.reminded, report.skipped_snoozed) == (1, 0, 1)
    assert notify(now=T0 + timedelta(hours=3, minutes=1)).numbers == ["Z-1"]


def test_escalation_goes_to_its_own_chat_with_its_own_repeat(store, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_ESCALATION_MINUTES="120", OMIS_ESCALATION_CHAT_ID="-100777",
                                      OMIS_ESCALATION_THREAD_ID="42"))
    store = fresh_store()
    store.add_request("E-1", now=T0)
    first = notify(now=T0 + timedelta(hours=2))                 # breached 1 h ago: the team only
    assert (first.reminded, first.escalated) == (1, 0)
    second = notify(now=T0 + timedelta(hours=3, minutes=1))     # breached 2 h 1 min ago: both
    assert (second.reminded, second.escalated) == (1, 1)
    escalations = [m for m in telegram.messages if m.chat_id == "-100777"]
    assert len(escalations) == 1 and "Эскалация" in escalations[0].text and "<b>E-1</b>" in escalations[0].text
    assert str(escalations[0].message_thread_id) == "42"
    third = notify(now=T0 + timedelta(hours=3, minutes=30))
    assert (third.reminded, third.escalated) == (0, 0)
    assert len([m for m in telegram.messages if m.chat_id == "-100777"]) == 1


def test_changed_levels_take_effect_for_open_requests_on_the_next_pass(store, configure,
                                                                       telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_SLA_LEVELS=LEVELS))
    store.add_request("L-1", now=T0)
    assert notify(now=T0 + timedelta(minutes=30)).breached == 0
    configure(OMIS_SLA_LEVELS=LEVELS.replace('"accept": "1h"', '"accept": "20m"'))
    from functions.storage import get_store

    report = notify(store=get_store(), now=T0 + timedelta(minutes=30))
    assert report.reindexed == 1 and report.numbers == ["L-1"]


def test_nothing_goes_out_off_hours_and_it_waits_for_the_morning(store, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_WORK_HOURS="Mon-Fri 09:00-18:00"))
    store.add_request("W-1", now=msk(26, 10))
    store.add_request("W-2", now=msk(26, 17, 30))   # 30 working minutes by the evening

    evening = notify(now=msk(26, 20))
    assert (evening.breached, evening.skipped_off_hours, evening.reminded, evening.text) == (1, 1, 0, "")
    assert telegram.messages == [] and store.get_request("W-1").last_reminded_at is None

    morning = notify(now=msk(27, 9, 10))      # W-2: 30 + 10 working minutes, still under 60
    assert morning.numbers == ["W-1"]
    assert "рабочего времени" in telegram.messages[0].text
    assert notify(now=msk(27, 10, 1)).numbers == ["W-2"]


def test_a_24x7_level_is_reminded_at_night(store, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_WORK_HOURS="Mon-Fri 09:00-18:00", OMIS_SLA_LEVELS=LEVELS))
    store = fresh_store()
    store.add_request("N-1", level="crash", now=msk(26, 22))
    store.add_request("N-2", now=msk(26, 16))
    night = notify(now=msk(26, 23))
    assert night.numbers == ["N-1"] and night.skipped_off_hours == 1


def test_holidays_are_off_hours(store, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_WORK_HOURS="Mon-Fri 09:00-18:00", OMIS_HOLIDAYS="2026-11-27"))
    store.add_request("H-1", now=msk(26, 10))
    assert notify(now=msk(27, 12)).skipped_off_hours == 1     # Friday, a holiday
    assert notify(now=msk(28, 12)).skipped_off_hours == 1     # Saturday
    assert notify(now=msk(30, 9, 30)).reminded == 1           # Monday
    assert len(telegram.messages) == 1


def test_holidays_alone_stop_reminders_on_those_days(store, configure, telegram: FakeTelegram) -> None:
    configure(**telegram.settings_env(OMIS_HOLIDAYS="2026-11-27"))
    store.add_request("H-2", now=msk(26, 10))
    assert notify(now=msk(27, 12)).skipped_off_hours == 1
    assert notify(now=msk(28, 3)).reminded == 1


def test_dry_run_changes_nothing(store, bot: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    store.add_request("D-1", now=T0)
    before = store.get_request("D-1")
    report = notify(send=False, now=T0 + timedelta(hours=2))
    assert report.dry_run and report.numbers == ["D-1"] and report.reminded == 0 and not report.sent
    assert "<b>D-1</b>" in report.text and "<b>D-1</b>" in caplog.text
    assert bot.calls == []
    assert store.get_request("D-1") == before
    assert notify(now=T0 + timedelta(hours=2)).reminded == 1


def test_429_is_waited_out_and_the_reminder_recorded(store, bot: FakeTelegram, sleeps: list[float]) -> None:
    store.add_request("Q-1", now=T0)
    bot.too_many_requests(retry_after=3)
    report = notify(now=T0 + timedelta(hours=2), sleep=sleeps.append)
    assert sleeps == [3.0]
    assert report.sent and report.reminded == 1 and report.failed == 0
    assert notify(now=T0 + timedelta(hours=2, minutes=10)).skipped_repeat == 1


def test_failed_send_records_nothing_so_the_next_pass_reminds_again(store, bot: FakeTelegram) -> None:
    store.add_request("E-1", now=T0)
    bot.server_error()
    failed = notify(now=T0 + timedelta(hours=2))
    assert (failed.sent, failed.reminded, failed.failed, failed.ok) == (False, 0, 1, False)
    assert store.get_request("E-1").last_reminded_at is None
    retry = notify(now=T0 + timedelta(hours=2, minutes=10))
    assert (retry.sent, retry.reminded) == (True, 1)
    assert [m.text.count("E-1") for m in bot.messages] == [1]


def test_split_digest_records_only_the_parts_telegram_accepted(store, bot: FakeTelegram) -> None:
    for i in range(40):
        store.add_request(f"P-{i:02d}", position="п" * 190, now=T0 + timedelta(seconds=i))
    bot.respond_next(200, None)       # the first part goes through ...
    bot.server_error()                # ... the second is refused
    first = notify(now=T0 + timedelta(hours=2))
    assert not first.sent and 0 < first.reminded < 40 and first.reminded + first.failed == 40
    delivered = {n for n in first.numbers if f"<b>{n}</b>" in bot.messages[0].text}
    assert len(delivered) == first.reminded

    second = notify(now=T0 + timedelta(hours=2, minutes=10))
    assert second.sent and set(second.numbers) == set(first.numbers) - delivered
    assert second.skipped_repeat == first.reminded


def test_without_telegram_the_digest_is_logged_and_recorded(store, caplog: pytest.LogCaptureFixture) -> None:
    store.add_request("L-1", now=T0)
    report = notify(now=T0 + timedelta(hours=2))
    assert report.log_only and report.reminded == 1 and not report.sent and report.ok
    assert "[FAKE TELEGRAM]" in caplog.text and "L-1" in caplog.text
    caplog.clear()
    assert notify(now=T0 + timedelta(hours=2, minutes=10)).skipped_repeat == 1
    assert "[FAKE TELEGRAM]" not in caplog.text


def test_notify_command_reports_and_exits(store, bot: FakeTelegram, cli_main,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    store.add_request("C-1", now=datetime.now(timezone.utc) - timedelta(hours=3))
    assert cli_main(["notify", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "пробный запуск" in out and "C-1" in out and bot.messages == []
    bot.server_error()
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


def test_telegram_chats_lists_id_type_and_title(bot: FakeTelegram, cli_main,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bot.add_update("message", {"message_id": 1, "chat": {"id": -1001234567890, "type": "supergroup",
                                                                   "title": "Диспетчерская <ОМИС>"}})
    bot.add_update("my_chat_member", {"chat": {"id": 555, "type": "private", "first_name": "Анна"}})
    assert cli_main(["telegram-chats"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any("-1001234567890" in line and "supergroup" in line and "Диспетчерская <ОМИС>" in line
               and "← OMIS_TELEGRAM_CHAT_ID" in line for line in lines)
    assert any("555" in line and "private" in line and "Анна" in line for line in lines)
    assert bot.token not in out


def test_telegram_chats_explains_an_empty_list(bot: FakeTelegram, cli_main,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["telegram-chats"]) == 0
    assert "Бот пока не видел ни одного чата" in capsys.readouterr().out


def test_telegram_chats_without_token_is_a_usage_error(omis_env, cli_main,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["telegram-chats"]) == 2
    assert "OMIS_TELEGRAM_TOKEN" in capsys.readouterr().err


def test_test_message_reaches_the_chat_and_touches_no_request(bot: FakeTelegram, cli_main,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["notify", "--test-message"]) == 0
    [message] = bot.messages
    assert "проверочное сообщение" in message.text and message.chat_id == bot.chat_id
    assert "Проверочное сообщение отправлено" in capsys.readouterr().out


def test_test_message_needs_the_chat_settings(omis_env, cli_main, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["notify", "--test-message"]) == 2
    err = capsys.readouterr().err
    assert "OMIS_TELEGRAM_TOKEN" in err and "OMIS_TELEGRAM_CHAT_ID" in err


def test_test_message_failure_exits_1(bot: FakeTelegram, cli_main) -> None:
    bot.chat_not_found()
    assert cli_main(["notify", "--test-message"]) == 1
