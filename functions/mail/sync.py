"""One pass over the contractor's mail: read it, understand it and apply it to the requests (SPEC §3).

A pass is a pipeline: the messages of a batch, in received order → parse them all (pure) →
resolve their targets (numbers and old numbers to request ids, numberless replies through their
conversation) → one store transaction per (message, request), carrying the processed-message
marker → save the mailbox position. A pass may be repeated, overlap another or die half-way:
each message still changes each request once. The Graph resume link is saved only after its
batch is applied.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from ..model import normalize_number, utcnow
from ..settings import Settings, get_settings
from ..storage import StorageUnavailable, Store, UnmatchedMail, get_store
from ..storage.mail import LINKS_PER_TRANSACTION
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
    """What one pass did: messages and (message, request) pairs counted apart.

    Messages: read; applied (to at least one request now); already applied (every request it
    names had it already); unmatched (newly kept for a person); unmatched before (kept by an
    earlier pass); errors (broken messages, also kept as unmatched). Pairs: applied now, of
    them with a status change, and pairs applied before.
    """

    read: int = 0
    applied: int = 0
    already_applied: int = 0
    unmatched: int = 0
    unmatched_before: int = 0
    errors: int = 0
    pairs_applied: int = 0
    pairs_status_changed: int = 0
    pairs_duplicate: int = 0
    source: str = SOURCE_GRAPH
    graph_calls: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def pairs_unchanged(self) -> int:
        """Return how many applied pairs left the request's status as it was."""
        return self.pairs_applied - self.pairs_status_changed

    def summary(self) -> str:
        """Describe the pass in a few Russian lines for the command line."""
        source = SOURCE_NAMES.get(self.source, self.source)
        if self.source == SOURCE_GRAPH:
            source += f", запросов к Graph: {self.graph_calls}"
        lines = [
            f"Источник почты: {source}",
            f"Писем прочитано: {self.read}",
            f"Писем применено к заявкам: {self.applied}",
            f"Писем уже применённых раньше (пропущены): {self.already_applied}",
            f"Неразобранных писем: новых {self.unmatched}, отложенных раньше {self.unmatched_before}",
            f"Писем с ошибками: {self.errors}",
            (f"Изменений заявок (письмо × заявка): {self.pairs_applied} (статус изменён: "
            f"{self.pairs_status_changed}, без смены статуса: {self.pairs_unchanged}); уже были: "
            f"{self.pairs_duplicate}"),
        ]
        return "\n".join(lines + [f"— {note}" for note in self.notes])

    def log_line(self) -> str:
        """Return the counts on one line, for the log."""
        return (f"source={self.source} read={self.read} applied={self.applied} "
                f"already_applied={self.already_applied} unmatched={self.unmatched} "
                f"unmatched_before={self.unmatched_before} errors={self.errors} pairs={self.pairs_applied} "
                f"pairs_status_changed={self.pairs_status_changed} pairs_duplicate={self.pairs_duplicate} "
                f"graph_calls={self.graph_calls}")


@dataclass(frozen=True)
class Target:
    """One request a message is applied to, and what the message says about it."""

    request_id: str
    number: str                 # as the mail named it (or the request's, via the conversation)
    status: str | None
    position: str | None
    promised: datetime | None


@dataclass
class _Planned:
    """A message with its reading and its targets, before anything is written."""

    message: GraphMessage
    key: str
    parsed: ParsedMail | None
    targets: list[Target]
    unknown: list[str]
    by_conversation: bool
    reason: str = ""
    broken: str = ""


def message_key(internet_message_id: str | None, graph_id: str | None) -> str:
    """Return the stable key of a mail message: its internetMessageId, else its Graph id."""
    raw = (internet_message_id or "").strip() or (graph_id or "").strip()
    if not raw:
        raise ValueError("у письма нет ни internetMessageId, ни id")
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]


def _message_key(message: GraphMessage) -> str:
    """Return the message's processed-marker key (internetMessageId, else Graph id, else its content)."""
    try:
        return message_key(message.internet_message_id, message.graph_id)
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


class MailPass:
    """Apply a batch of messages to the requests of one store, counting into a report."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.settings = store.settings
        self.report = MailReport()
        self._linked: set[tuple[str, str]] = set()
        self._unwritten: list[tuple[str, str]] = []     # links made by this pass, written in batches
        self._batch_links: dict[str, list[str]] = {}   # conversations tied by earlier messages of this batch

    def run(self, messages: Iterable[GraphMessage]) -> MailReport:
        """Plan every message (parse, resolve), then apply them in received order."""
        ordered = sorted(messages, key=lambda m: (m.received, m.graph_id))
        for planned in [self._plan(m) for m in ordered]:
            self._apply(planned)
        self._write_links()
        return self.report

    def _plan(self, message: GraphMessage) -> _Planned:
        key = _message_key(message)
        try:
            parsed = parse_mail(message.subject, message.body, message.unique_body, received=message.received,
                                tz=self.settings.timezone, calendar=self.settings.calendar)
            targets, unknown, by_conversation, reason = self._targets(message, parsed)
            if targets and message.conversation_id and not by_conversation:
                tied = self._batch_links.setdefault(message.conversation_id, [])
                tied.extend(t.request_id for t in targets if t.request_id not in tied)
        except StorageUnavailable:
            raise
        except Exception as exc:
            logger.exception("Mail %s could not be read", _mail_id(message))
            return _Planned(message, key, None, [], [], False,
                            broken=f"Письмо не удалось разобрать: {type(exc).__name__}: {exc}")
        return _Planned(message, key, parsed, targets, unknown, by_conversation, reason)

    def _targets(self, message: GraphMessage, parsed: ParsedMail
                 ) -> tuple[list[Target], list[str], bool, str]:
        """Return the requests a message speaks about, the numbers that name none, and else why none."""
        requests_ = self.store.requests
        if parsed.numbers:
            targets: list[Target] = []
            unknown: list[str] = []
            seen: set[str] = set()
            for number in parsed.numbers:
                key = normalize_number(number)
                request_id = requests_.resolve(number)
                if request_id is None:
                    unknown.append(number)
                elif request_id not in seen:   # a number and its old number in one mail: once
                    seen.add(request_id)
                    targets.append(Target(request_id, number, parsed.statuses.get(key), parsed.positions.get(key),
                                          parsed.promises.get(key)))
            return targets, unknown, False, ""
        tied = self.store.mail.conversation_requests(message.conversation_id) if message.conversation_id else []
        tied += [i for i in self._batch_links.get(message.conversation_id or "", []) if i not in tied]
        if len(tied) == 1:
            found = requests_.row(tied[0])
            if found is not None:
                return [Target(tied[0], found["Number"], parsed.general_status, None, parsed.general_promise)], [], \
                    True, ""
        if len(tied) > 1:
            rows = [requests_.row(request_id) for request_id in tied]
            names = sorted(row["Number"] for row in rows if row is not None)
            return [], [], False, ("В письме нет номера заявки, а переписка связана с несколькими заявками: "
                                   f"{_join(names)}.")
        return [], [], False, "В письме не найден номер заявки."

    def _apply(self, planned: _Planned) -> None:
        """Apply one planned message; anything but StorageUnavailable is kept as an unmatched, broken message."""
        message = planned.message
        self.report.read += 1
        if planned.broken:
            self._keep(planned, (), planned.broken, broken=True)
            return
        if not planned.targets:
            self._keep(planned, tuple(planned.unknown), planned.reason or
                       f"Не найдены заявки: {_join(planned.unknown)}.")
            return
        applied, duplicates, failed = self._apply_targets(planned)
        if applied:
            self.report.applied += 1
        elif duplicates and not failed:
            self.report.already_applied += 1
        if (applied or duplicates) and message.conversation_id and not planned.by_conversation:
            self._link(message.conversation_id, [t.request_id for t in planned.targets])
        if failed:
            details = "; ".join(f"{number}: {type(exc).__name__}: {exc}" for number, exc in failed)
            reason = f"Ошибка при применении письма к заявкам ({details})."
            if planned.unknown:
                reason += f" Не найдены заявки: {_join(planned.unknown)}."
            self._keep(planned, tuple(planned.unknown) or tuple(n for n, _ in failed), reason, broken=True)
        elif planned.unknown:
            reason = f"Не найдены заявки: {_join(planned.unknown)}."
            if applied:
                reason += f" Письмо применено к заявкам: {_join(applied)}."
            self._keep(planned, tuple(planned.unknown), reason)

    def _apply_targets(self, planned: _Planned) -> tuple[list[str], list[str], list[tuple[str, Exception]]]:
        """Apply the message to each request; return the numbers applied now, applied before, and failed."""
        message, parsed = planned.message, planned.parsed
        if parsed is None:        # planned as broken: nothing to apply
            return [], [], []
        applied: list[str] = []
        duplicates: list[str] = []
        failed: list[tuple[str, Exception]] = []
        for target in planned.targets:
            try:
                result = self.store.apply_mail(
                    target.request_id, message=planned.key, status=target.status, comment=parsed.comment,
                    received=message.received, message_id=_mail_id(message), subject=message.subject,
                    position=target.position, promised=target.promised, sender=message.sender_address,
                    graph_id=message.graph_id)
            except StorageUnavailable:
                raise
            except Exception as exc:
                logger.exception("Mail %s could not be applied to request %s", _mail_id(message), target.number)
                failed.append((target.number, exc))
                continue
            if result.outcome == "duplicate":
                self.report.pairs_duplicate += 1
                duplicates.append(target.number)
            else:
                self.report.pairs_applied += 1
                self.report.pairs_status_changed += result.outcome == "status_changed"
                applied.append(result.request.number if result.request is not None else target.number)
            logger.debug("Mail %s → request %s: %s", _mail_id(message), target.number, result.outcome)
        return applied, duplicates, failed

    def _link(self, conversation_id: str, request_ids: list[str]) -> None:
        """Tie a conversation to the requests a message was applied to, once per pass.

        The links are written in batches (one transaction per LINKS_PER_TRANSACTION) and at the end
        of the pass, before the caller saves the mailbox position: a pass that dies first reads
        these messages again, finds them applied, and links them then. Within the pass,
        `_batch_links` already answers numberless replies.
        """
        for request_id in request_ids:
            link = (conversation_id, request_id)
            if link not in self._linked:
                self._linked.add(link)
                self._unwritten.append(link)
        if len(self._unwritten) >= LINKS_PER_TRANSACTION:
            self._write_links()

    def _write_links(self) -> None:
        links, self._unwritten = self._unwritten, []
        if not links:
            return
        try:
            self.store.mail.link_conversations(links)
        except StorageUnavailable:
            raise
        except Exception:
            logger.exception("Could not tie %d conversations to their requests", len(links))

    def _keep(self, planned: _Planned, numbers: tuple[str, ...], reason: str, broken: bool = False) -> None:
        """Keep a message on the unmatched page, once; count it."""
        message = planned.message
        if broken:
            self.report.errors += 1
            self.report.notes.append(f"Письмо «{message.subject or '(без темы)'}» от {_sender(message)}: {reason}")
        mail = UnmatchedMail(
            message_key=planned.key, subject=message.subject, sender=_sender(message), received=message.received,
            numbers=numbers, message_id=_mail_id(message), reason=reason, text=message.body or "",
            unique_text=message.unique_body or "", conversation_id=message.conversation_id or "",
            graph_id=message.graph_id, sender_address=message.sender_address)
        if self.store.mail.keep_unmatched(mail):
            self.report.unmatched += not broken
            logger.info("Kept unmatched mail %s: %s", _mail_id(message), reason)
        elif not broken:
            self.report.unmatched_before += 1


def apply_messages(messages: Iterable[GraphMessage], *, store: Store | None = None) -> MailReport:
    """Apply contractor messages to the requests, in received order; return what happened.

    StorageUnavailable stops the pass (and propagates); any other failure is one broken message.
    """
    return MailPass(store or get_store()).run(messages)


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
    return "graph-resume-" + hashlib.sha256(state_key.encode("utf-8")).hexdigest()[:32]


def process_mailbox(*, use_fake: bool | None = None, settings: Settings | None = None,
                    store: Store | None = None, now: datetime | None = None, session: requests.Session | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> MailReport:
    """Run one pass over the mailbox (or the sample mailbox) and return its report.

    use_fake: None decides by the settings, True asks for the samples, False for Outlook.
    Raises MailSettingsMissing (nothing touched), MailError (Graph failed; nothing applied;
    MailThrottled when Graph asked to wait: its retry_at is saved, and no pass calls Graph before it),
    StorageUnavailable (the resume link is not advanced: the next pass reads the batch again).
    """
    settings = settings or (store.settings if store else get_settings())
    now = now or utcnow()
    source = choose_source(settings, use_fake)
    store = store or get_store(settings)
    if source == SOURCE_SAMPLES:
        if not use_fake:
            logger.warning("Outlook settings are incomplete (%s): using the built-in sample mailbox",
                           ", ".join(settings.missing_outlook_settings()))
        else:
            logger.info("Using the built-in sample mailbox")
        report = apply_messages(fetch_contractor_messages(True, settings=settings, now=now), store=store)
        report.source = SOURCE_SAMPLES
        if not use_fake:
            report.notes.append("Настройки Outlook не заданы: прочитаны встроенные примеры писем "
                                "(только с локальным эмулятором хранилища).")
        logger.info("Mail pass done: %s", report.log_line())
        return report

    not_before = parse_not_before(store.mail.get_state(NOT_BEFORE_STATE))
    started = time.monotonic()
    client = GraphMailClient(settings, session=session, sleep=sleep, not_before=not_before,
                             clock=lambda: now + timedelta(seconds=time.monotonic() - started))
    try:
        state_name = resume_state_name(client.state_key)
        resume_link = store.mail.get_state(state_name)
        try:
            batch = client.read_messages(resume_link, now=now)
        except GraphThrottled as exc:
            if exc.retry_at != not_before:
                store.mail.set_state(NOT_BEFORE_STATE, exc.retry_at.isoformat())
            raise MailThrottled(str(exc), exc.retry_at) from None
        except GraphError as exc:
            raise MailError(str(exc)) from None
        report = apply_messages(batch.messages, store=store)
        store.mail.set_state(state_name, batch.resume_link)  # only now: a pass that died re-reads the batch
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
