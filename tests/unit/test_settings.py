"""Settings are read once, with defaults from SPEC §7 and errors that name the setting."""
from __future__ import annotations

import json

import pytest

from functions.deadlines import Duration, ServiceLevel
from functions.settings import DEV_STORAGE, SETTING_NAMES, SettingsError, load_settings

SPEC_LEVELS = json.dumps({
    "normal": {"title": "Обычная", "accept": "4h", "update": "1d", "resolve": "5d", "clarify": "1d", "clock": "work"},
    "urgent": {"title": "Срочная", "accept": "1h", "update": "4h", "resolve": "1d", "clock": "work"},
    "crash": {"title": "Авария", "accept": "15m", "update": "1h", "resolve": "8h", "clock": "24x7"},
}, ensure_ascii=False)


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


def test_repeat_interval_defaults_to_sixty_minutes_whatever_the_threshold():
    assert load_settings({"OMIS_DELAY_MINUTES": "90"}).alert_repeat_minutes == 60
    assert load_settings({"OMIS_ALERT_REPEAT_MINUTES": "15"}).alert_repeat_minutes == 15


def test_without_levels_one_normal_level_keeps_the_delay_threshold():
    s = load_settings({"OMIS_DELAY_MINUTES": "90"})
    assert list(s.sla_levels) == ["normal"] and s.sla_default == "normal"
    assert s.sla_levels["normal"] == ServiceLevel("normal", "Обычная", "work",
                                                  accept=Duration(90, "m"), update=Duration(90, "m"))


def test_levels_are_read_in_order_and_the_first_is_the_default():
    s = load_settings({"OMIS_SLA_LEVELS": SPEC_LEVELS})
    assert list(s.sla_levels) == ["normal", "urgent", "crash"]
    assert s.sla_default == "normal"
    assert s.sla_levels["crash"].clock == "24x7" and s.sla_levels["crash"].accept == Duration(15, "m")


def test_default_level_can_be_chosen():
    s = load_settings({"OMIS_SLA_LEVELS": SPEC_LEVELS, "OMIS_SLA_DEFAULT": "urgent"})
    assert s.sla_default == "urgent"
    assert s.level(None).id == "urgent"
    assert s.level("crash").id == "crash"
    assert s.level("retired-level").id == "urgent"


def test_unknown_default_level_names_the_setting_and_the_levels():
    with pytest.raises(SettingsError, match=r"OMIS_SLA_DEFAULT: уровень «vip» не задан.*normal, urgent, crash"):
        load_settings({"OMIS_SLA_LEVELS": SPEC_LEVELS, "OMIS_SLA_DEFAULT": "vip"})
    with pytest.raises(SettingsError, match="OMIS_SLA_DEFAULT"):
        load_settings({"OMIS_SLA_DEFAULT": "urgent"})      # only "normal" exists without OMIS_SLA_LEVELS


def test_bad_level_names_the_setting_the_level_and_the_key():
    levels = json.dumps({"urgent": {"title": "Срочная", "accept": "4 hours"}})
    with pytest.raises(SettingsError) as caught:
        load_settings({"OMIS_SLA_LEVELS": levels})
    assert str(caught.value) == ("OMIS_SLA_LEVELS: уровень «urgent», ключ «accept»: ожидается длительность "
                                 "вида 15m, 4h или 5d, получено «4 hours»")


def test_escalation_is_off_by_default_and_read_when_set():
    s = load_settings({})
    assert (s.escalation_minutes, s.escalation_chat_id, s.escalation_thread_id) == (None, None, None)
    assert not s.escalation_configured
    s = load_settings({"OMIS_ESCALATION_MINUTES": "240", "OMIS_ESCALATION_CHAT_ID": "-100123",
                       "OMIS_ESCALATION_THREAD_ID": "7"})
    assert (s.escalation_minutes, s.escalation_chat_id, s.escalation_thread_id) == (240, "-100123", 7)
    assert s.escalation_configured
    assert load_settings({"OMIS_ESCALATION_MINUTES": "0", "OMIS_ESCALATION_CHAT_ID": "5"}).escalation_minutes == 0


@pytest.mark.parametrize("env, message", [
    ({"OMIS_ESCALATION_MINUTES": "60"}, "OMIS_ESCALATION_CHAT_ID: нужен вместе с OMIS_ESCALATION_MINUTES"),
    ({"OMIS_ESCALATION_CHAT_ID": "-100123"}, "OMIS_ESCALATION_MINUTES: нужен вместе с OMIS_ESCALATION_CHAT_ID"),
    ({"OMIS_ESCALATION_MINUTES": "60", "OMIS_ESCALATION_CHAT_ID": "1", "OMIS_ESCALATION_THREAD_ID": "тема"},
     "OMIS_ESCALATION_THREAD_ID: ожидается целое число"),
    ({"OMIS_ESCALATION_MINUTES": "60", "OMIS_ESCALATION_CHAT_ID": "1", "OMIS_ESCALATION_THREAD_ID": "0"},
     "OMIS_ESCALATION_THREAD_ID: допустимо от 1"),
    ({"OMIS_ESCALATION_THREAD_ID": "5"}, "OMIS_ESCALATION_THREAD_ID: тема задана без OMIS_ESCALATION_CHAT_ID"),
    ({"OMIS_ESCALATION_MINUTES": "-1", "OMIS_ESCALATION_CHAT_ID": "1"}, "OMIS_ESCALATION_MINUTES: допустимо от 0"),
])
def test_incomplete_or_bad_escalation_names_the_setting(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_new_settings_are_listed():
    for name in ("OMIS_SLA_LEVELS", "OMIS_SLA_DEFAULT", "OMIS_ESCALATION_MINUTES", "OMIS_ESCALATION_CHAT_ID",
                 "OMIS_ESCALATION_THREAD_ID"):
        assert name in SETTING_NAMES


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
    ({"OMIS_SLA_LEVELS": "{not json"}, "OMIS_SLA_LEVELS"),
    ({"OMIS_SLA_LEVELS": "{}"}, "OMIS_SLA_LEVELS"),
    ({"OMIS_ESCALATION_MINUTES": "soon", "OMIS_ESCALATION_CHAT_ID": "1"}, "OMIS_ESCALATION_MINUTES"),
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


# -- mail to the contractor (SPEC §8) -------------------------------------------------------

OUTLOOK = {"OMIS_OUTLOOK_EMAIL": "omis@contoso.example", "OMIS_OUTLOOK_TENANT_ID": "t",
           "OMIS_OUTLOOK_CLIENT_ID": "c", "OMIS_OUTLOOK_CLIENT_SECRET": "s"}


def test_sending_is_off_by_default():
    s = load_settings({})
    assert (s.mail_send, s.contractor_emails, s.auto_nudge) == (False, (), False)


@pytest.mark.parametrize("raw, expected", [("on", True), ("ON", True), (" off ", False), ("", False)])
def test_on_off_settings_read_on_and_off(raw, expected):
    s = load_settings({"OMIS_MAIL_SEND": raw, "OMIS_AUTO_NUDGE": raw})
    assert s.mail_send is expected and s.auto_nudge is expected


@pytest.mark.parametrize("name", ["OMIS_MAIL_SEND", "OMIS_AUTO_NUDGE"])
@pytest.mark.parametrize("raw", ["yes", "1", "true", "вкл"])
def test_anything_but_on_or_off_names_the_setting(name, raw):
    with pytest.raises(SettingsError, match=f"{name}.*{raw}"):
        load_settings({name: raw})


def test_contractor_addresses_are_split_validated_and_deduplicated():
    s = load_settings({"OMIS_CONTRACTOR_EMAIL": " ivan@contractor.example, Petr@Contractor.Example ,,"
                                                " ivan@CONTRACTOR.example, zayavki@почта.рф"})
    assert s.contractor_emails == ("ivan@contractor.example", "Petr@contractor.example", "zayavki@почта.рф")


@pytest.mark.parametrize("bad", ["bad@@contractor.example", "ivan", "ivan@localhost", "пётр@почта.рф"])
def test_a_bad_contractor_address_is_named(bad):
    with pytest.raises(SettingsError, match=f"OMIS_CONTRACTOR_EMAIL: «{bad}»"):
        load_settings({"OMIS_CONTRACTOR_EMAIL": f"ivan@contractor.example, {bad}"})


def test_the_shared_mailbox_is_no_contractor():
    with pytest.raises(SettingsError, match="сам общий ящик"):
        load_settings({**OUTLOOK, "OMIS_CONTRACTOR_EMAIL": "ivan@contractor.example, OMIS@contoso.example"})


def test_missing_send_settings_name_what_sending_needs():
    assert load_settings({}).missing_send_settings()[0] == "OMIS_MAIL_SEND=on"
    missing = load_settings({"OMIS_MAIL_SEND": "on"}).missing_send_settings()
    assert "OMIS_OUTLOOK_EMAIL" in missing and "OMIS_CONTRACTOR_EMAIL" in missing
    ready = load_settings({**OUTLOOK, "OMIS_MAIL_SEND": "on", "OMIS_CONTRACTOR_EMAIL": "ivan@contractor.example"})
    assert ready.missing_send_settings() == []
    no_contractor = load_settings({**OUTLOOK, "OMIS_MAIL_SEND": "on"})
    assert no_contractor.missing_send_settings() == ["OMIS_CONTRACTOR_EMAIL"]
    assert no_contractor.missing_send_settings(addresses_given=True) == []
