"""One pass of reminders: read the delayed requests, note who is reminded, send one digest.

Only the store's delay index is read, so a pass costs as much as there are delayed requests.
The reminder is noted on the requests (store.claim_reminders) *before* it goes out, each
guarded by its row's ETag: of two passes that run at once (a timer run twice, `run` beside
the timer), only one notes a request, and only that one names it in its digest. The digest is
sent part by part; the requests of the parts Telegram refused are given back their previous
reminder time (store.release_reminders), so they are reminded about again on the next pass.
Without Telegram settings the digest goes to the log (`[FAKE TELEGRAM] …`), which is the
channel of a local set-up, so the reminders are noted too — otherwise every timer tick would
log the same digest again. A dry run logs the digest and changes nothing.
"""
from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import requests

from .. import store
from ..delays import delay_cutoff, quiet_minutes
from ..model import Request, utcnow
from ..settings import Settings, get_settings
from .digest import build_digest, split_message
from .telegram import send_message

logger = logging.getLogger(__name__)

# Timer ticks drift by seconds: a request reminded at 10:00:04 is due again on the 11:00:01 tick.
REPEAT_SLACK = timedelta(seconds=30)

Transport = Callable[[str], bool]


@dataclass
class ReminderReport:
    """What one reminder pass found and did."""

    delayed: int = 0              # delayed requests found in the delay index
    reminded: int = 0             # named in a digest that was accepted (or logged, without Telegram)
    skipped_repeat: int = 0       # delayed, but reminded within OMIS_ALERT_REPEAT_MINUTES (or by a pass beside)
    skipped_off_hours: int = 0    # due, but now is outside working hours
    failed: int = 0               # due, but the message carrying them was not accepted
    sent: bool = False            # Telegram accepted every part of the digest
    text: str = ""                # the digest (empty when there was nothing to remind about)
    entities_read: int = 0        # entities the store returned for the pass
    numbers: list[str] = field(default_factory=list)   # requests named in the digest
    dry_run: bool = False
    log_only: bool = False        # no Telegram settings: the digest went to the log

    @property
    def ok(self) -> bool:
        """Say whether the pass did what it had to (nothing failed to go out)."""
        return self.failed == 0

    def summary(self) -> str:
        """Describe the pass in one Russian line for the operator."""
        parts = [f"Напоминания: просрочено {self.delayed}"]
        if self.dry_run:
            parts.append(f"вошло бы в напоминание {len(self.numbers)} (пробный запуск, ничего не отправлено)")
        elif self.log_only:
            parts.append(f"напомнено {self.reminded} (Telegram не настроен — текст только в журнале)")
        else:
            parts.append(f"напомнено {self.reminded}")
        if self.skipped_repeat:
            parts.append(f"уже напоминали недавно {self.skipped_repeat}")
        if self.skipped_off_hours:
            parts.append(f"отложено до рабочего времени {self.skipped_off_hours}")
        if self.failed:
            parts.append(f"не отправлено {self.failed}")
        return ", ".join(parts) + "."


def working_hours_limit(settings: Settings) -> bool:
    """Say whether reminders are limited to working hours (OMIS_WORK_HOURS or OMIS_HOLIDAYS set)."""
    return settings.work_hours is not None or bool(settings.holidays)


def is_reminder_time(now: datetime, settings: Settings) -> bool:
    """Say whether reminders may go out at this instant (working hours, not a holiday)."""
    if settings.work_hours is not None:
        return settings.calendar.is_working(now)
    return now.astimezone(settings.timezone).date() not in settings.holidays


def recently_reminded(request: Request, now: datetime, repeat_minutes: int) -> bool:
    """Say whether a request was reminded about less than the repeat interval ago."""
    last = request.last_reminded_at
    if last is None:
        return False
    return now - last < timedelta(minutes=repeat_minutes) - REPEAT_SLACK


def _marker(request: Request) -> str:
    """Return the text that names a request's line in the digest (its number in bold)."""
    return f"<b>{html.escape(request.number, quote=False)}</b>"


def _deliver(text: str, due: list[Request], transport: Transport) -> tuple[list[Request], list[Request]]:
    """Send the digest part by part; return the requests whose part was accepted, and the rest."""
    parts = split_message(text)
    accepted: list[Request] = []
    pending = list(due)
    for index, part in enumerate(parts, start=1):
        if not transport(part):
            if len(parts) > 1:
                logger.error("Напоминание: принято частей %d из %d; остальные заявки — на следующем проходе",
                             index - 1, len(parts))
            return accepted, pending
        carried = [r for r in pending if _marker(r) in part]
        if index == len(parts):
            carried = pending   # every line was in some part; nothing is left unaccounted for
        accepted.extend(carried)
        pending = [r for r in pending if r not in carried]
    return accepted, pending


def _release(requests_: list[Request], at: datetime) -> None:
    """Give back the reminders that did not go out, so the next pass sends them."""
    if not requests_:
        return
    try:
        store.release_reminders(requests_, at)
    except store.StoreError as exc:
        # They stay noted: reminded one repeat interval late, never twice.
        logger.error("Не удалось вернуть неотправленные напоминания (%d заявок), они придут через интервал "
                     "повтора: %s", len(requests_), exc)


def notify_delays(minutes: int | None = None, send: bool = True, now: datetime | None = None, *,
                  settings: Settings | None = None, session: requests.Session | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  transport: Transport | None = None) -> ReminderReport:
    """Remind the team once about every delayed request that is due; return what happened.

    `minutes` overrides OMIS_DELAY_MINUTES; `send=False` is a dry run; `transport` replaces
    Telegram (one digest part in, True when accepted), as the scenarios do.
    """
    settings = settings if settings is not None else get_settings()
    now = (now or utcnow()).astimezone(timezone.utc)
    report = ReminderReport(dry_run=not send)
    cutoff = delay_cutoff(now, settings, minutes)
    if cutoff is None:
        logger.info("Напоминания: за последний год нет столько рабочего времени — просроченных нет")
        return report
    delayed = store.get_delayed_requests(cutoff=cutoff)
    report.entities_read = report.delayed = len(delayed)
    due = []
    for request in delayed:
        if recently_reminded(request, now, settings.alert_repeat_minutes):
            report.skipped_repeat += 1
        else:
            due.append(request)
    if not due:
        logger.info("%s", report.summary())
        return report
    if working_hours_limit(settings) and not is_reminder_time(now, settings):
        report.skipped_off_hours = len(due)
        logger.info("%s", report.summary())
        return report

    if send:
        claimed = store.claim_reminders(due, now)   # StorageUnavailable stops the pass: nothing is sent
        if len(claimed) < len(due):
            logger.info("Напоминания: %d заявок уже напоминает другой проход или они изменились",
                        len(due) - len(claimed))
            report.skipped_repeat += len(due) - len(claimed)
            due = claimed
        if not due:
            logger.info("%s", report.summary())
            return report
    items = [(request, quiet_minutes(request, now, settings)) for request in due]
    report.text = build_digest(items, now=now, tz=settings.timezone, public_url=settings.public_url)
    report.numbers = [request.number for request in due]
    if not send:
        logger.info("[ПРОБНЫЙ ЗАПУСК] %s", report.text)
        logger.info("%s", report.summary())
        return report

    if transport is None and not settings.telegram_configured:
        send_message(report.text, settings=settings)   # logs [FAKE TELEGRAM] …
        report.log_only = True
        report.reminded = len(due)
        logger.info("%s", report.summary())
        return report

    own_session = transport is None and session is None
    bot_session = requests.Session() if own_session else session

    def to_telegram(part: str) -> bool:
        return send_message(part, settings=settings, session=bot_session, sleep=sleep)

    rejected = list(due)
    try:
        accepted, rejected = _deliver(report.text, due, transport or to_telegram)
    finally:
        if own_session and bot_session is not None:
            bot_session.close()
        _release(rejected, now)   # also when sending raised: a failed send records nothing
    report.reminded, report.failed = len(accepted), len(rejected)
    report.sent = not rejected
    log = logger.info if report.ok else logger.error
    log("%s", report.summary())
    return report
