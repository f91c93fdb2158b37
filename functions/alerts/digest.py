"""Reminder texts for Telegram: the deadline digest, the escalation digest, and splitting (pure)."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from urllib.parse import quote

from ..deadlines import KINDS
from ..model import normalize_number

TELEGRAM_LIMIT = 4096
COMMENT_PREVIEW = 150


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


# ----- the deadline digest (SPEC §4) ----------------------------------------------------------

GROUP_TITLES = {
    "accept": "Ждём ответа подрядчика",
    "update": "Подрядчик молчит",
    "resolve": "Просрочен срок выполнения",
    "promise": "Подрядчик не сдержал обещание",
    "clarify": "Подрядчик ждёт нас",
}


@dataclass(frozen=True)
class DigestItem:
    """One breached request as a digest names it."""

    number: str
    position: str
    level_title: str
    status: str
    kind: str                    # the deadline kind that passed
    deadline: datetime
    overdue_minutes: float       # in the level's clock
    working_time: bool           # only working time counted (a `work` level with hours or holidays set)
    last_news_at: datetime | None
    comment: str = ""


def format_working(minutes: float) -> str:
    """Show working time in hours and minutes, never days («27 ч 5 мин»): a working day is not 24 h."""
    total = int(minutes) if math.isfinite(minutes) and minutes > 0 else 0
    hours, mins = divmod(total, 60)
    if hours:
        return f"{hours} ч {mins} мин" if mins else f"{hours} ч"
    return f"{mins} мин"


def _local(moment: datetime, tz: tzinfo, now: datetime) -> str:
    local = _as_utc(moment).astimezone(tz)
    if local.year != _as_utc(now).astimezone(tz).year:
        return f"{local:%d.%m.%Y %H:%M}"
    return f"{local:%d.%m %H:%M}"


def _late(item: DigestItem) -> str:
    if item.working_time:
        return f"{format_working(item.overdue_minutes)} рабочего времени"
    return format_quiet(item.overdue_minutes)


def _how_late(item: DigestItem, tz: tzinfo, now: datetime) -> str:
    """Say when the deadline was and how late the request is, in the words of its kind."""
    deadline, late = _local(item.deadline, tz, now), _late(item)
    if item.kind == "accept":
        return f"срок ответа {deadline}, ответ просрочен на {late}"
    if item.kind == "update":
        text = f"молчит {late} сверх срока {deadline}"
        if item.last_news_at is not None:
            text += f", последние новости {_local(item.last_news_at, tz, now)}"
        return text
    if item.kind == "resolve":
        return f"срок выполнения прошёл {deadline}, {late} назад"
    if item.kind == "promise":
        return f"обещано к {deadline}, просрочено на {late}"
    return f"ждёт нашего ответа {late} сверх срока {deadline}"


def format_deadline_line(item: DigestItem, *, now: datetime, tz: tzinfo, public_url: str | None) -> str:
    """Return one breached request's line of a digest, in Telegram HTML."""
    number = f"<b>{_escape(item.number)}</b>"
    if public_url:
        href = html.escape(request_url(public_url, item.number), quote=True)
        number = f'<a href="{href}">{number}</a>'
    parts = [f"• {number}"]
    if item.position.strip():
        parts.append(f"позиция: {_escape(item.position.strip())}")
    parts.append(_escape(item.level_title))
    parts.append(_escape(item.status))
    parts.append(_how_late(item, tz, now))
    comment = " ".join(item.comment.split())
    if comment:
        if len(comment) > COMMENT_PREVIEW:
            comment = comment[:COMMENT_PREVIEW - 1].rstrip() + "…"
        parts.append(f"<i>{_escape(comment)}</i>")
    return " · ".join(parts)


def _grouped_lines(items: list[DigestItem], *, now: datetime, tz: tzinfo, public_url: str | None) -> list[str]:
    unknown = {item.kind for item in items} - set(KINDS)
    if unknown:
        raise ValueError(f"unknown deadline kind(s): {sorted(unknown)}")
    lines: list[str] = []
    for kind in KINDS:
        group = sorted((item for item in items if item.kind == kind),
                       key=lambda item: (_as_utc(item.deadline), normalize_number(item.number)))
        if not group:
            continue
        lines.append("")
        lines.append(f"<b>{GROUP_TITLES[kind]}: {len(group)}</b>")
        lines.extend(format_deadline_line(item, now=now, tz=tz, public_url=public_url) for item in group)
    return lines


def build_deadline_digest(items: list[DigestItem], *, now: datetime, tz: tzinfo, public_url: str | None) -> str:
    """Return one reminder naming every breached request, grouped by the kind of deadline that passed."""
    if not items:
        return ""
    lines = [f"<b>⏰ Просрочено заявок: {len(items)}</b>"]
    lines.extend(_grouped_lines(items, now=now, tz=tz, public_url=public_url))
    return "\n".join(lines)


def build_escalation_digest(items: list[DigestItem], *, now: datetime, tz: tzinfo, public_url: str | None,
                            escalation_minutes: int) -> str:
    """Return the escalation digest: the requests breached for longer than OMIS_ESCALATION_MINUTES."""
    if not items:
        return ""
    lines = [f"<b>🚨 Эскалация: {len(items)}</b>",
             f"Срок прошёл больше {format_working(escalation_minutes)} назад."]
    lines.extend(_grouped_lines(items, now=now, tz=tz, public_url=public_url))
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
