"""`python -m functions mail`: exit status, report and readable errors (functions/cli/main.py)."""
from __future__ import annotations

import datetime as dt

import pytest

from functions.cli import main as dispatcher
from functions.mail import commands
from functions.mail.samples import SAMPLE_REQUEST_NUMBERS
from functions.settings import reset_settings
from functions.storage import get_store, tables
from tests.fakes.fixtures import fake_graph  # noqa: F401
from tests.fakes.graph_server import FakeGraph
from tests.support import set_env


def run_cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    """Run the dispatcher (conftest keeps local.settings.json out of the tests)."""
    reset_settings()
    return dispatcher.main(list(argv))


@pytest.fixture
def graph_env(fake_graph: FakeGraph, omis_env, monkeypatch):  # noqa: F811
    set_env(monkeypatch, **fake_graph.env())
    return fake_graph


def test_mail_reads_outlook_and_prints_the_report(graph_env, monkeypatch, capsys):
    get_store().init()
    get_store().add_request("2001", now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2))
    graph_env.add_message("Inbox", "RE: Заявка 2001", "Заявка 2001 выполнена.",
                          dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))

    code = run_cli(monkeypatch, "mail", "--log-level", "WARNING")

    out = capsys.readouterr().out
    assert code == 0
    assert "Outlook (Microsoft Graph)" in out and "Писем прочитано: 1" in out
    assert "статус изменён: 1" in out
    assert get_store().get_request("2001").status == "выполнена"


def test_wrong_secret_is_a_clear_error_not_a_stack_trace(graph_env, monkeypatch, capsys):
    set_env(monkeypatch, OMIS_OUTLOOK_CLIENT_SECRET="Wrong~Secret-123456")

    code = run_cli(monkeypatch, "mail")

    err = capsys.readouterr().err
    assert code == 1
    assert "AADSTS7000215" in err and "OMIS_OUTLOOK_CLIENT_SECRET" in err
    assert "Wrong~Secret-123456" not in err and "Traceback" not in err


def test_missing_folder_is_a_clear_error(graph_env, monkeypatch, capsys):
    set_env(monkeypatch, OMIS_OUTLOOK_FOLDER="Inbox/Нет такой")

    code = run_cli(monkeypatch, "mail")

    err = capsys.readouterr().err
    assert code == 1 and "Inbox/Нет такой" in err and "OMIS_OUTLOOK_FOLDER" in err and "Traceback" not in err


def test_without_outlook_settings_the_emulator_gets_the_sample_mailbox(omis_env, monkeypatch, capsys):
    get_store().init()
    for number in SAMPLE_REQUEST_NUMBERS:
        get_store().add_request(number, now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))

    code = run_cli(monkeypatch, "mail")
    again = run_cli(monkeypatch, "mail", "--fake")

    out = capsys.readouterr().out
    assert (code, again) == (0, 0)
    assert "встроенные примеры писем" in out and "Настройки Outlook не заданы" in out
    assert get_store().get_request("ТО-2026/77").status == "отклонена"
    first, second = out.split("Источник почты:")[1:]
    assert "Неразобранных писем: новых 2" in first and "Неразобранных писем: новых 0" in second
    assert "Писем применено к заявкам: 0" in second


def test_without_outlook_settings_real_storage_exits_2_naming_them(omis_env, monkeypatch, capsys):
    set_env(monkeypatch, OMIS_TABLES_ENDPOINT="https://x.table.core.windows.net")

    def no_storage(*args, **kwargs):
        raise AssertionError("storage must not be touched before the source is decided")

    monkeypatch.setattr(tables.Tables, "__init__", no_storage)

    code = run_cli(monkeypatch, "mail")
    fake = run_cli(monkeypatch, "mail", "--fake")

    err = capsys.readouterr().err
    assert (code, fake) == (2, 2)
    for name in ("OMIS_OUTLOOK_EMAIL", "OMIS_OUTLOOK_TENANT_ID", "OMIS_OUTLOOK_CLIENT_ID",
                 "OMIS_OUTLOOK_CLIENT_SECRET"):
        assert name in err
    assert "--fake" in err and "Traceback" not in err


def test_run_mail_pass_returns_the_report_for_other_commands(omis_env, capsys):
    get_store().init()

    code, report = commands.run_mail_pass(fake=True)

    assert code == 0 and report.source == "samples" and report.read == 9
    assert "Писем прочитано: 9" in capsys.readouterr().out
