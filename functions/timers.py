"""The timers: read contractor mail, remind about quiet requests (schedules are settings)."""
from __future__ import annotations

import logging

import azure.functions as func

logger = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.timer_trigger(schedule="%OMIS_MAIL_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def mail_sync(timer: func.TimerRequest) -> None:
    """Read new contractor mail and update the requests it names; then send the outbox."""
    from .mail.outbox import scheduled_send
    from .mail.sync import scheduled_mail_pass

    if timer.past_due:
        logger.info("mail_sync is past due: running now")
    try:
        scheduled_mail_pass()
    finally:
        scheduled_send()   # mail OMIS writes goes out even when reading failed


@bp.timer_trigger(schedule="%OMIS_ALERT_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def delay_alerts(timer: func.TimerRequest) -> None:
    """Remind the team in Telegram about requests that have gone quiet."""
    from .alerts.remind import notify

    notify()
