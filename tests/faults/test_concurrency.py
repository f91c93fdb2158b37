"""Passes that overlap: each message applied once, each request reminded once (issue 7, item 4).

The overlap is made certain, not left to chance: the fakes hold the first call until the
second pass has reached the same point (the fake Graph's `meet_next`, the proxy's `meet_at`
in front of Azurite, the fake Bot API's `hold_next`). No code of OMIS is replaced.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from functions import store
from functions.alerts.remind import ReminderReport, notify_delays
from functions.mail import sync
from tests.fakes.graph_server import FakeGraph
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.telegram_server import FakeTelegram

T0 = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.timezone.utc)
STAGES = ("принята в работу", "требует уточнения", "выполнена")


class Runner:
    """Run callables in threads; keep their results and failures."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.failures: dict[str, BaseException] = {}
        self.threads: dict[str, threading.Thread] = {}

    def start(self, name: str, work: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                self.results[name] = work()
            except BaseException as exc:  # noqa: BLE001 - asserted by the test
                self.failures[name] = exc
        self.threads[name] = thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()

    def wait_for_any(self, timeout: float = 30) -> None:
        """Wait (bounded) until at least one thread has finished."""
        for _ in range(int(timeout / 0.05)):
            if any(not t.is_alive() for t in self.threads.values()):
                return
            next(iter(self.threads.values())).join(0.05)

    def join(self, timeout: float = 60) -> None:
        for thread in self.threads.values():
            thread.join(timeout)
        assert not any(t.is_alive() for t in self.threads.values()), "a pass did not finish"
        assert not self.failures, self.failures


def reminded_numbers(telegram: FakeTelegram, numbers: list[str]) -> dict[str, int]:
    """Count, per request, the accepted Telegram messages that name it."""
    return {n: sum(f"<b>{n}</b>" in m.text for m in telegram.messages) for n in numbers}


def test_two_reminder_passes_at_once_remind_each_request_once(
        proxied_store, storage_proxy: TcpProxy, configure, telegram: FakeTelegram):
    configure(**telegram.settings_env())
    numbers = [f"Р-{i}" for i in range(5)]
    for number in numbers:
        store.add_request(number, now=T0)
    storage_proxy.meet_at("$batch")           # both passes read before either writes
    now = T0 + dt.timedelta(hours=2)          # the same tick, as a timer run twice would see it
    runner = Runner()

    runner.start("a", lambda: notify_delays(now=now))
    runner.start("b", lambda: notify_delays(now=now))
    runner.join()

    reports: list[ReminderReport] = list(runner.results.values())
    assert reminded_numbers(telegram, numbers) == dict.fromkeys(numbers, 1)
    assert sum(r.reminded for r in reports) == 5 and sum(r.skipped_repeat for r in reports) == 5
    assert all(r.ok for r in reports)
    assert {store.get_request(n).last_reminded_at for n in numbers} == {now}


def test_two_mail_passes_at_once_apply_each_message_once_in_stage_order(mail_env: FakeGraph):
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
    assert sum(r.applied for r in reports) == 12 and sum(r.duplicates for r in reports) == 12
    for number in numbers:
        request = store.get_request(number)
        assert sum(h.source == "mail" for h in request.history) == 3
        assert request.status == "выполнена"
        assert request.status_updated_at == T0 + dt.timedelta(hours=3, minutes=numbers.index(number))
    assert store.status_counts() == {**dict.fromkeys(store.STATUSES, 0), "выполнена": 4}


def test_run_command_beside_the_timers_applies_each_message_and_reminds_each_request_once(
        mail_env: FakeGraph, configure, telegram: FakeTelegram, cli_main, caplog: pytest.LogCaptureFixture):
    import function_app
    from functions.devhost import TimerRunner, collect

    configure(**telegram.settings_env())
    now = dt.datetime.now(dt.timezone.utc)      # `run` and the timers read the real clock
    answered, quiet = [f"З-{i}" for i in range(3)], [f"Т-{i}" for i in range(2)]
    for number in answered + quiet:
        store.add_request(number, now=now - dt.timedelta(days=1))
    for i, number in enumerate(answered):
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
    assert store.status_counts()["принята в работу"] == 3
    assert reminded_numbers(telegram, answered + quiet) == dict.fromkeys(answered + quiet, 1)
