"""Prepared scenarios, played through the command line against real Azurite."""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from functions import settings as settings_module
from functions.alerts import scenarios

SHIPPED = [scenario.name for scenario in scenarios.load_scenarios()]
REMOTE_STORAGE = ("DefaultEndpointsProtocol=https;AccountName=omisprod;"
                  "AccountKey=bm90LWEtcmVhbC1rZXktbm90LWEtcmVhbC1rZXktbm90LWEtcmVhbC1rZXk=;"
                  "EndpointSuffix=core.windows.net")



def test_at_least_the_four_required_scenarios_are_shipped() -> None:
    assert {"answer-in-time", "contractor-silent", "clarification", "duplicate-reply"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_passes(name: str, store, cli_main, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["scenario", "--scenario", name])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Итог: пройден" in out and "✗" not in out


def test_scenario_leaves_the_users_data_and_settings_alone(store, omis_env, cli_main,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    store.add_request("101", position="настоящая заявка пользователя")
    before = settings_module.get_settings()
    assert cli_main(["scenario", "--scenario", "answer-in-time"]) == 0
    mine = store.get_request("101")
    assert mine.status == "заявка отправлена" and mine.position == "настоящая заявка пользователя"
    assert settings_module.get_settings() == before
    names = [t.name for t in TableServiceClient.from_connection_string(omis_env["OMIS_TABLES_CONNECTION_STRING"])
             .list_tables()]
    assert not [name for name in names if name.startswith(omis_env["OMIS_TABLE_PREFIX"] + "scn")]


def test_keep_data_names_the_tables(store, omis_env, cli_main, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["scenario", "--scenario", "contractor-silent", "--keep-data"]) == 0
    out = capsys.readouterr().out
    assert f"OMIS_TABLE_PREFIX={omis_env['OMIS_TABLE_PREFIX']}scn" in out


def test_list_names_every_scenario(cli_main, omis_env, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["scenario", "--list"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert name in out
    assert "Подрядчик молчит" in out


def test_failed_expectation_is_shown_and_exits_1(store, cli_main, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"scenarios": [{"name": "wrong", "steps": [
        {"do": "create", "requests": [{"number": "7"}]},
        {"do": "advance", "minutes": 61},
        {"do": "run_reminders"},
        {"do": "expect_reminded", "numbers": []},
    ]}]}, ensure_ascii=False), encoding="utf-8")
    assert cli_main(["scenario", "--scenario", "wrong", "--file", str(path)]) == 1
    out = capsys.readouterr().out
    assert "✗ 4." in out and "заявки в напоминании" in out and "['7']" in out and "НЕ пройден" in out


@pytest.mark.parametrize("content, message", [
    ("{not json", "неверный JSON"),
    (json.dumps({"scenarios": [{"name": "x", "steps": [{"do": "fly"}]}]}), "шаг 1"),
    (json.dumps({"scenarios": [{"name": "x", "steps": [{"do": "advance", "minutes": 0}]}]}), "advance"),
    (json.dumps({"scenarios": [{"name": "x", "settings": {"OMIS_TELEGRAM_TOKEN": "1"},
                                "steps": [{"do": "advance", "minutes": 1}]}]}), "settings"),
])
def test_broken_file_is_a_usage_error(omis_env, cli_main, tmp_path: Path, content: str, message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content, encoding="utf-8")
    assert cli_main(["scenario", "--list", "--file", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_unknown_scenario_is_a_usage_error(omis_env, cli_main, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["scenario", "--scenario", "no-such"]) == 2
    assert "no-such" in capsys.readouterr().err


@pytest.mark.parametrize("storage", [
    {"OMIS_TABLES_CONNECTION_STRING": REMOTE_STORAGE},
    {"OMIS_TABLES_ENDPOINT": "https://omisprod.table.core.windows.net"},
])
def test_refuses_remote_storage_without_allow_remote(omis_env, cli_main, monkeypatch: pytest.MonkeyPatch,
                                                     storage: dict[str, str],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in storage.items():
        monkeypatch.setenv(name, value)
    settings_module.reset_settings()

    def no_network(*args, **kwargs):
        raise AssertionError("the refusal must not touch the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    started = time.perf_counter()
    assert cli_main(["scenario", "--scenario", "contractor-silent"]) == 2
    assert time.perf_counter() - started < 2
    err = capsys.readouterr().err
    assert "--allow-remote" in err and "не локальное хранилище" in err
