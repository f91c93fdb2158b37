"""Prepared scenarios: step sequences that replay requests, contractor mail and reminders.

A scenario runs on its own clock (no waiting) and in tables of its own: the table prefix is
`<OMIS_TABLE_PREFIX>scn<random>`, the tables are dropped afterwards (unless kept), so a user's
requests are never touched and a run never sees the previous one. Reminders go nowhere: the
digest is captured (as if Telegram accepted it) and checked. The file format is described in
docs/telegram.md («Сценарии»); the shipped scenarios are in scenarios.json next to this file.
"""
from __future__ import annotations

import html
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from ..cli.errors import UsageError
from ..settings import Settings, get_settings, load_settings
from ..storage import StorageUnavailable, Store

logger = logging.getLogger(__name__)

DEFAULT_FILE = Path(__file__).with_name("scenarios.json")
DEFAULT_START = "2026-11-26T10:00:00+03:00"   # a Thursday morning in Moscow
SCENARIO_AUTHOR = "Сценарий"
# Settings a scenario may fix for itself; the rest of the user's settings stay as they are.
SCENARIO_SETTINGS = ("OMIS_DELAY_MINUTES", "OMIS_ALERT_REPEAT_MINUTES", "OMIS_WORK_HOURS", "OMIS_HOLIDAYS",
                     "OMIS_TIMEZONE", "OMIS_SLA_LEVELS", "OMIS_SLA_DEFAULT", "OMIS_ESCALATION_MINUTES")
SCENARIO_DEFAULTS = {"OMIS_DELAY_MINUTES": "60", "OMIS_ALERT_REPEAT_MINUTES": "", "OMIS_WORK_HOURS": "",
                     "OMIS_HOLIDAYS": "", "OMIS_TIMEZONE": "Europe/Moscow", "OMIS_SLA_LEVELS": "",
                     "OMIS_SLA_DEFAULT": "", "OMIS_ESCALATION_MINUTES": "", "OMIS_ESCALATION_CHAT_ID": ""}
# Reminders of a scenario never reach a real chat, whatever the transport.
CLEARED_SETTINGS = ("OMIS_TELEGRAM_TOKEN", "OMIS_TELEGRAM_CHAT_ID", "OMIS_TELEGRAM_THREAD_ID")
STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "create": ("requests",), "set_status": ("number", "status", "comment"),
    "advance": ("minutes", "hours", "days"), "deliver": ("messages",), "run_mail": ("expect",),
    "run_reminders": ("minutes", "expect"), "expect_status": ("requests",),
    "expect_reminded": ("numbers", "contains", "absent", "skipped_repeat", "skipped_off_hours", "escalated",
                        "escalation_contains"),
}
MAIL_COUNTS = {"read": "прочитано", "applied": "применено", "already_applied": "повторов",
               "unmatched": "неразобранных", "errors": "ошибок"}


@dataclass(frozen=True)
class Scenario:
    """One prepared scenario, as read from the file."""

    name: str
    title: str
    description: str
    start: datetime
    settings: dict[str, str]
    steps: tuple[dict[str, Any], ...]


@dataclass
class ScenarioResult:
    """How a scenario went: passed or not, and a line per step."""

    name: str
    passed: bool = True
    lines: list[str] = field(default_factory=list)


class ExpectationFailed(Exception):
    """What a step expected is not what happened."""


def _check_step(where: str, step: object) -> dict[str, Any]:
    if not isinstance(step, dict) or step.get("do") not in STEP_FIELDS:
        raise UsageError(f"{where}: у шага должно быть поле \"do\" — одно из: {', '.join(STEP_FIELDS)}")
    unknown = set(step) - {"do", "note", *STEP_FIELDS[step["do"]]}
    if unknown:
        raise UsageError(f"{where}: неизвестные поля шага «{step['do']}»: {', '.join(sorted(unknown))}")
    kind = step["do"]
    lists = {"create": "requests", "deliver": "messages"}
    if kind in lists and not (isinstance(step.get(lists[kind]), list) and step[lists[kind]]):
        raise UsageError(f"{where}: шагу «{kind}» нужен непустой список \"{lists[kind]}\"")
    if kind == "expect_reminded" and not isinstance(step.get("numbers"), list):
        raise UsageError(f"{where}: шагу «expect_reminded» нужен список \"numbers\" ([] — напоминаний нет)")
    if kind == "expect_status" and not (isinstance(step.get("requests"), dict) and step["requests"]):
        raise UsageError(f"{where}: шагу «expect_status» нужен объект \"requests\": {{номер: статус}}")
    if kind == "advance" and not any(isinstance(step.get(k), int) and step[k] > 0 for k in STEP_FIELDS[kind]):
        raise UsageError(f"{where}: шагу «advance» нужно положительное целое minutes, hours или days")
    if kind == "run_mail" and set(step.get("expect") or {}) - set(MAIL_COUNTS):
        raise UsageError(f"{where}: в \"expect\" шага «run_mail» допустимы {', '.join(MAIL_COUNTS)}")
    if kind == "set_status" and not (step.get("number") and step.get("status")):
        raise UsageError(f"{where}: шагу «set_status» нужны \"number\" и \"status\"")
    return step


def load_scenarios(path: Path = DEFAULT_FILE) -> list[Scenario]:
    """Read and check a scenarios file; raise UsageError saying what is wrong and where."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise UsageError(f"файл сценариев {path} не прочитан: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"файл сценариев {path}: неверный JSON ({exc})") from None
    items = data.get("scenarios") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise UsageError(f"файл сценариев {path}: нужен объект со списком \"scenarios\"")
    loaded: list[Scenario] = []
    for index, item in enumerate(items, start=1):
        name = item.get("name") if isinstance(item, dict) else None
        where = f"{path.name}, сценарий {name or index}"
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,60}", name):
            raise UsageError(f"{where}: \"name\" — латинские буквы, цифры, - и _")
        if any(s.name == name for s in loaded):
            raise UsageError(f"{where}: имя повторяется")
        try:
            start = datetime.fromisoformat(item.get("start") or DEFAULT_START)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: \"start\" — время ISO 8601 с поясом, например {DEFAULT_START}") from None
        if start.tzinfo is None:
            raise UsageError(f"{where}: у \"start\" нужен часовой пояс (например +03:00)")
        settings = item.get("settings") or {}
        if not isinstance(settings, dict) or set(settings) - set(SCENARIO_SETTINGS):
            raise UsageError(f"{where}: в \"settings\" допустимы только {', '.join(SCENARIO_SETTINGS)}")
        steps = item.get("steps")
        if not isinstance(steps, list) or not steps:
            raise UsageError(f"{where}: нужен непустой список \"steps\"")
        checked = tuple(_check_step(f"{where}, шаг {n}", step) for n, step in enumerate(steps, start=1))
        loaded.append(Scenario(name, str(item.get("title") or name), str(item.get("description") or ""),
                               start.astimezone(timezone.utc), {k: str(v) for k, v in settings.items()}, checked))
    return loaded


def check_storage_allowed(settings: Settings, allow_remote: bool) -> None:
    """Refuse (UsageError) to write scenario data anywhere but the local emulator, unless allowed."""
    if settings.storage_is_emulator or allow_remote:
        return
    where = settings.tables_endpoint or "хранилище из OMIS_TABLES_CONNECTION_STRING"
    raise UsageError(f"сценарии записывают тестовые данные, а настроено не локальное хранилище ({where}). "
                     "Запустите их с Azurite или добавьте --allow-remote: данные пишутся в отдельные "
                     "таблицы сценария и удаляются после прогона.")


def scenario_settings(base: dict[str, str], scenario: Scenario, prefix: str) -> Settings:
    """Return the settings a scenario runs under: the user's, with the scenario's own and its tables."""
    env = {**base, **SCENARIO_DEFAULTS, **scenario.settings, "OMIS_TABLE_PREFIX": prefix,
           **dict.fromkeys(CLEARED_SETTINGS, "")}
    if scenario.settings.get("OMIS_ESCALATION_MINUTES"):
        env["OMIS_ESCALATION_CHAT_ID"] = "scenario-escalation"   # captured like the team chat
    return load_settings({k: v for k, v in env.items() if v})


def play(scenario: Scenario, *, keep_data: bool = False) -> ScenarioResult:
    """Play a scenario in tables of its own; return whether every expectation held."""
    base = get_settings()
    prefix = f"{base.table_prefix[:27]}scn{secrets.token_hex(5)}"
    store = Store(scenario_settings(dict(os.environ), scenario, prefix))
    result = ScenarioResult(scenario.name, lines=[f"Сценарий {scenario.name}: {scenario.title}"])
    player = Player(scenario, store)
    try:
        store.init()
        for number, step in enumerate(scenario.steps, start=1):
            try:
                done = player.run(step)
            except ExpectationFailed as exc:
                result.passed = False
                result.lines.append(f"  ✗ {number}. {player.stamp()} {exc}")
                break
            except StorageUnavailable:
                raise
            except Exception as exc:
                logger.debug("Scenario %s, step %d failed", scenario.name, number, exc_info=True)
                result.passed = False
                result.lines.append(f"  ✗ {number}. {player.stamp()} ошибка: {type(exc).__name__}: {exc}")
                break
            note = f" — {step['note']}" if step.get("note") else ""
            result.lines.append(f"  ✓ {number}. {player.stamp()} {done}{note}")
    finally:
        if keep_data:
            result.lines.append(f"  Данные сохранены: OMIS_TABLE_PREFIX={prefix}")
        else:
            try:
                store.drop()
            except Exception as exc:  # noqa: BLE001 - leftovers are named, not fatal
                logger.warning("Таблицы сценария %s… не удалены: %s", prefix, exc)
    result.lines.append("  Итог: пройден" if result.passed else "  Итог: НЕ пройден")
    return result


def visible_text(telegram_html: str) -> str:
    """Return what a reader sees of a Telegram HTML text (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", telegram_html))


def _expect_equal(what: str, expected: object, actual: object) -> None:
    if expected != actual:
        raise ExpectationFailed(f"{what}: ожидалось {expected!r}, получено {actual!r}")


class Player:
    """Carry out the steps of one scenario on its own clock."""

    def __init__(self, scenario: Scenario, store: Store) -> None:
        self.scenario = scenario
        self.store = store
        self.settings = store.settings
        self.now = scenario.start
        self.mailbox: list[Any] = []
        self.reminder: Any = None
        self._delivered = 0

    def stamp(self) -> str:
        """Return the scenario clock as shown in the lines, in OMIS_TIMEZONE."""
        return f"[{self.now.astimezone(self.settings.timezone):%d.%m %H:%M}]"

    def run(self, step: dict[str, Any]) -> str:
        """Carry out one step; return what it did; raise ExpectationFailed when a check fails."""
        return getattr(self, "_" + step["do"])(step)

    def _create(self, step: dict[str, Any]) -> str:
        for item in step["requests"]:
            self.store.add_request(str(item["number"]), position=str(item.get("position", "")),
                              description=str(item.get("description", "")), author=SCENARIO_AUTHOR, now=self.now)
        return "созданы заявки " + ", ".join(str(item["number"]) for item in step["requests"])

    def _set_status(self, step: dict[str, Any]) -> str:
        self.store.update_status(str(step["number"]), step["status"], comment=str(step.get("comment", "")),
                            author=SCENARIO_AUTHOR, now=self.now)
        return f"инженер поставил заявке {step['number']} статус «{step['status']}»"

    def _advance(self, step: dict[str, Any]) -> str:
        delta = timedelta(days=step.get("days", 0), hours=step.get("hours", 0), minutes=step.get("minutes", 0))
        self.now += delta
        return f"прошло {int(delta.total_seconds() // 60)} мин"

    def _deliver(self, step: dict[str, Any]) -> str:
        from ..mail.message import GraphMessage

        for item in step["messages"]:
            self._delivered += 1
            name, address = parseaddr(str(item.get("from", "Подрядчик <contractor@example.com>")))
            message_id = item.get("internet_message_id") or f"<{self.scenario.name}-{self._delivered}@scenario.omis>"
            self.mailbox.append(GraphMessage(
                graph_id=f"SCENARIO-{self.scenario.name}-{self._delivered}",   # a copy gets an id of its own
                internet_message_id=message_id, conversation_id=item.get("conversation_id"),
                subject=str(item.get("subject", "")), body=str(item.get("body", "")),
                unique_body=item.get("unique_body"), sender_name=name, sender_address=address,
                received=self.now + timedelta(minutes=item.get("received", 0))))
        return "доставлены письма: " + "; ".join(f"«{m.get('subject', '')}»" for m in step["messages"])

    def _run_mail(self, step: dict[str, Any]) -> str:
        from ..mail.sync import apply_messages

        messages, self.mailbox = self.mailbox, []
        report = apply_messages(messages, store=self.store)
        counts = {name: getattr(report, name) for name in MAIL_COUNTS}
        for name, expected in (step.get("expect") or {}).items():
            _expect_equal(f"почта: {name}", expected, counts.get(name))
        return "почта: " + ", ".join(f"{MAIL_COUNTS[name]} {value}" for name, value in counts.items())

    def _run_reminders(self, step: dict[str, Any]) -> str:
        from .remind import notify

        captured: list[str] = []

        def capture(part: str) -> bool:
            captured.append(part)
            return True   # as if Telegram accepted it: the reminder is recorded

        self.reminder = notify(store=self.store, now=self.now, min_overdue=step.get("minutes") or 0,
                               transport=capture, escalation_transport=capture)
        sent = f" Заявки: {', '.join(self.reminder.numbers)}." if captured else ""
        return self.reminder.summary() + sent

    def _expect_status(self, step: dict[str, Any]) -> str:
        for number, expected in step["requests"].items():
            wanted = expected if isinstance(expected, dict) else {"status": expected}
            request = self.store.get_request(number)
            if request is None:
                raise ExpectationFailed(f"заявки {number} нет")
            if "status" in wanted:
                _expect_equal(f"статус заявки {number}", wanted["status"], request.status)
            if "mail_entries" in wanted:
                mail = sum(1 for entry in request.history if entry.source == "mail")
                _expect_equal(f"писем в истории заявки {number}", wanted["mail_entries"], mail)
            if "promised_local" in wanted:
                local = request.promised.astimezone(self.settings.timezone).strftime("%Y-%m-%dT%H:%M") \
                    if request.promised else None
                _expect_equal(f"обещанный срок заявки {number}", wanted["promised_local"], local)
            if "comment_contains" in wanted and wanted["comment_contains"] not in request.comment:
                raise ExpectationFailed(f"в комментарии заявки {number} нет «{wanted['comment_contains']}»: "
                                        f"«{request.comment}»")
        return "статусы как ожидалось: " + ", ".join(f"{n}" for n in step["requests"])

    def _expect_reminded(self, step: dict[str, Any]) -> str:
        if self.reminder is None:
            raise ExpectationFailed("перед expect_reminded нужен шаг run_reminders")
        report = self.reminder
        _expect_equal("заявки в напоминании", sorted(map(str, step["numbers"])), sorted(report.numbers))
        text = visible_text(report.text)
        for needle in step.get("contains", []):
            if needle not in text:
                raise ExpectationFailed(f"в напоминании нет «{needle}»: {text!r}")
        for needle in step.get("absent", []):
            if needle in text:
                raise ExpectationFailed(f"в напоминании есть «{needle}», а не должно быть")
        for name in ("skipped_repeat", "skipped_off_hours"):
            if name in step:
                _expect_equal(name, step[name], getattr(report, name))
        if "escalated" in step:
            _expect_equal("заявки в эскалации", sorted(map(str, step["escalated"])), sorted(report.escalated_numbers))
        escalation = visible_text(report.escalation_text)
        for needle in step.get("escalation_contains", []):
            if needle not in escalation:
                raise ExpectationFailed(f"в эскалации нет «{needle}»: {escalation!r}")
        return "напоминание как ожидалось" if step["numbers"] else "напоминаний нет, как ожидалось"
