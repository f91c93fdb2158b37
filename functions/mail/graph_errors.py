"""What can go wrong talking to Microsoft Graph, and the saved "not before" instant."""
from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    """Return the current UTC time (the default clock of a client)."""
    return datetime.now(timezone.utc)


class GraphError(Exception):
    """Graph or sign-in failed; the message says what happened, in Russian.

    uncertain: the request may have taken effect although no answer said so (a send whose
    connection broke or that got a 5xx).
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 detail: str = "", uncertain: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail
        self.uncertain = uncertain


class GraphThrottled(GraphError):
    """Graph asked to wait longer than a pass can afford: no call to Graph before `retry_at`."""

    def __init__(self, retry_at: datetime, *, wait: float, zone: Any = timezone.utc, status: int | None = None,
                 code: str | None = None, retry_later: str = "") -> None:
        seconds = max(1, math.ceil(wait))
        local = retry_at.astimezone(zone)
        reason = f"HTTP {status}{' ' + code if code else ''}" if status else "ответ прошлого прохода"
        super().__init__(
            f"Microsoft Graph ограничивает запросы (throttling, {reason}): Graph просит подождать {seconds} с; "
            f"до {local:%d.%m.%Y %H:%M:%S} ({getattr(zone, 'key', 'UTC')}) OMIS к Graph не обращается"
            f"{'; ' + retry_later if retry_later else ''}", status=status, code=code)
        self.retry_at = retry_at
        self.wait = wait


class SyncStateExpired(GraphError):
    """Graph no longer knows a resume link (410 Gone, syncStateNotFound): read the window again."""


def parse_not_before(value: str | None) -> datetime | None:
    """Read a saved "not before" instant (ISO 8601); None for nothing or garbage."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        logger.warning("Ignoring an unreadable Graph not-before value %r", value)
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
