"""One pass over the contractor's mail: read it, understand it and apply it to the requests (SPEC §3).

Every (message, request) pair is one store transaction that carries the processed-message
marker, so a pass may be repeated, overlap another or die half-way: each message still
changes each request once. The Graph resume link is saved only after its batch is applied.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable

import requests

from .. import mailstore, store
from ..model import ROBOT_AUTHOR, normalize_number, utcnow
from ..settings import Settings, get_settings
from ..tables import StorageUnavailable
from .graph import GraphError, GraphMailClient, GraphThrottled, parse_not_before
from .message import GraphMessage
from .parse import ParsedMail, parse_mail
from .samples import fetch_contractor_messages

logger = logging.getLogger(__name__)

SOURCE_GRAPH = "graph"
SOURCE_SAMPLES = "samples"
SOURCE_NAMES = {SOURCE_GRAPH: "Outlook (Microsoft Graph)", SOURCE_SAMPLES: "встроенные примеры писем"}
# Mail-table state: no Graph call before this instant (Graph's Retry-After was longer than a pass waits).
NOT_BEFORE_STATE = "graph-not-before"


class MailSettingsMissing(Exception):
    """Mail cannot be read as configured (Outlook settings missing); the message names the settings."""


class SamplesNotAllowed(MailSettingsMissing):
    """The sample mailbox was asked for, but storage is not the local emulator."""


class MailError(Exception):
    """Reading the mailbox failed (sign-in, Graph, folder); the message says why, in Russian."""


class MailThrottled(MailError):
    """Graph asked to wait past what a pass affords: nothing applied, no Graph call before retry_at."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


@dataclass
class MailReport:
    """What one pass did.

    read: messages read; applied: (message, request) pairs applied now, with or without a
    status change; unchanged: those of them that left the status as it was; duplicates:
    pairs applied by an earlier pass, and unmatched messages kept before; unmatched:
    messages newly kept as unmatched (broken ones included); errors: broken messages.
    """

    read: int = 0
    applied: int = 0
    unchanged: int = 0
    unmatched: int = 0
    duplicates: int = 0
    errors: int = 0
    source: str = SOURCE_GRAPH
    graph_calls: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def status_changed(self) -> int:
        """Return how many applied pairs changed the request's status."""
        return self.applied - self.unchanged

    def summary(self) -> str:
        """Describe the pass in a few Russian lines for the command line."""
        source = SOURCE_NAMES.get(self.source, self.source)
        if self.source == SOURCE_GRAPH:
            source += f", запросов к Graph: {self.graph_calls}"
        lines = [
            f"Источник почты: {source}",
            f"Прочитано писем: {self.read}",
            f"Применено к заявкам: {self.applied} (статус изменён: {self.status_changed}, "
            f"без смены статуса: {self.unchanged})",
            f"Уже применялись раньше (пропущены): {self.duplicates}",
            f"Неразобранные письма: {self.unmatched}",
            f"Ошибки: {self.errors}",
        ]
        return "\n".join(lines + [f"— {note}" for note in self.notes])

    def log_line(self) -> str:
        """Return the counts on one line, for the log."""
        return (f"source={self.source} read={self.read} applied={self.applied} unchanged={self.unchanged} "
                f"duplicates={self.duplicates} unmatched={self.unmatched} errors={self.errors} "
                f"graph_calls={self.graph_calls}")


@dataclass(frozen=True)
class _Target:
    number: str
    status: str | None
    position: str | None


def _message_key(message: GraphMessage) -> str:
    """Return the message's processed-marker key (internetMessageId, else Graph id, else its content)."""
    try:
        return store.message_key(message.internet_message_id, message.graph_id)
    except ValueError:
        raw = f"{message.subject}|{message.received.isoformat()}|{message.sender_address}"
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]


def _sender(message: GraphMessage) -> str:
    if message.sender_name and message.sender_address and message.sender_name != message.sender_address:
        return f"{message.sender_name} <{message.sender_address}>"
    return message.sender_name or message.sender_address


def _mail_id(message: GraphMessage) -> str:
    return message.internet_message_id or message.graph_id


def _join(numbers: Iterable[str]) -> str:
    return ", ".join(numbers)


class _Pass:
    """Apply messages one by one, counting into a report."""

    def __init__(self) -> None:
        self.report = MailReport()
        self._linked: set[tuple[str, str]] = set()

    def apply(self, message: GraphMessage) -> None:
        """Apply one message; anything but StorageUnavailable is kept as an unmatched, broken message."""
        key = _message_key(message)
        self.report.read += 1
        try:
            parsed = parse_mail(message.subject, message.body, message.unique_body)
            targets, by_conversation, reason = self._targets(message, parsed)
        except StorageUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken message must not stop the pass
            logger.exception("Mail %s could not be read", _mail_id(message))
            self._keep(message, key, (), f"Письмо не удалось разобрать: {type(exc).__name__}: {exc}", broken=True)
            return
        if not targets:
            self._keep(message, key, (), reason)
            return
        applied, unknown, failed = self._apply_targets(message, key, parsed, targets)
        if applied and message.conversation_id and not by_conversation:
            self._link(message.conversation_id, applied)
        if failed:
            details = "; ".join(f"{number}: {type(exc).__name__}: {exc}" for number, exc in failed)
            reason = f"Ошибка при применении письма к заявкам ({details})."
            if unknown:
                reason += f" Не найдены заявки: {_join(unknown)}."
            self._keep(message, key, tuple(unknown) or tuple(n for n, _ in failed), reason, broken=True)
        elif unknown:
            reason = f"Не найдены заявки: {_join(unknown)}."
            if applied:
                reason += f" Письмо применено к заявкам: {_join(applied)}."
            self._keep(message, key, tuple(unknown), reason)

    def _targets(self, message: GraphMessage, parsed: ParsedMail) -> tuple[list[_Target], bool, str]:
        """Return the requests a message speaks about, whether via its conversation, and else why none."""
        if parsed.numbers:
            return [_Target(number, parsed.statuses.get(normalize_number(number)),
                            parsed.positions.get(normalize_number(number))) for number in parsed.numbers], False, ""
        tied = mailstore.conversation_numbers(message.conversation_id) if message.conversation_id else []
        if len(tied) == 1:
            return [_Target(tied[0], parsed.general_status, None)], True, ""
        if tied:
            return [], False, (f"В письме нет номера заявки, а переписка связана с несколькими заявками: "
                               f"{_join(sorted(tied))}.")
        return [], False, "В письме не найден номер заявки."

    def _apply_targets(self, message: GraphMessage, key: str, parsed: ParsedMail, targets: list[_Target]
                       ) -> tuple[list[str], list[str], list[tuple[str, Exception]]]:
        """Apply the message to each request; return the numbers applied, unknown and failed."""
        applied: list[str] = []
        unknown: list[str] = []
        failed: list[tuple[str, Exception]] = []
        for target in targets:
            try:
                result = store.apply_mail(
                    target.number, message=key, status=target.status, comment=parsed.comment,
                    received=message.received, author=ROBOT_AUTHOR,
                    message_id=_mail_id(message),
                    subject=message.subject, position=target.position)
            except store.RequestNotFound:
                unknown.append(target.number)
                continue
            except StorageUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - the other requests of the message still count
                logger.exception("Mail %s could not be applied to request %s", _mail_id(message), target.number)
                failed.append((target.number, exc))
                continue
            if result.outcome == "duplicate":
                self.report.duplicates += 1
            else:
                self.report.applied += 1
                if result.outcome != "status_changed":
                    self.report.unchanged += 1
            logger.debug("Mail %s → request %s: %s", _mail_id(message), target.number, result.outcome)
            applied.append(result.request.number if result.request is not None else target.number)
        return applied, unknown, failed

    def _link(self, conversation_id: str, numbers: list[str]) -> None:
        """Tie a conversation to the requests a message was applied to, once per pass."""
        for number in numbers:
            link = (conversation_id, normalize_number(number))
            if link in self._linked:
                continue
            try:
                mailstore.link_conversation(conversation_id, number)
            except StorageUnavailable:
                raise
            except Exception:  # noqa: BLE001 - the mail itself is applied; only later replies lose the tie
                logger.exception("Could not tie conversation to request %s", number)
                continue
            self._linked.add(link)

    def _keep(self, message: GraphMessage, key: str, numbers: tuple[str, ...], reason: str,
              broken: bool = False) -> None:
        """Keep a message on the unmatched page, once; count it."""
        if broken:
            self.report.errors += 1
            self.report.notes.append(f"Письмо «{message.subject or '(без темы)'}» от {_sender(message)}: {reason}")
        seen = f"unmatched:{key}"
        try:
            if mailstore.get_state(seen) is not None:
                if not broken:
                    self.report.duplicates += 1
                return
            mailstore.save_unmatched_mail(mailstore.UnmatchedMail(
                message_key=key, subject=message.subject, sender=_sender(message), received=message.received,
                numbers=numbers, message_id=_mail_id(message), reason=reason,
                text=message.body or message.unique_body or ""))
            mailstore.set_state(seen, message.received.isoformat())
        except StorageUnavailable:
            raise
        except Exception:  # noqa: BLE001 - logged; the pass goes on
            logger.exception("Could not keep unmatched mail %s", _mail_id(message))
            if not broken:
                self.report.errors += 1
            return
        self.report.unmatched += 1
        logger.info("Kept unmatched mail %s: %s", _mail_id(message), reason)


def apply_messages(messages: Iterable[GraphMessage], *, settings: Settings | None = None) -> MailReport:
    """Apply contractor messages to the requests, in received order; return what happened.

    Storage is the one of get_settings(); `settings` is accepted for symmetry with process_mailbox.
    StorageUnavailable stops the pass (and propagates); any other failure is one broken message.
    """
    del settings  # the store reads its own settings
    mail_pass = _Pass()
    for message in sorted(messages, key=lambda m: (m.received, m.graph_id)):
        mail_pass.apply(message)
    return mail_pass.report


def choose_source(settings: Settings, use_fake: bool | None = None) -> str:
    """Decide where mail comes from (SPEC §7), before touching storage or the network."""
    if use_fake:
        if not settings.storage_is_emulator:
            raise SamplesNotAllowed(
                "Встроенные примеры писем (--fake) записываются только в локальный эмулятор хранилища "
                "(Azurite), а настроено рабочее хранилище. Для настоящей почты задайте настройки Outlook "
                "и запустите без --fake.")
        return SOURCE_SAMPLES
    missing = settings.missing_outlook_settings()
    if not missing:
        return SOURCE_GRAPH
    if use_fake is None and settings.storage_is_emulator:
        return SOURCE_SAMPLES
    raise MailSettingsMissing("Почта не прочитана: не заданы настройки Outlook: " + ", ".join(missing)
                              + ". Без них встроенные примеры писем используются только с локальным "
                                "эмулятором хранилища (Azurite).")


def resume_state_name(state_key: str) -> str:
    """Return the mail-table state name of a folder's Graph resume link."""
    return "graph-resume:" + hashlib.sha256(state_key.encode("utf-8")).hexdigest()[:32]


def process_mailbox(*, use_fake: bool | None = None, settings: Settings | None = None,
                    now: datetime | None = None, session: requests.Session | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> MailReport:
    """Run one pass over the mailbox (or the sample mailbox) and return its report.

    use_fake: None decides by the settings, True asks for the samples, False for Outlook.
    Raises MailSettingsMissing (nothing touched), MailError (Graph failed; nothing applied;
    MailThrottled when Graph asked to wait: its retry_at is saved, and no pass calls Graph before it),
    StorageUnavailable (the resume link is not advanced: the next pass reads the batch again).
    """
    settings = settings or get_settings()
    now = now or utcnow()
    source = choose_source(settings, use_fake)
    if source == SOURCE_SAMPLES:
        if not use_fake:
            logger.warning("Outlook settings are incomplete (%s): using the built-in sample mailbox",
                           ", ".join(settings.missing_outlook_settings()))
        else:
            logger.info("Using the built-in sample mailbox")
        report = apply_messages(fetch_contractor_messages(True, settings=settings, now=now), settings=settings)
        report.source = SOURCE_SAMPLES
        if not use_fake:
            report.notes.append("Настройки Outlook не заданы: прочитаны встроенные примеры писем "
                                "(только с локальным эмулятором хранилища).")
        logger.info("Mail pass done: %s", report.log_line())
        return report

    not_before = parse_not_before(mailstore.get_state(NOT_BEFORE_STATE))
    started = time.monotonic()
    client = GraphMailClient(settings, session=session, sleep=sleep, not_before=not_before,
                             clock=lambda: now + timedelta(seconds=time.monotonic() - started))
    try:
        state_name = resume_state_name(client.state_key)
        resume_link = mailstore.get_state(state_name)
        try:
            batch = client.read_messages(resume_link, now=now)
        except GraphThrottled as exc:
            if exc.retry_at != not_before:
                mailstore.set_state(NOT_BEFORE_STATE, exc.retry_at.isoformat())
            raise MailThrottled(str(exc), exc.retry_at) from None
        except GraphError as exc:
            raise MailError(str(exc)) from None
        report = apply_messages(batch.messages, settings=settings)
        mailstore.set_state(state_name, batch.resume_link)  # only now: a pass that died re-reads the batch
    finally:
        if session is None:
            client.close()
    report.source = SOURCE_GRAPH
    report.graph_calls = batch.calls
    if batch.restarted:
        report.notes.append("Graph больше не знал, где остановился прошлый проход: окно просмотра "
                            f"({settings.outlook_lookback_minutes} мин) прочитано заново, "
                            "уже применённые письма пропущены.")
    if not batch.complete:
        report.notes.append(f"Прочитаны не все новые письма (не больше {settings.outlook_max_messages} "
                            "за проход, OMIS_OUTLOOK_MAX_MESSAGES): остальные — в следующий проход.")
    logger.info("Mail pass done: %s", report.log_line())
    return report


def scheduled_mail_pass(now: datetime | None = None) -> MailReport | None:
    """Run the timer's pass: log the report, or log a readable error and re-raise it.

    Throttling is no failure of the timer: it is logged as a warning and the pass returns None.
    """
    try:
        report = process_mailbox(now=now)
    except MailThrottled as exc:
        logger.warning("Mail pass skipped: %s", exc)
        return None
    except (MailSettingsMissing, MailError, StorageUnavailable) as exc:
        logger.error("Mail pass failed: %s", exc)
        raise
    return report
