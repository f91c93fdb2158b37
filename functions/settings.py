"""OMIS settings (SPEC §7), read once from the environment into a frozen object."""
from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from .deadlines import ServiceLevel, parse_levels, resolve_level
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
    "OMIS_SLA_LEVELS",
    "OMIS_SLA_DEFAULT",
    "OMIS_ALERT_REPEAT_MINUTES",
    "OMIS_ESCALATION_MINUTES",
    "OMIS_ESCALATION_CHAT_ID",
    "OMIS_ESCALATION_THREAD_ID",
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
    "OMIS_TELEGRAM_WEBHOOK_SECRET",
    "OMIS_MAIL_SEND",
    "OMIS_CONTRACTOR_EMAIL",
    "OMIS_AUTO_NUDGE",
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
    telegram_webhook_secret: str | None = field(default=None, repr=False)
    # Service levels in OMIS_SLA_LEVELS order; left out of the hash (a dict is not hashable).
    sla_levels: Mapping[str, ServiceLevel] = field(default_factory=dict, hash=False)
    sla_default: str = "normal"
    escalation_minutes: int | None = None
    escalation_chat_id: str | None = None
    escalation_thread_id: int | None = None
    mail_send: bool = False
    contractor_emails: tuple[str, ...] = ()
    auto_nudge: bool = False
    in_azure: bool = False
    auth_issuer: str | None = None
    auth_client_id: str | None = None
    auth_token_store: bool = False

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_name)

    @cached_property
    def calendar(self) -> WorkingCalendar:
        # One object per Settings: it caches the working windows of the days it has seen.
        return WorkingCalendar(self.timezone, self.work_hours, self.holidays)

    def level(self, level_id: str | None) -> ServiceLevel:
        """Return a request's service level; an id no longer configured gives the default level."""
        return resolve_level(self.sla_levels, level_id, self.sla_default)

    @property
    def escalation_configured(self) -> bool:
        return self.escalation_minutes is not None and self.escalation_chat_id is not None

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

    def missing_send_settings(self, *, addresses_given: bool = False) -> list[str]:
        """Name what sending mail to the contractor still needs (SPEC §8); empty when it can send.

        addresses_given: the caller has its own recipients, so OMIS_CONTRACTOR_EMAIL is not needed.
        """
        missing = [] if self.mail_send else ["OMIS_MAIL_SEND=on"]
        missing += self.missing_outlook_settings()
        if not addresses_given and not self.contractor_emails:
            missing.append("OMIS_CONTRACTOR_EMAIL")
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


def _optional_int(env: Mapping[str, str], name: str, minimum: int, maximum: int) -> int | None:
    if _text(env, name) is None:
        return None
    return _int(env, name, minimum, minimum, maximum)


def _levels(env: Mapping[str, str], delay: int) -> tuple[dict[str, ServiceLevel], str]:
    try:
        levels = parse_levels(env.get("OMIS_SLA_LEVELS"), delay)
    except ValueError as exc:
        raise SettingsError(f"OMIS_SLA_LEVELS: {exc}") from None
    default = _text(env, "OMIS_SLA_DEFAULT") or next(iter(levels))
    if default not in levels:
        raise SettingsError(f"OMIS_SLA_DEFAULT: уровень «{default}» не задан в OMIS_SLA_LEVELS "
                            f"(есть: {', '.join(levels)})")
    return levels, default


def _escalation(env: Mapping[str, str]) -> tuple[int | None, str | None, int | None]:
    minutes = _optional_int(env, "OMIS_ESCALATION_MINUTES", 0, 525_600)
    chat_id = _text(env, "OMIS_ESCALATION_CHAT_ID")
    thread_id = _optional_int(env, "OMIS_ESCALATION_THREAD_ID", 1, 2**31 - 1)
    if minutes is not None and chat_id is None:
        raise SettingsError("OMIS_ESCALATION_CHAT_ID: нужен вместе с OMIS_ESCALATION_MINUTES "
                            "(куда отправлять эскалацию)")
    if chat_id is not None and minutes is None:
        raise SettingsError("OMIS_ESCALATION_MINUTES: нужен вместе с OMIS_ESCALATION_CHAT_ID "
                            "(через сколько минут просрочки эскалировать)")
    if thread_id is not None and chat_id is None:
        raise SettingsError("OMIS_ESCALATION_THREAD_ID: тема задана без OMIS_ESCALATION_CHAT_ID")
    return minutes, chat_id, thread_id


def _optional_url(env: Mapping[str, str], name: str) -> str | None:
    raw = _text(env, name)
    if raw is None:
        return None
    if not raw.lower().startswith(("https://", "http://")):
        raise SettingsError(f"{name}: ожидается адрес вида https://…, получено «{raw}»")
    return raw.rstrip("/")


def parse_addresses(raw: str, name: str) -> tuple[str, ...]:
    """Read comma-separated e-mail addresses; a bad one raises SettingsError naming it and the setting."""
    addresses: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            # No SMTPUTF8: Cyrillic domains are fine (IDNA), a Cyrillic local part is not (see mail/compose.py).
            address = validate_email(part, check_deliverability=False, allow_smtputf8=False).normalized
        except EmailNotValidError as exc:
            raise SettingsError(f"{name}: «{part}» — не адрес электронной почты ({exc})") from None
        if address.casefold() not in (a.casefold() for a in addresses):
            addresses.append(address)
    return tuple(addresses)


def _contractor_emails(env: Mapping[str, str], mailbox: str | None) -> tuple[str, ...]:
    addresses = parse_addresses(_text(env, "OMIS_CONTRACTOR_EMAIL") or "", "OMIS_CONTRACTOR_EMAIL")
    for address in addresses:
        if mailbox and address.casefold() == mailbox.casefold():
            raise SettingsError(f"OMIS_CONTRACTOR_EMAIL: «{address}» — это сам общий ящик OMIS_OUTLOOK_EMAIL; "
                                "OMIS не пишет сам себе")
    return addresses
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


def _webhook_secret(env: Mapping[str, str]) -> str | None:
    raw = _text(env, "OMIS_TELEGRAM_WEBHOOK_SECRET")
    # What Telegram accepts as setWebhook's secret_token (it sends it back in a header).
    if raw is not None and not (len(raw) <= 256 and raw.isascii() and all(c.isalnum() or c in "_-" for c in raw)):
        raise SettingsError("OMIS_TELEGRAM_WEBHOOK_SECRET: от 1 до 256 символов, только латинские буквы, цифры, "
                            "«_» и «-» (так требует Telegram); например, вывод python -c "
                            "\"import secrets; print(secrets.token_urlsafe(32))\"")
    return raw


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
    levels, default_level = _levels(env, delay)
    escalation_minutes, escalation_chat_id, escalation_thread_id = _escalation(env)
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
        alert_repeat_minutes=_int(env, "OMIS_ALERT_REPEAT_MINUTES", 60, 1, 525_600),
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
        telegram_webhook_secret=_webhook_secret(env),
        sla_levels=levels,
        sla_default=default_level,
        escalation_minutes=escalation_minutes,
        escalation_chat_id=escalation_chat_id,
        escalation_thread_id=escalation_thread_id,
        mail_send=_switch(env, "OMIS_MAIL_SEND"),
        contractor_emails=_contractor_emails(env, _text(env, "OMIS_OUTLOOK_EMAIL")),
        auto_nudge=_switch(env, "OMIS_AUTO_NUDGE"),
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
