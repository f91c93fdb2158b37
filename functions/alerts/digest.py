"""Reminder texts for Telegram: one line per delayed request, a digest, and splitting (pure)."""
from __future__ import annotations

import html
import math
from datetime import datetime, timezone, tzinfo
from urllib.parse import quote

from ..model import STATUS_CLARIFY, Request, normalize_number

TELEGRAM_LIMIT = 4096
COMMENT_PREVIEW = 150

# Calendar and counted quiet time differ by more than this when only working hours count.
_WORKING_TIME_SLACK_MINUTES = 1.0


def format_quiet(minutes: float) -> str:
    """Show a duration in minutes the short Russian way: «45 мин», «3 ч 20 мин», «2 дн 4 ч»."""
    total = int(minutes) if math.isfinite(minutes) and minutes > 0 else 0
    days, rest = divmod(total, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} дн {hours} ч" if hours else f"{days} дн"
    if hours:
        return f"{hours} ч {mins} мин" if mins else f"{hours} ч"
    return f"{mins} мин"


def request_url(public_url: str, number: str) -> str:
    """Return the address of a request's page under the public base URL."""
    return f"{public_url.rstrip('/')}/requests/{quote(number, safe='')}"


def _escape(value: str) -> str:
    return html.escape(value, quote=False)


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _format_delay_message(request: Request, *, now: datetime, quiet_minutes: float, tz: tzinfo,
                          public_url: str | None) -> str:
    """Return one delayed request's line of a reminder, in Telegram HTML."""
    number = f"<b>{_escape(request.number)}</b>"
    if public_url:
        href = html.escape(request_url(public_url, request.number), quote=True)
        number = f'<a href="{href}">{number}</a>'
    parts = [f"• {number}"]
    if request.position.strip():
        parts.append(f"позиция: {_escape(request.position.strip())}")
    changed = _as_utc(request.status_updated_at)
    parts.append(f"{_escape(request.status)} с {changed.astimezone(tz):%d.%m.%Y %H:%M}")
    quiet = f"без ответа {format_quiet(quiet_minutes)}"
    calendar_minutes = (_as_utc(now) - changed).total_seconds() / 60
    if calendar_minutes - quiet_minutes > _WORKING_TIME_SLACK_MINUTES:
        # Only working hours counted: say so, or «2 ч» next to yesterday's date looks wrong.
        quiet += " рабочего времени"
    parts.append(quiet)
    comment = " ".join(request.comment.split())
    if comment:
        if len(comment) > COMMENT_PREVIEW:
            comment = comment[:COMMENT_PREVIEW - 1].rstrip() + "…"
        parts.append(f"<i>{_escape(comment)}</i>")
    return " · ".join(parts)


def build_digest(items: list[tuple[Request, float]], *, now: datetime, tz: tzinfo,
                 public_url: str | None) -> str:
    """Return one reminder naming every delayed request, those awaiting our clarification apart."""
    if not items:
        return ""

    def oldest_first(item: tuple[Request, float]) -> tuple[datetime, str]:
        return _as_utc(item[0].status_updated_at), normalize_number(item[0].number)

    ordered = sorted(items, key=oldest_first)
    waiting_for_contractor = [item for item in ordered if item[0].status != STATUS_CLARIFY]
    waiting_for_us = [item for item in ordered if item[0].status == STATUS_CLARIFY]

    def line(item: tuple[Request, float]) -> str:
        return _format_delay_message(item[0], now=now, quiet_minutes=item[1], tz=tz, public_url=public_url)

    lines = [f"<b>⏰ Заявки без ответа: {len(items)}</b>"]
    lines.extend(line(item) for item in waiting_for_contractor)
    if waiting_for_us:
        lines.append("")
        lines.append(f"<b>Ждут нашего уточнения: {len(waiting_for_us)}</b> (подрядчик ждёт ответа от нас)")
        lines.extend(line(item) for item in waiting_for_us)
    return "\n".join(lines)


def telegram_length(text: str) -> int:
    """Count a text the way Telegram limits it: in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _cut_index(line: str, limit: int) -> int:
    """Return where to cut an overlong line: within the limit, not inside a tag or an entity."""
    used = 0
    cut = 0
    for index, char in enumerate(line):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            break
        cut = index + 1
    chunk = line[:cut]
    space = chunk.rfind(" ")
    if space >= cut // 2:
        cut = space + 1
        chunk = line[:cut]
    tag = chunk.rfind("<")
    if tag > 0 and chunk.rfind(">") < tag:
        cut = tag
        chunk = line[:cut]
    entity = chunk.rfind("&")
    if entity > 0 and chunk.rfind(";") < entity:
        cut = entity
    return max(cut, 1)


def _hard_split(line: str, limit: int) -> list[str]:
    pieces = []
    while telegram_length(line) > limit:
        cut = _cut_index(line, limit)
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split a text into Telegram messages of at most `limit` units, at line boundaries where possible."""
    if limit < 16:
        raise ValueError("limit must be at least 16")
    if telegram_length(text) <= limit:
        return [text] if text.strip() else []
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        for piece in _hard_split(line, limit):
            cost = telegram_length(piece) + (1 if current else 0)
            if current and size + cost > limit:
                parts.append("\n".join(current))
                current, size, cost = [], 0, telegram_length(piece)
            current.append(piece)
            size += cost
    if current:
        parts.append("\n".join(current))
    return [part.strip("\n") for part in parts if part.strip()]
