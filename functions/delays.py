"""When a request counts as delayed, and for how long it has been quiet (pure)."""
from __future__ import annotations

from datetime import datetime

from .model import Request
from .settings import Settings


def quiet_minutes(request: Request, now: datetime, settings: Settings) -> float:
    """Return the (working) minutes since the request's status last changed."""
    return settings.calendar.working_minutes(request.status_updated_at, now)


def is_delayed(request: Request, now: datetime, settings: Settings) -> bool:
    """Say whether a request is delayed: not final and quiet for longer than the threshold."""
    return not request.is_final and quiet_minutes(request, now, settings) > settings.delay_minutes


def delay_cutoff(now: datetime, settings: Settings, minutes: int | None = None) -> datetime | None:
    """Return the instant before which a status change makes a request delayed (None: none can be)."""
    return settings.calendar.cutoff(now, settings.delay_minutes if minutes is None else minutes)
