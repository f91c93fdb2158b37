"""The bot's answers in Russian, in Telegram HTML (pure): /help, /status, /delayed and snooze notes."""
from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, tzinfo

from ..deadlines import deadline_state, facts_of, overdue_minutes
from ..model import Request, normalize_number
from ..settings import Settings
from .digest import DigestItem, build_deadline_digest, format_quiet, format_working, request_url

WEEKDAYS = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")
HISTORY_SHOWN = 3
COMMENT_PREVIEW = 150
KIND_WORDS = {"accept": "ответ подрядчика", "update": "новости от подрядчика", "resolve": "выполнение",
              "promise": "обещанный срок", "clarify": "наше уточнение"}
SOURCE_WORDS = {"web": "веб", "api": "API", "mail": "письмо", "outbox": "письмо подрядчику",
                "telegram": "Telegram", "import": "импорт"}


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def when(moment: datetime, tz: tzinfo, now: datetime) -> str:
    """Show an instant short: «пт 27.11 09:00», with the year when it is not this year's."""
    local, this_year = moment.astimezone(tz), now.astimezone(tz).year
    date = f"{local:%d.%m}" if local.year == this_year else f"{local:%d.%m.%Y}"
    return f"{WEEKDAYS[local.weekday()]} {date} {local:%H:%M}"


def help_text(bot_username: str | None = None) -> str:
    """Return the answer to /help."""
    mention = f" (в группе можно и /status@{_e(bot_username)} …)" if bot_username else ""
    return "\n".join([
        "<b>OMIS — команды</b>",
        "/delayed — просроченные заявки сейчас",
        "/status НОМЕР — заявка: статус, срок и три последних изменения",
        f"/snooze НОМЕР 1h|4h|1d|завтра — не напоминать о заявке до этого времени{mention}",
        "/help — эта справка",
        "",
        ("Под сводкой о просроченных заявках есть кнопки «Отложить все на 1 ч» и «Отложить все до завтра»: "
         "«завтра» — начало следующего рабочего дня."),
    ])


def usage_text(command: str) -> str:
    """Return the answer to a command typed without what it needs."""
    if command == "status":
        return "Укажите номер заявки: /status НОМЕР"
    return "Укажите номер и срок: /snooze НОМЕР 1h|4h|1d|завтра"


def not_found_text(number: str) -> str:
    """Return the answer about a number no request has (nor had)."""
    return f"Заявка «{_e(number)}» не найдена."


def _number(request: Request, public_url: str | None) -> str:
    number = f"<b>{_e(request.number)}</b>"
    if public_url:
        number = f'<a href="{html.escape(request_url(public_url, request.number), quote=True)}">{number}</a>'
    return number


def _deadline_line(request: Request, settings: Settings, now: datetime) -> str:
    if request.archived:
        return "Заявка в архиве: напоминаний о ней нет."
    level = settings.level(request.level)
    state = deadline_state(facts_of(request), level, settings.calendar)
    if state.deadline is None or state.kind is None:
        return "Срок: нет — заявка закрыта." if request.is_final else "Срок: нет."
    at = when(state.deadline, settings.timezone, now)
    if not state.breached(now):
        left = (state.deadline - now).total_seconds() / 60
        return f"Срок: {KIND_WORDS[state.kind]} до {at} (через {format_quiet(max(left, 1))})."
    late = overdue_minutes(state, now, level, settings.calendar)
    working = level.clock == "work" and (settings.work_hours is not None or bool(settings.holidays))
    late_text = f"{format_working(late)} рабочего времени" if working else format_quiet(late)
    return f"Срок: {KIND_WORDS[state.kind]} до {at} — <b>просрочено на {late_text}</b>."


def _history_line(entry_at: datetime, author: str, source: str, status: str, comment: str, tz: tzinfo,
                  now: datetime) -> str:
    text = " ".join(comment.split())
    if len(text) > COMMENT_PREVIEW:
        text = text[:COMMENT_PREVIEW - 1].rstrip() + "…"
    where = SOURCE_WORDS.get(source, source)
    line = f"• {when(entry_at, tz, now)} · {_e(author or '—')} ({_e(where)}) · {_e(status)}"
    return f"{line} · <i>{_e(text)}</i>" if text else line


def status_text(request: Request, asked: str, settings: Settings, now: datetime) -> str:
    """Return the answer to /status: the request, its deadline and its last three changes."""
    tz = settings.timezone
    head = _number(request, settings.public_url)
    if normalize_number(asked) != normalize_number(request.number):
        head += f" (прежний номер «{_e(asked)}»)"
    lines = [head]
    if request.position.strip():
        lines.append(f"Позиция: {_e(request.position.strip())}")
    lines.append(f"Уровень: {_e(settings.level(request.level).title)} · Статус: {_e(request.status)} "
                 f"(с {when(request.status_updated_at, tz, now)})")
    lines.append(_deadline_line(request, settings, now))
    if request.snoozed_until is not None and request.snoozed_until > now:
        lines.append(f"Напоминания отложены до {when(request.snoozed_until, tz, now)}.")
    recent = list(request.history)[-HISTORY_SHOWN:]
    if recent:
        lines.append("")
        lines.append("<b>Последние изменения</b>")
        lines.extend(_history_line(e.at, e.author, e.source, e.status, e.comment, tz, now) for e in recent)
    return "\n".join(lines)


def delayed_text(items: Sequence[DigestItem], snoozed: Sequence[tuple[str, datetime]], settings: Settings,
                 now: datetime) -> str:
    """Return the answer to /delayed: every breached request now, in the digest's words."""
    if not items:
        return "✅ Просроченных заявок нет."
    text = build_deadline_digest(list(items), now=now, tz=settings.timezone, public_url=settings.public_url)
    if snoozed:
        names = "; ".join(f"{_e(number)} — до {when(until, settings.timezone, now)}" for number, until in snoozed)
        text += f"\n\n⏸ Напоминания отложены: {names}"
    return text


def snoozed_reply(number: str, until: datetime, tz: tzinfo, now: datetime) -> str:
    """Return the answer to a /snooze that took effect."""
    return f"⏸ {_e(number)}: напоминаний не будет до {when(until, tz, now)}."


def snooze_note(until: datetime, tz: tzinfo) -> str:
    """Return how a snooze from Telegram reads in a request's history."""
    return f"Напоминания отложены до {until.astimezone(tz):%d.%m.%Y %H:%M} (Telegram)."


def digest_snooze_line(until: datetime, by: str, count: int, tz: tzinfo, now: datetime) -> str:
    """Return the line a digest's message gets when its buttons snoozed its requests."""
    return f"⏸ {_e(by)} отложил(а) напоминания до {when(until, tz, now)} (заявок: {count})."
