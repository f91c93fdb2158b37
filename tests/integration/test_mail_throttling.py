"""Mail passes against a throttling Graph and a look-back window past Graph's 5,000 cap (Azurite + fake Graph).

A Retry-After longer than a pass affords ends the pass with MailThrottled, the instant is
saved in the mail table, and passes before it make no Graph call at all; the `mail` command
says so and exits 1; the timer logs a warning, not a stack trace.
"""
from __future__ import annotations

import datetime as dt
import logging

import pytest

from functions.mail import graph, sync
from functions.storage import get_store
from tests.fakes.fixtures import fake_graph  # noqa: F401
from tests.fakes.graph_server import FakeGraph
from tests.support import set_env

NOW = dt.datetime(2026, 11, 20, 13, 0, tzinfo=dt.timezone.utc)
CREATED = NOW - dt.timedelta(days=1)


@pytest.fixture
def mail_env(fake_graph: FakeGraph, omis_env, monkeypatch):  # noqa: F811
    """OMIS on fresh Azurite tables, reading the fake Graph mailbox."""
    set_env(monkeypatch, **fake_graph.env())
    get_store().init()
    return fake_graph


def deliver(fake: FakeGraph, numbers: list[str], newest: dt.datetime = NOW - dt.timedelta(minutes=5)) -> None:
    for i, number in enumerate(numbers):
        get_store().add_request(number, now=CREATED)
        fake.add_message("Inbox", f"RE: Заявка №{number}", f"Заявка №{number} принята в работу.",
                         newest - dt.timedelta(minutes=i))


def run_pass(now: dt.datetime = NOW, sleeps: list[float] | None = None) -> sync.MailReport:
    return sync.process_mailbox(now=now, sleep=(sleeps if sleeps is not None else []).append)


def mail_entries(number: str) -> int:
    return sum(h.source == "mail" for h in get_store().get_request(number).history)


def test_long_retry_after_ends_the_pass_and_later_passes_call_nothing_before_then(mail_env: FakeGraph):
    deliver(mail_env, ["Т-1", "Т-2"])
    mail_env.fail_next(1, 429, retry_after=3600, path_contains="/messages/delta")
    sleeps: list[float] = []

    with pytest.raises(sync.MailThrottled, match="Graph просит подождать 3600 с") as first:
        run_pass(sleeps=sleeps)

    assert sleeps == [] and mail_entries("Т-1") == 0
    assert abs(first.value.retry_at - (NOW + dt.timedelta(hours=1))) < dt.timedelta(seconds=5)
    assert graph.parse_not_before(get_store().mail.get_state(sync.NOT_BEFORE_STATE)) == first.value.retry_at
    calls_before = len(mail_env.calls)

    with pytest.raises(sync.MailThrottled, match=r"Graph просит подождать 3\d{3} с"):
        run_pass(now=NOW + dt.timedelta(minutes=10))

    assert len(mail_env.calls) == calls_before  # neither Graph nor the sign-in was asked
    report = run_pass(now=NOW + dt.timedelta(minutes=61))
    assert report.applied == 2 and mail_entries("Т-1") == mail_entries("Т-2") == 1


def test_short_retry_after_is_waited_within_the_pass(mail_env: FakeGraph):
    deliver(mail_env, ["К-1"])
    mail_env.fail_next(1, 429, retry_after=20, path_contains="/messages/delta")
    sleeps: list[float] = []

    report = run_pass(sleeps=sleeps)

    assert sleeps == [20.0] and report.applied == 1
    assert get_store().mail.get_state(sync.NOT_BEFORE_STATE) is None


def test_mail_command_exits_1_saying_how_long_graph_asks_to_wait(mail_env: FakeGraph, cli_main, capsys):
    mail_env.fail_next(1, 429, retry_after=7200, path_contains="/messages/delta")

    assert cli_main(["mail"]) == 1
    err = capsys.readouterr().err
    assert "Graph просит подождать 7200 с" in err and "Traceback" not in err
    calls_before = len(mail_env.calls)

    assert cli_main(["mail"]) == 1
    assert "Graph просит подождать" in capsys.readouterr().err
    assert len(mail_env.calls) == calls_before


def test_timer_logs_throttling_as_a_warning_not_a_stack_trace(mail_env: FakeGraph, caplog):
    mail_env.fail_next(1, 429, retry_after=3600, path_contains="/messages/delta")
    caplog.set_level(logging.INFO)

    assert sync.scheduled_mail_pass(now=NOW) is None

    records = [r for r in caplog.records if "Graph просит подождать" in r.getMessage()]
    assert records and all(r.levelno == logging.WARNING and r.exc_info is None for r in records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_window_past_the_delta_cap_applies_every_message_once(mail_env: FakeGraph, monkeypatch):
    monkeypatch.setattr(graph, "DELTA_FILTER_CAP", 5)
    mail_env.filter_cap = 5
    numbers = [f"О-{i}" for i in range(12)]
    deliver(mail_env, numbers)

    reports = [run_pass()]
    reports.append(run_pass(now=NOW + dt.timedelta(minutes=10)))

    assert reports[0].read == 12 and reports[1].read == 0
    assert sum(r.applied for r in reports) == 12 and sum(r.already_applied for r in reports) == 0
    assert [mail_entries(n) for n in numbers] == [1] * 12
