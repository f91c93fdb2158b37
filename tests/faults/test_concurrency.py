"""Passes that overlap: each message applied once, each request reminded once (issue 7, item 4).

The overlap is made certain, not left to chance: the fakes hold the first call until the
second pass has reached the same point (the fake Graph's `meet_next`, the proxy's `meet_at`
in front of Azurite, the fake Bot API's `hold_next`). No code of OMIS is replaced.
"""
from __future__ import annotations

import datetime as dt
import logging

import pytest

from functions.alerts.remind import ReminderReport, notify
from functions.mail import sync
from functions.model import STATUSES
from functions.storage import Store
from tests.fakes.graph_server import FakeGraph
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.telegram_server import FakeTelegram

from .conftest import Runner, current_store

T0 = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.timezone.utc)
STAGES = ("принята в работу", "требует уточнения", "выполнена")


def reminded_numbers(telegram: FakeTelegram, numbers: list[str]) -> dict[str, int]:
    """Count, per request, the accepted Telegram messages that name it."""
    return {n: sum(f"<b>{n}</b>" in m.text for m in telegram.messages) for n in numbers}


def test_two_reminder_passes_at_once_remind_each_request_once(
        proxied_store: Store, storage_proxy: TcpProxy, configure, telegram: FakeTelegram):
    configure(**telegram.settings_env())
    store = current_store()
    numbers = [f"Р-{i}" for i in range(5)]
    for number in numbers:
        store.add_request(number, now=T0)          # accept deadline T0 + 60 min, no news
    storage_proxy.meet_at("$batch")           # both passes read before either writes (the claim)
    now = T0 + dt.timedelta(hours=2)          # the same tick, as a timer run twice would see it
    runner = Runner()

    runner.start("a", lambda: notify(now=now))
    runner.start("b", lambda: notify(now=now))
    runner.join()

    reports: list[ReminderReport] = list(runner.results.values())
    assert reminded_numbers(telegram, numbers) == dict.fromkeys(numbers, 1)
    assert sum(r.reminded for r in reports) == 5 and sum(r.skipped_repeat for r in reports) == 5
    assert [r.breached for r in reports] == [5, 5]   # both really read all five before either noted them
    assert all(r.ok for r in reports)
    assert {store.get_request(n).last_reminded_at for n in numbers} == {now}


def test_two_mail_passes_at_once_apply_each_message_once_in_stage_order(mail_env: FakeGraph):
    store = current_store()
    numbers = [f"М-{i}" for i in range(4)]
    for number in numbers:
        store.add_request(number, now=T0)
    for stage, status in enumerate(STAGES):       # three replies per request: the same rows contended
        for i, number in enumerate(numbers):
            mail_env.add_message("Inbox", f"RE: Заявка №{number}", f"Заявка №{number} {status}.",
                                 T0 + dt.timedelta(hours=1 + stage, minutes=i))
    mail_env.meet_next(2, path_contains="/messages/delta")   # both read the same batch
    now = T0 + dt.timedelta(hours=6)
    runner = Runner()

    runner.start("a", lambda: sync.process_mailbox(now=now, sleep=lambda s: None))
    runner.start("b", lambda: sync.process_mailbox(now=now, sleep=lambda s: None))
    runner.join()

    reports: list[sync.MailReport] = list(runner.results.values())
    assert [r.read for r in reports] == [12, 12]
    assert sum(r.applied for r in reports) == 12 and sum(r.already_applied for r in reports) == 12
    assert sum(r.pairs_applied for r in reports) == 12 and sum(r.pairs_duplicate for r in reports) == 12
    for number in numbers:
        request = store.get_request(number)
        assert sum(h.source == "mail" for h in request.history) == 3
        assert request.status == "выполнена"
        assert request.status_updated_at == T0 + dt.timedelta(hours=3, minutes=numbers.index(number))
    assert store.counts() == {**dict.fromkeys(STATUSES, 0), "выполнена": 4, "archived": 0}


def test_run_command_beside_the_timers_applies_each_message_and_reminds_each_request_once(
        mail_env: FakeGraph, configure, telegram: FakeTelegram, cli_main, caplog: pytest.LogCaptureFixture):
    import function_app
    from functions.devhost import TimerRunner, collect

    configure(**telegram.settings_env())
    store = current_store()
    now = dt.datetime.now(dt.timezone.utc)      # `run` and the timers read the real clock
    answered, quiet = [f"З-{i}" for i in range(3)], [f"Т-{i}" for i in range(2)]
    for number in answered + quiet:
        store.add_request(number, now=now - dt.timedelta(days=1))   # accept deadline passed a day ago
    for i, number in enumerate(answered):       # accepted 3 h ago: the update deadline passed 2 h ago
        mail_env.add_message("Inbox", f"RE: Заявка №{number}", f"Заявка №{number} принята в работу.",
                             now - dt.timedelta(hours=3) + dt.timedelta(minutes=i))
    mail_env.meet_next(2, path_contains="/messages/delta")   # both mail passes read the same batch
    arrived, release = telegram.hold_next()                  # the first reminder waits in Telegram ...
    _, timers = collect(function_app.app)
    timer_host = TimerRunner(timers, clock=lambda: now)
    runner = Runner()

    runner.start("run", lambda: cli_main(["run"]))
    runner.start("timers", lambda: timer_host.run_due(now + dt.timedelta(days=1)))
    try:
        assert arrived.wait(30)
        runner.wait_for_any()                                # ... until the other pass is through
    finally:
        release.set()
    runner.join()

    assert runner.results["run"] == 0
    assert runner.results["timers"] == ["mail_sync", "delay_alerts"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert all(sum(h.source == "mail" for h in store.get_request(n).history) == 1 for n in answered)
    assert store.counts()["принята в работу"] == 3
    assert reminded_numbers(telegram, answered + quiet) == dict.fromkeys(answered + quiet, 1)
