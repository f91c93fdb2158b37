"""The chain as operators and the host run it: the `run` command and the two timers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.fakes.telegram_server import FakeTelegram


def test_app_has_both_timers_on_their_settings(app_routes):
    import function_app
    from functions import devhost

    _, timers = devhost.collect(function_app.app)
    assert {t.name: t.schedule for t in timers} == {"mail_sync": "0 */10 * * * *", "delay_alerts": "0 */10 * * * *"}


def test_timers_run_the_mail_pass_and_the_reminders(store, caplog):
    import function_app
    from functions import devhost
    from functions.mail.samples import SAMPLE_REQUEST_NUMBERS

    for number in (*SAMPLE_REQUEST_NUMBERS, "NO-NEWS"):
        store.add_request(number, now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    _, timers = devhost.collect(function_app.app)
    runner = devhost.TimerRunner(timers, clock=lambda: datetime(2026, 11, 26, 10, 1, tzinfo=timezone.utc))
    with caplog.at_level("INFO"):
        ran = runner.run_due(datetime(2026, 11, 26, 10, 10, tzinfo=timezone.utc))
    assert sorted(ran) == ["delay_alerts", "mail_sync"]
    statuses = {store.get_request(n).status for n in SAMPLE_REQUEST_NUMBERS}
    assert statuses - {"заявка отправлена"}, "the sample mail changed no status"
    assert any("[FAKE TELEGRAM]" in r.getMessage() and "NO-NEWS" in r.getMessage() for r in caplog.records)
    assert not any(r.levelname == "ERROR" for r in caplog.records)


def test_run_does_mail_then_reminders(store, cli_main, capsys):
    store.add_request("R-1", now=datetime.now(timezone.utc) - timedelta(hours=5))
    assert cli_main(["run", "--fake-mail", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.index("Источник почты") < out.index("Напоминания") and "R-1" in out
    assert store.get_request("R-1").last_reminded_at is None  # a dry run records nothing


def test_run_can_skip_both_steps(store, cli_main, capsys):
    assert cli_main(["run", "--skip-mail", "--skip-notifier"]) == 0
    out = capsys.readouterr().out
    assert "--skip-mail" in out and "--skip-notifier" in out


def test_run_exits_1_when_telegram_fails(store, cli_main, capsys, monkeypatch):
    from functions import settings

    store.add_request("R-2", now=datetime.now(timezone.utc) - timedelta(hours=5))
    with FakeTelegram() as telegram:
        for name, value in telegram.settings_env().items():
            monkeypatch.setenv(name, value)
        settings.reset_settings()
        telegram.server_error(500, times=5)
        assert cli_main(["run", "--skip-mail"]) == 1
    assert "напоминания" in capsys.readouterr().err
    assert store.get_request("R-2").last_reminded_at is None


@pytest.mark.parametrize("argv", [["run", "--minutes", "x"], ["notify", "--minutes", "-1"]])
def test_bad_arguments_exit_2(cli_main, argv):
    with pytest.raises(SystemExit) as info:
        cli_main(argv)
    assert info.value.code == 2
