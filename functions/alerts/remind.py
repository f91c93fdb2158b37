"""The reminder pass: the requests whose deadline has passed, in one digest to the team (SPEC §4).

Only the deadline index is read (the k_ rows before now), so a pass costs as much as there are
breached requests, not the table. Decisions are pure (`plan_reminders`): which breached requests
are due (not snoozed, not reminded within OMIS_ALERT_REPEAT_MINUTES, within working hours unless
their level runs 24x7) and which also go to the escalation chat. The reminders are then claimed
in storage *before* they go out (storage/reminders.py): of two passes at once only one names a
request. The parts Telegram refused are given back, so the next pass names them again. Without
Telegram settings the digest goes to the log (`[FAKE TELEGRAM] …`), the local channel, and the
reminders are noted too — otherwise every timer tick would log the same digest. A dry run only
logs.
"""
from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from ..deadlines import DeadlineState, deadline_state, facts_of, overdue_minutes
from ..model import Request, utcnow
from ..settings import Settings
from ..storage import StorageUnavailable, Store, get_store
from ..storage import reminders as claims
from ..storage.counts import fold_counts
from ..storage.layout import request_from_row
from ..storage.reindex import ensure_deadline_index
from .digest import DigestItem, build_deadline_digest, build_escalation_digest, split_message
from .digest_send import team_digest_channel
from .telegram import send_message

logger = logging.getLogger(__name__)

# Timer ticks drift by seconds: a request reminded at 10:00:04 is due again on the 11:00:01 tick.
REPEAT_SLACK = timedelta(seconds=30)

Transport = Callable[[str], bool]


@dataclass
class ReminderReport:
    """What one reminder pass found and did."""

    breached: int = 0             # requests whose deadline has passed (read from the deadline index)
    reminded: int = 0             # named in a team digest that was accepted (or logged, without Telegram)
    escalated: int = 0            # named in an escalation digest that was accepted (or logged)
    skipped_repeat: int = 0       # breached, but reminded within OMIS_ALERT_REPEAT_MINUTES (or by a pass beside)
    skipped_snoozed: int = 0      # breached, but snoozed until later
    skipped_off_hours: int = 0    # due, but now is outside working hours (and its level counts working time)
    failed: int = 0               # due, but the message carrying them was not accepted
    sent: bool = False            # Telegram accepted every part of every digest
    text: str = ""                # the team digest (empty when there was nothing to remind about)
    escalation_text: str = ""
    index_rows: int = 0           # deadline index rows the pass read (the breached requests, nothing else)
    entities_read: int = 0        # entities the store returned for the pass, all reads counted
    calls: int = 0                # storage calls the pass made
    numbers: list[str] = field(default_factory=list)   # requests named in the team digest
    escalated_numbers: list[str] = field(default_factory=list)
    dry_run: bool = False
    log_only: bool = False        # no Telegram settings: the digest went to the log
    reindexed: int = 0            # requests whose deadline moved because the levels or calendar changed
    nudged: list[str] = field(default_factory=list)   # requests whose contractor got an automatic nudge queued

    @property
    def ok(self) -> bool:
        """Say whether the pass did what it had to (nothing failed to go out)."""
        return self.failed == 0

    def summary(self) -> str:
        """Describe the pass in one Russian line for the operator."""
        parts = [f"Напоминания: сроков прошло {self.breached}"]
        if self.dry_run:
            parts.append(f"вошло бы в напоминание {len(self.numbers)}, в эскалацию {len(self.escalated_numbers)} "
                         "(пробный запуск, ничего не отправлено)")
        elif self.log_only:
            parts.append(f"напомнено {self.reminded} (Telegram не настроен — текст только в журнале)")
        else:
            parts.append(f"напомнено {self.reminded}")
        if self.escalated and not self.dry_run:
            parts.append(f"эскалировано {self.escalated}")
        if self.nudged:
            parts.append(f"подрядчику поставлено напоминаний {len(self.nudged)}")
        for count, what in ((self.skipped_repeat, "уже напоминали недавно"), (self.skipped_snoozed, "отложено"),
                            (self.skipped_off_hours, "ждут рабочего времени"), (self.failed, "не отправлено")):
            if count:
                parts.append(f"{what} {count}")
        return ", ".join(parts) + "."


@dataclass(frozen=True)
class Breach:
    """A breached request as the pass read it, with its state under the current levels."""

    row: dict[str, Any]
    request: Request
    state: DeadlineState
    overdue: float


@dataclass
class Plan:
    """What a pass will do: who goes in the team digest, who in the escalation digest."""

    team: list[Breach] = field(default_factory=list)
    escalation: list[Breach] = field(default_factory=list)
    skipped_repeat: int = 0
    skipped_snoozed: int = 0
    skipped_off_hours: int = 0


def working_hours_limit(settings: Settings) -> bool:
    """Say whether reminders are limited to working hours (OMIS_WORK_HOURS or OMIS_HOLIDAYS set)."""
    return settings.work_hours is not None or bool(settings.holidays)


def is_reminder_time(now: datetime, settings: Settings) -> bool:
    """Say whether reminders about working-time levels may go out at this instant."""
    if settings.work_hours is not None:
        return settings.calendar.is_working(now)
    return now.astimezone(settings.timezone).date() not in settings.holidays


def _recent(last: datetime | None, now: datetime, repeat_minutes: int) -> bool:
    return last is not None and now - last < timedelta(minutes=repeat_minutes) - REPEAT_SLACK


def read_breaches(rows: list[dict[str, Any]], now: datetime, settings: Settings) -> list[Breach]:
    """Turn deadline-index rows into breaches under the current levels (a stale row, not breached, is left out)."""
    found = []
    for row in rows:
        request = request_from_row(row)
        level = settings.level(request.level)
        state = deadline_state(facts_of(request), level, settings.calendar)
        if state.breached(now):
            found.append(Breach(row, request, state, overdue_minutes(state, now, level, settings.calendar)))
    return found


def plan_reminders(breaches: list[Breach], now: datetime, settings: Settings) -> Plan:
    """Decide who is reminded now and who is escalated (pure)."""
    plan = Plan()
    working_now = not working_hours_limit(settings) or is_reminder_time(now, settings)
    for breach in breaches:
        request = breach.request
        if request.snoozed_until is not None and request.snoozed_until > now:
            plan.skipped_snoozed += 1
            continue
        if not working_now and settings.level(request.level).clock != "24x7":
            plan.skipped_off_hours += 1
            continue
        if _recent(request.last_reminded_at, now, settings.alert_repeat_minutes):
            plan.skipped_repeat += 1
        else:
            plan.team.append(breach)
        if (settings.escalation_configured and breach.overdue > (settings.escalation_minutes or 0)
                and not _recent(request.last_escalated_at, now, settings.alert_repeat_minutes)):
            plan.escalation.append(breach)
    return plan


def _item(breach: Breach, settings: Settings) -> DigestItem:
    request, level = breach.request, settings.level(breach.request.level)
    return DigestItem(number=request.number, position=request.position, level_title=level.title,
                      status=request.status, kind=breach.state.kind or "", deadline=breach.state.deadline,  # type: ignore[arg-type]
                      overdue_minutes=breach.overdue,
                      working_time=level.clock == "work" and working_hours_limit(settings),
                      last_news_at=request.last_news_at, comment=request.comment)


def _marker(number: str) -> str:
    """Return the text that names a request's line in the digest (its number in bold)."""
    return f"<b>{html.escape(number, quote=False)}</b>"


def _deliver(text: str, due: list[Breach], transport: Transport) -> tuple[list[Breach], list[Breach]]:
    """Send a digest part by part; return the breaches whose part was accepted, and the rest."""
    parts = split_message(text)
    accepted: list[Breach] = []
    pending = list(due)
    for index, part in enumerate(parts, start=1):
        if not transport(part):
            if len(parts) > 1:
                logger.error("Напоминание: принято частей %d из %d; остальные заявки — на следующем проходе",
                             index - 1, len(parts))
            return accepted, pending
        carried = [b for b in pending if _marker(b.request.number) in part]
        if index == len(parts):
            carried = pending   # every line was in some part; nothing is left unaccounted for
        accepted.extend(carried)
        pending = [b for b in pending if b not in carried]
    return accepted, pending


def _release(store: Store, breaches: list[Breach], at: datetime, field_name: str) -> None:
    """Give back the reminders that did not go out, so the next pass sends them."""
    if not breaches:
        return
    try:
        claims.release(store.requests, [b.row for b in breaches], at, field_name)
    except Exception as exc:  # noqa: BLE001 - they stay noted: reminded one repeat interval late, never twice
        logger.error("Не удалось вернуть неотправленные напоминания (%d заявок), они придут через интервал "
                     "повтора: %s", len(breaches), exc)


def notify(*, store: Store | None = None, now: datetime | None = None, send: bool = True, min_overdue: float = 0,
           session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep,
           transport: Transport | None = None, escalation_transport: Transport | None = None) -> ReminderReport:
    """Remind the team once about every breached request that is due; return what happened.

    `send=False` is a dry run; `min_overdue` leaves out deadlines passed less than that many minutes
    ago (`notify --minutes N`); `transport`/`escalation_transport` replace Telegram (one digest
    part in, True when accepted), as the scenarios and tests do.
    """
    store = store or get_store()
    settings = store.settings
    now = (now or utcnow()).astimezone(timezone.utc)
    report = ReminderReport(dry_run=not send)
    before = (store.stats.calls, store.stats.entities_read)
    if send:
        report.reindexed = ensure_deadline_index(store.requests)
    rows = store.requests.deadline_rows(now)
    report.index_rows = len(rows)
    breaches = [b for b in read_breaches(rows, now, settings) if b.overdue >= min_overdue]
    report.breached = len(breaches)
    plan = plan_reminders(breaches, now, settings)
    report.skipped_repeat, report.skipped_snoozed = plan.skipped_repeat, plan.skipped_snoozed
    report.skipped_off_hours = plan.skipped_off_hours
    if send and (plan.team or plan.escalation):
        wanted: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for breach in plan.team:
            wanted.setdefault(breach.request.id, (breach.row, []))[1].append(claims.TEAM)
        for breach in plan.escalation:
            wanted.setdefault(breach.request.id, (breach.row, []))[1].append(claims.ESCALATION)
        noted = claims.claim(store.requests, [(row, tuple(names)) for row, names in wanted.values()], now)
        lost = [b for b in plan.team if b.request.id not in noted]
        report.skipped_repeat += len(lost)
        if lost:
            logger.info("Напоминания: %d заявок уже напоминает другой проход или они изменились", len(lost))
        plan.team = [b for b in plan.team if b.request.id in noted]
        plan.escalation = [b for b in plan.escalation if b.request.id in noted]
    tz, public_url = settings.timezone, settings.public_url
    report.text = build_deadline_digest([_item(b, settings) for b in plan.team], now=now, tz=tz,
                                        public_url=public_url) if plan.team else ""
    report.escalation_text = build_escalation_digest(
        [_item(b, settings) for b in plan.escalation], now=now, tz=tz, public_url=public_url,
        escalation_minutes=settings.escalation_minutes or 0) if plan.escalation else ""
    report.numbers = [b.request.number for b in plan.team]
    report.escalated_numbers = [b.request.number for b in plan.escalation]
    if not send:
        for text in (report.text, report.escalation_text):
            if text:
                logger.info("[ПРОБНЫЙ ЗАПУСК] %s", text)
        return _done(report, store, before)
    _send_all(report, plan, store, now, session=session, sleep=sleep, transport=transport,
              escalation_transport=escalation_transport)
    if settings.mail_send and settings.auto_nudge:
        report.nudged = auto_nudge(store, breaches, now)
    _fold_counts(store)
    return _done(report, store, before)


def auto_nudge(store: Store, breaches: list[Breach], now: datetime) -> list[str]:
    """Queue one nudge to the contractor per passed contractor deadline (OMIS_AUTO_NUDGE); return the numbers."""
    from ..deadlines import CONTRACTOR_KINDS
    from ..mail.outbox import SendingOff, queue_nudge
    from ..model import ROBOT_AUTHOR
    from ..storage import ConflictError, RequestNotFound

    nudged = []
    for breach in breaches:
        kind, deadline = breach.state.kind, breach.state.deadline
        if kind not in CONTRACTOR_KINDS or deadline is None:
            continue
        try:
            done = queue_nudge(store, breach.request.number, author=ROBOT_AUTHOR, source="outbox", now=now,
                               nudge_for=f"{kind}@{deadline.isoformat()}", passed_kind=kind)
        except (SendingOff, ConflictError, RequestNotFound) as exc:   # one request must not stop the pass
            logger.warning("Автоматическое напоминание подрядчику по заявке %s не поставлено: %s",
                           breach.request.number, exc)
            continue
        if done is not None:
            nudged.append(breach.request.number)
    return nudged


def _fold_counts(store: Store) -> None:
    """Fold the status counts, as housekeeping: storage failing here must not hide what the pass did."""
    try:
        fold_counts(store.requests)
    except StorageUnavailable as exc:
        logger.warning("status counts not folded (next pass folds them): %s", exc)


def _done(report: ReminderReport, store: Store, before: tuple[int, int]) -> ReminderReport:
    report.calls = store.stats.calls - before[0]
    report.entities_read = store.stats.entities_read - before[1]
    (logger.info if report.ok else logger.error)("%s", report.summary())
    return report


def _send_all(report: ReminderReport, plan: Plan, store: Store, now: datetime, *,
              session: requests.Session | None, sleep: Callable[[float], None],
              transport: Transport | None, escalation_transport: Transport | None) -> None:
    settings = store.settings
    if transport is None and not settings.telegram_configured:
        for text in (report.text, report.escalation_text):
            if text:
                send_message(text, settings=settings)   # logs [FAKE TELEGRAM] …
        report.log_only = True
        report.reminded, report.escalated = len(plan.team), len(plan.escalation)
        return
    own_session = session is None
    bot = requests.Session() if own_session else session
    try:
        def team(part: str) -> bool:
            return send_message(part, settings=settings, session=bot, sleep=sleep)
        team_channel: Transport = team
        if transport is None and report.text:
            # The team digest is kept with its buttons (snooze them all, SPEC §9) before it goes out.
            team_channel = team_digest_channel(store, [b.request for b in plan.team], report.text, now,
                                               session=bot, sleep=sleep)

        def escalation(part: str) -> bool:
            return send_message(part, settings=settings, session=bot, sleep=sleep,
                                chat_id=settings.escalation_chat_id, thread_id=settings.escalation_thread_id)
        sent_all = True
        for text, due, channel, field_name, counter in (
                (report.text, plan.team, transport or team_channel, claims.TEAM, "reminded"),
                (report.escalation_text, plan.escalation, escalation_transport or escalation, claims.ESCALATION,
                 "escalated")):
            if not text:
                continue
            rejected = list(due)
            try:
                accepted, rejected = _deliver(text, due, channel)
            finally:
                _release(store, rejected, now, field_name)   # also when sending raised: a failed send records nothing
            setattr(report, counter, len(accepted))
            report.failed += len(rejected)
            sent_all = sent_all and not rejected
        report.sent = sent_all
    finally:
        if own_session and bot is not None:
            bot.close()
