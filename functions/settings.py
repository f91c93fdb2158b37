"""OMIS settings (SPEC §7), read once from the environment into a frozen object."""
from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .workhours import WorkHours, WorkingCalendar, parse_holidays, parse_work_hours

logger = logging.getLogger(__name__)

DEV_STORAGE = "UseDevelopmentStorage=true"
DEFAULT_SCHEDULE = "0 */10 * * * *"

# Every setting OMIS reads. Bicep and local.settings.example.json must name the same set.
SETTING_NAMES: tuple[str, ...] = (
    "OMIS_TABLES_CONNECTION_STRING",
    "OMIS_TABLES_ENDPOINT",
    "OMIS_TABLE_PREFIX",
    "OMIS_SECRET_KEY",
    "OMIS_TIMEZONE",
    "OMIS_PUBLIC_URL",
    "OMIS_DEV_USER",
    "OMIS_DELAY_MINUTES",
    "OMIS_ALERT_REPEAT_MINUTES",
    "OMIS_WORK_HOURS",
    "OMIS_HOLIDAYS",
    "OMIS_MAIL_SCHEDULE",
    "OMIS_ALERT_SCHEDULE",
    "OMIS_OUTLOOK_EMAIL",
    "OMIS_OUTLOOK_TENANT_ID",
    "OMIS_OUTLOOK_CLIENT_ID",
    "OMIS_OUTLOOK_CLIENT_SECRET",
    "OMIS_OUTLOOK_CERTIFICATE_PATH",
    "OMIS_OUTLOOK_FOLDER",
    "OMIS_OUTLOOK_LOOKBACK_MINUTES",
    "OMIS_OUTLOOK_MAX_MESSAGES",
    "OMIS_GRAPH_URL",
    "OMIS_AUTHORITY_HOST",
    "OMIS_TELEGRAM_TOKEN",
    "OMIS_TELEGRAM_CHAT_ID",
    "OMIS_TELEGRAM_THREAD_ID",
    "OMIS_TELEGRAM_API_URL",
    "OMIS_AUTH_ISSUER",
    "OMIS_AUTH_CLIENT_ID",
    "OMIS_AUTH_TOKEN_STORE",
)
# Set by App Service on every plan (Flex Consumption included) and by neither Functions Core
# Tools nor `python -m functions serve`; see functions/auth.py for why these and not others.
AZURE_MARKERS: tuple[str, ...] = ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "LEGION_SERVICE_HOST")


class SettingsError(ValueError):
    """A setting is missing or has a value OMIS cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything OMIS reads from its environment."""

    tables_connection_string: str
    tables_endpoint: str | None
    table_prefix: str
    secret_key: str
    secret_key_is_random: bool
    timezone_name: str
    public_url: str | None
    dev_user: str
    delay_minutes: int
    alert_repeat_minutes: int
    work_hours: WorkHours | None
    holidays: frozenset[date] = field(default_factory=frozenset)
    mail_schedule: str = DEFAULT_SCHEDULE
    alert_schedule: str = DEFAULT_SCHEDULE
    outlook_email: str | None = None
    outlook_tenant_id: str | None = None
    outlook_client_id: str | None = None
    outlook_client_secret: str | None = None
    outlook_certificate_path: str | None = None
    outlook_folder: str = "Inbox"
    outlook_lookback_minutes: int = 1440
    outlook_max_messages: int = 50
    graph_url: str = "https://graph.microsoft.com"
    authority_host: str = "https://login.microsoftonline.com"
    telegram_token: str | None = None
    telegram_chat_id: str | None = None
    telegram_thread_id: int | None = None
    telegram_api_url: str = "https://api.telegram.org"
    in_azure: bool = False
    auth_issuer: str | None = None
    auth_client_id: str | None = None
    auth_token_store: bool = False

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_name)

    @property
    def calendar(self) -> WorkingCalendar:
        return WorkingCalendar(self.timezone, self.work_hours, self.holidays)

    @property
    def storage_is_emulator(self) -> bool:
        """Say whether storage is the local emulator (Azurite), where sample data may be written."""
        if self.tables_endpoint:
            return _is_loopback_url(self.tables_endpoint)
        text = self.tables_connection_string.replace(" ", "").lower()
        if "usedevelopmentstorage=true" in text or "accountname=devstoreaccount1" in text:
            return True
        for part in text.split(";"):
            if part.startswith("tableendpoint="):
                return _is_loopback_url(part.split("=", 1)[1])
        return False

    def missing_outlook_settings(self) -> list[str]:
        """Name the Outlook settings still needed before real mail can be read."""
        missing = [name for name, value in (
            ("OMIS_OUTLOOK_EMAIL", self.outlook_email),
            ("OMIS_OUTLOOK_TENANT_ID", self.outlook_tenant_id),
            ("OMIS_OUTLOOK_CLIENT_ID", self.outlook_client_id),
        ) if not value]
        if not (self.outlook_client_secret or self.outlook_certificate_path):
            missing.append("OMIS_OUTLOOK_CLIENT_SECRET (или OMIS_OUTLOOK_CERTIFICATE_PATH)")
        return missing

    @property
    def telegram_configured(self) -> bool:
        return bool(self.telegram_token and self.telegram_chat_id)


def _is_loopback_url(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]").lower()
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: ожидается целое число, получено «{raw}»") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name}: допустимо от {minimum} до {maximum}, получено {value}")
    return value


def _optional_url(env: Mapping[str, str], name: str) -> str | None:
    raw = _text(env, name)
    if raw is None:
        return None
    if not raw.lower().startswith(("https://", "http://")):
        raise SettingsError(f"{name}: ожидается адрес вида https://…, получено «{raw}»")
    return raw.rstrip("/")


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    return _optional_url(env, name) or default


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    raw = _text(env, name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or int(raw) == 0:
        raise SettingsError(f"{name}: ожидается целое положительное число, получено «{raw}»")
    return int(raw)


def _switch(env: Mapping[str, str], name: str) -> bool:
    raw = (_text(env, name) or "off").lower()
    if raw not in ("on", "off"):
        raise SettingsError(f"{name}: ожидается on или off, получено «{raw}»")
    return raw == "on"


def running_in_azure(env: Mapping[str, str]) -> bool:
    """Say whether this process runs in Azure App Service / Functions (not Core Tools, not `serve`)."""
    return any((env.get(name) or "").strip() for name in AZURE_MARKERS)


def _auth_settings(env: Mapping[str, str]) -> dict[str, Any]:
    in_azure = running_in_azure(env)
    issuer = _optional_url(env, "OMIS_AUTH_ISSUER")
    client_id = _text(env, "OMIS_AUTH_CLIENT_ID")
    token_store = _switch(env, "OMIS_AUTH_TOKEN_STORE")
    if in_azure and token_store:
        missing = [name for name, value in (("OMIS_AUTH_ISSUER", issuer), ("OMIS_AUTH_CLIENT_ID", client_id))
                   if not value]
        if missing:
            raise SettingsError(f"{', '.join(missing)}: нужны для проверки входа при OMIS_AUTH_TOKEN_STORE=on")
    return {"in_azure": in_azure, "auth_issuer": issuer, "auth_client_id": client_id,
            "auth_token_store": token_store}


def _schedule(env: Mapping[str, str], name: str) -> str:
    raw = _text(env, name) or DEFAULT_SCHEDULE
    if len(raw.split()) != 6:
        raise SettingsError(f"{name}: ожидается расписание NCRONTAB из шести полей (секунды первыми), получено «{raw}»")
    return raw


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from an environment mapping; raise SettingsError naming a bad setting."""
    env = os.environ if env is None else env
    tz_name = _text(env, "OMIS_TIMEZONE") or "Europe/Moscow"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"OMIS_TIMEZONE: неизвестный часовой пояс «{tz_name}» (пример: Europe/Moscow)") from None
    try:
        work_hours = parse_work_hours(env.get("OMIS_WORK_HOURS", ""))
    except ValueError as exc:
        raise SettingsError(f"OMIS_WORK_HOURS: {exc}") from None
    try:
        holidays = parse_holidays(env.get("OMIS_HOLIDAYS", ""))
    except ValueError as exc:
        raise SettingsError(f"OMIS_HOLIDAYS: {exc}") from None
    prefix = _text(env, "OMIS_TABLE_PREFIX") or "omis"
    if not (prefix.isascii() and prefix.isalnum() and prefix[0].isalpha() and len(prefix) <= 40):
        raise SettingsError("OMIS_TABLE_PREFIX: только латинские буквы и цифры, с буквы, до 40 символов; "
                            f"получено «{prefix}»")
    secret = _text(env, "OMIS_SECRET_KEY")
    delay = _int(env, "OMIS_DELAY_MINUTES", 60, 1, 525_600)
    return Settings(
        tables_connection_string=(_text(env, "OMIS_TABLES_CONNECTION_STRING")
                                  or _text(env, "AzureWebJobsStorage") or DEV_STORAGE),
        tables_endpoint=_optional_url(env, "OMIS_TABLES_ENDPOINT"),
        table_prefix=prefix,
        secret_key=secret or secrets.token_urlsafe(32),
        secret_key_is_random=secret is None,
        timezone_name=tz_name,
        public_url=_optional_url(env, "OMIS_PUBLIC_URL"),
        dev_user=_text(env, "OMIS_DEV_USER") or "Инженер",
        delay_minutes=delay,
        alert_repeat_minutes=_int(env, "OMIS_ALERT_REPEAT_MINUTES", delay, 1, 525_600),
        work_hours=work_hours,
        holidays=holidays,
        mail_schedule=_schedule(env, "OMIS_MAIL_SCHEDULE"),
        alert_schedule=_schedule(env, "OMIS_ALERT_SCHEDULE"),
        outlook_email=_text(env, "OMIS_OUTLOOK_EMAIL"),
        outlook_tenant_id=_text(env, "OMIS_OUTLOOK_TENANT_ID"),
        outlook_client_id=_text(env, "OMIS_OUTLOOK_CLIENT_ID"),
        outlook_client_secret=_text(env, "OMIS_OUTLOOK_CLIENT_SECRET"),
        outlook_certificate_path=_text(env, "OMIS_OUTLOOK_CERTIFICATE_PATH"),
        outlook_folder=(_text(env, "OMIS_OUTLOOK_FOLDER") or "Inbox").strip("/"),
        outlook_lookback_minutes=_int(env, "OMIS_OUTLOOK_LOOKBACK_MINUTES", 1440, 1, 525_600),
        outlook_max_messages=_int(env, "OMIS_OUTLOOK_MAX_MESSAGES", 50, 1, 1000),
        graph_url=_url(env, "OMIS_GRAPH_URL", "https://graph.microsoft.com"),
        authority_host=_url(env, "OMIS_AUTHORITY_HOST", "https://login.microsoftonline.com"),
        telegram_token=_text(env, "OMIS_TELEGRAM_TOKEN"),
        telegram_chat_id=_text(env, "OMIS_TELEGRAM_CHAT_ID"),
        telegram_thread_id=_positive_int(env, "OMIS_TELEGRAM_THREAD_ID"),
        telegram_api_url=_url(env, "OMIS_TELEGRAM_API_URL", "https://api.telegram.org"),
        **_auth_settings(env),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process's settings, read on first use."""
    settings = load_settings()
    if settings.secret_key_is_random:
        logger.warning("OMIS_SECRET_KEY is not set: using a random key for this process "
                       "(forms and flash messages stop working after a restart)")
    return settings


def reset_settings() -> None:
    """Forget the cached settings (tests and the local host change the environment)."""
    get_settings.cache_clear()
