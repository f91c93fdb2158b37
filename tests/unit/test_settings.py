"""Settings are read once, with defaults from SPEC §7 and errors that name the setting."""
from __future__ import annotations

import pytest

from functions.settings import DEV_STORAGE, SettingsError, load_settings


def test_defaults_follow_the_spec():
    s = load_settings({})
    assert s.tables_connection_string == DEV_STORAGE and s.tables_endpoint is None
    assert (s.table_prefix, s.timezone_name, s.dev_user) == ("omis", "Europe/Moscow", "Инженер")
    assert (s.delay_minutes, s.alert_repeat_minutes) == (60, 60)
    assert s.mail_schedule == s.alert_schedule == "0 */10 * * * *"
    assert (s.outlook_folder, s.outlook_lookback_minutes, s.outlook_max_messages) == ("Inbox", 1440, 50)
    assert s.graph_url == "https://graph.microsoft.com"
    assert s.authority_host == "https://login.microsoftonline.com"
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.secret_key_is_random and len(s.secret_key) > 20
    assert s.storage_is_emulator


def test_repeat_interval_defaults_to_the_threshold():
    assert load_settings({"OMIS_DELAY_MINUTES": "90"}).alert_repeat_minutes == 90


def test_connection_string_falls_back_to_azure_web_jobs_storage():
    s = load_settings({"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=a2V5"})
    assert s.tables_connection_string.startswith("DefaultEndpointsProtocol=https")
    assert not s.storage_is_emulator


def test_endpoint_is_not_the_emulator():
    assert not load_settings({"OMIS_TABLES_ENDPOINT": "https://acc.table.core.windows.net"}).storage_is_emulator


@pytest.mark.parametrize("env, name", [
    ({"OMIS_DELAY_MINUTES": "abc"}, "OMIS_DELAY_MINUTES"),
    ({"OMIS_DELAY_MINUTES": "0"}, "OMIS_DELAY_MINUTES"),
    ({"OMIS_ALERT_REPEAT_MINUTES": "-5"}, "OMIS_ALERT_REPEAT_MINUTES"),
    ({"OMIS_TIMEZONE": "Mars/Olympus"}, "OMIS_TIMEZONE"),
    ({"OMIS_WORK_HOURS": "weekdays 9-18"}, "OMIS_WORK_HOURS"),
    ({"OMIS_WORK_HOURS": "Mon-Fri 18:00-09:00"}, "OMIS_WORK_HOURS"),
    ({"OMIS_HOLIDAYS": "31.12.2026"}, "OMIS_HOLIDAYS"),
    ({"OMIS_MAIL_SCHEDULE": "*/10 * * * *"}, "OMIS_MAIL_SCHEDULE"),
    ({"OMIS_GRAPH_URL": "graph.local"}, "OMIS_GRAPH_URL"),
    ({"OMIS_TABLE_PREFIX": "om-is"}, "OMIS_TABLE_PREFIX"),
    ({"OMIS_OUTLOOK_MAX_MESSAGES": "100000"}, "OMIS_OUTLOOK_MAX_MESSAGES"),
    ({"OMIS_TELEGRAM_THREAD_ID": "abc"}, "OMIS_TELEGRAM_THREAD_ID"),
    ({"OMIS_TELEGRAM_THREAD_ID": "0"}, "OMIS_TELEGRAM_THREAD_ID"),
    ({"OMIS_TELEGRAM_THREAD_ID": "-42"}, "OMIS_TELEGRAM_THREAD_ID"),
    ({"OMIS_TELEGRAM_THREAD_ID": "4.2"}, "OMIS_TELEGRAM_THREAD_ID"),
    ({"OMIS_AUTH_TOKEN_STORE": "yes"}, "OMIS_AUTH_TOKEN_STORE"),
    ({"OMIS_AUTH_ISSUER": "login.microsoftonline.com/t/v2.0"}, "OMIS_AUTH_ISSUER"),
    ({"WEBSITE_SITE_NAME": "omis", "OMIS_AUTH_TOKEN_STORE": "on"}, "OMIS_AUTH_ISSUER"),
    ({"WEBSITE_SITE_NAME": "omis", "OMIS_AUTH_TOKEN_STORE": "on", "OMIS_AUTH_ISSUER": "https://login.example/t/v2.0"},
     "OMIS_AUTH_CLIENT_ID"),
])
def test_bad_value_names_the_setting(env, name):
    with pytest.raises(SettingsError, match=name):
        load_settings(env)


def test_thread_id_is_an_integer():
    assert load_settings({"OMIS_TELEGRAM_THREAD_ID": " 42 "}).telegram_thread_id == 42
    assert load_settings({}).telegram_thread_id is None


@pytest.mark.parametrize("marker", ["WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "LEGION_SERVICE_HOST"])
def test_app_service_variables_say_the_app_runs_in_azure(marker):
    assert load_settings({marker: "x"}).in_azure


@pytest.mark.parametrize("env", [{}, {"CONTAINER_NAME": "a-dev-container"}, {"FUNCTIONS_CORETOOLS_ENVIRONMENT": "true"},
                                 {"AZURE_FUNCTIONS_ENVIRONMENT": "Development"}, {"WEBSITE_SITE_NAME": " "}])
def test_core_tools_docker_and_the_local_host_are_not_azure(env):
    assert not load_settings(env).in_azure


def test_missing_outlook_settings_are_named():
    s = load_settings({"OMIS_OUTLOOK_EMAIL": "box@example.org"})
    missing = s.missing_outlook_settings()
    assert "OMIS_OUTLOOK_TENANT_ID" in missing and "OMIS_OUTLOOK_CLIENT_ID" in missing
    assert any("OMIS_OUTLOOK_CLIENT_SECRET" in m for m in missing)


def test_settings_are_frozen():
    s = load_settings({})
    with pytest.raises(AttributeError):
        s.delay_minutes = 5  # type: ignore[misc]
