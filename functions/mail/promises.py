"""Promised deadlines in a contractor's sentence (SPEC §3 «Promises»; pure, no I/O).

`find_promise(sentence, received=…, tz=…, calendar=…)` returns the instant (aware, UTC) the
sentence commits the contractor to, or None. Times are read in `tz`, relative to the received
time; "the end of a day" is its 23:59:59 local time.

What a time yields (SPEC §3, and how a dispatcher reads the rest):
- a date («05.12», «5.12.26», «5 дек. 2026 г.», «2026-12-05», «20-го числа»): the end of that
  day, with a time that time; without a year its next occurrence not before the received day
  (received 30.12, «до 05.01» → 05.01 of the next year; «до 24.11» received 25.11 → next year's);
  «до конца месяца/декабря/года» → the end of its last day; «10.30» is a date where it can be
  one, else a time («15.00»);
- a weekday: the end of the next such day after the received day (the same weekday → next
  week's); «следующий понедельник» → the Monday of the next calendar week;
- «сегодня», «завтра», «послезавтра»: the end of that day, or the time given with it, even if
  it has passed; a time alone: that time on the received day, or the next day once it passed;
- «к концу дня» → the end of the received day; «к концу недели», «на этой неделе» → that week's
  Friday (received Saturday or Sunday: the next Friday); «на следующей неделе», «к концу
  следующей недели» → next week's Friday;
- «в течение / через / за N минут, часов, суток, дней, недель» (and «займёт N дней») → received
  + N × 60 s / 1 h / 24 h / 24 h / 7 × 24 h (N in digits, «1,5», «2-3» → 3, «3 (трёх)», or a word:
  «двух», «пары»; «в течение часа/дня/недели» → N = 1); «N рабочих дней» → the end of the N-th
  working day after the received day by `calendar` (a day with working time; without working
  hours, every day not a holiday);
- several times in one sentence: the latest of those that count («приедем завтра, закончим до
  пятницы» → Friday).

A time counts only where the contractor commits to it: after «до», «к», «не позднее», «в
течение», «через» (unless its clause only tells the past: «работали до 18:00»), or in a clause
with a commitment word (a future verb «выполним», «приедем», «будет»; «срок», «ориентировочно»,
«планируем» …); a time alone in its clause («срок выполнения — 10.12») takes the sentence's.
It does not count:
- negated: a «не», «нет», «нельзя» in its clause («до пятницы выполнить не успеем»), or a negated
  commitment elsewhere in the sentence when its own clause has none («до пятницы, к сожалению,
  не успеем»); «не позднее», «не более» are bounds, not negations;
- in a conditional or uncertain sentence («если», «при условии», «в случае», «как только»,
  «когда», «после получения …», «возможно»), in a question, or in a request to us («просим
  предоставить доступ до пятницы» is our deadline, not the contractor's promise);
- as what the contractor waits for: «ждём поставку запчастей до пятницы», «поставка материалов
  ожидается к пятнице»;
- as a start or a lower bound: after «с», «со», «начиная с», «после», «не раньше», «позже»
  («приступить сможем не раньше 05.12» is a deferral, not a deadline);
- as a document's date: after «от» («акт от 24.11», «письмо от 28.11») or «за» («отчёт за 24.11»);
- as working hours: a range of times («с 9:00 до 18:00», «9:00–18:00»);
- as an event-relative duration: «в течение 3 дней после оплаты», «за 2 дня до начала работ».
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from ..workhours import WorkingCalendar
from .timewords import TimeWords, scan_times

DEADLINE_PREPS = frozenset({"до", "к", "ко", "не позднее", "не позже", "в течение", "в течении", "в пределах",
                            "через", "не более", "не дольше"})
START_PREPS = frozenset({"с", "со", "начиная с", "после", "не раньше", "не ранее", "раньше", "позднее", "позже"})
DOCUMENT_PREPS = frozenset({"от", "за"})
_DURATION_PREPS = frozenset({"в течение", "в течении", "в пределах", "через", "за", "не более", "не дольше"})
_DAY_KINDS = frozenset({"date", "rel", "weekday"})
_DAY_PRECISION = ("date", "rel", "weekday")
_END_OF_DAY = time(23, 59, 59)
_MAX_WORKDAY_SEARCH = 3660

_YO = str.maketrans("ёЁ", "еЕ")
_COMMIT_STEMS = (
    "выполн|сдела|законч|заверш|закро|устран|приед|подъед|заед|прибуд|почин|отремонтиру|ремонтиру|замен|установ"
    "|провед|направ|отправ|предостав|подготов|сдад|возьм|восстанов|выед|исправ|реш|додела|подключ|настро|пришл"
    "|вышл|достав|постав|смонтиру|переед|подпиш|согласу|организу|обеспеч|займ|прим|провер|посмотр|разбер|сообщ"
    "|отгруз|пода|уед|съезд|привез|выйд|выезж|приезж|подъезж|ед"
)
_COMMIT_WORD = rf"(?:{_COMMIT_STEMS})(?:ем|им|ет|ит|ут|ют|ят|ат|ете|ите|аем|ает|ают)(?:ся)?"
_COMMIT_RE = re.compile(
    r"(?<!\w)(?:буд(?:ем|ет|ут|у)|быть|должн\w*|план\w*|запланир\w*|срок\w*|ориентировочно|предварительно"
    r"|примерно|ожида(?:ется|ются|ем|йте)|рассчитыва\w*|обеща\w*|обязу\w*|гарантиру\w*|постара\w*|смож\w*|можем"
    r"|успе(?:ем|ет|ют)|выезд\w*|приезд\w*|прибыти\w*|приступ(?:им|ят|ит|аем|ают|ает)|перенес\w*|перенос\w*"
    rf"|{_COMMIT_WORD})(?!\w)",
    re.IGNORECASE,
)
_NEGATION_RE = re.compile(
    r"(?<!\w)(?:не(?!\s+(?:позднее|позже|более|больше|дольше|ранее|раньше)(?!\w))|нет|нельзя|невозможно|никак"
    r"|вряд|ни)(?!\w)",
    re.IGNORECASE,
)
_NEGATED_COMMITMENT_RE = re.compile(
    r"(?<!\w)(?:не\s+(?:[^\W\d_]+\s+)?(?:успе\w*|смож\w*|мож\w*|получ\w*|удаст\w*|удает\w*|буд\w*|справ\w*"
    rf"|выйд\w*|{_COMMIT_WORD})|невозможно|нельзя|нет\s+возможности|никак)(?!\w)",
    re.IGNORECASE,
)
_CONDITION_RE = re.compile(
    r"(?<!\w)(?:если|ежели|в\s+случае|при\s+условии|как\s+только|когда|по\s+мере|в\s+зависимости"
    r"|при\s+(?:наличии|поступлении|получении|согласовании|отсутствии|доступе|возможности|необходимости|готовности"
    r"|подтверждении|оплате|хорош\w+)|по\s+(?:получении|поступлении|согласовании|готовности|факту|возможности)"
    r"|после\s+(?:получени|поступлени|согласовани|оплат|предоставлени|подписани|доступ|доставк|подтвержд|утвержд"
    r"|решени|ответ|выдач|поставк)\w*|возможно|может\s+быть|вероятно|не\s+исключено)(?!\w)",
    re.IGNORECASE,
)
_REQUEST_RE = re.compile(
    r"(?<!\w)(?:прошу|просим|просьба|сообщите|предоставьте|пришлите|направьте|подтвердите|согласуйте|обеспечьте"
    r"|организуйте|подготовьте|ответьте|уточните|(?:ждем|ожидаем)\s+(?:от\s+вас|ваш\w*))(?!\w)",
    re.IGNORECASE,
)
# The time of something the contractor waits for (parts, access, payment) is no promise of theirs.
_WAITING_RE = re.compile(r"(?<!\w)жд(?:ем|ут|у|ать)(?!\w)", re.IGNORECASE)
_EXPECTING_RE = re.compile(r"(?<!\w)ожида\w*", re.IGNORECASE)
_AWAITED_RE = re.compile(r"(?<!\w)(?:поставк|материал|запчаст|комплектующ|оборудовани|оплат|согласовани|доступ|ответ"
                         r"|решени|подтвержд)\w*", re.IGNORECASE)
# Past forms: plural verbs («выполнили»), feminine verbs («выехала»), short participles («выполнена»).
_PAST_RE = re.compile(
    r"(?<!\w)(?:был[аои]?|[^\W\d_]+(?:[аяеиыу]ли|[аяеиы]ла)(?:сь)?|[^\W\d_]{4,}(?:[её]н|ан|ят|ыт)[аоы]?)(?!\w)",
    re.IGNORECASE,
)
_NOT_PAST = frozenset({"недели", "детали", "модели", "панели", "цели", "дали", "материала", "сигнала", "канала",
                       "начала", "персонала", "филиала", "интервала", "правила", "зала"})
_CLAUSE_RE = re.compile(r"[,;:](?=\s|$)|[()\[\]]|\s[-–—]\s|[–—]")
_FILLER_WORDS = frozenset({"около", "примерно", "ориентировочно", "где-то", "уже", "тоже", "также", "именно",
                           "только", "ровно", "точно", "включительно", "чем", "это", "как", "есть", "утром", "днем",
                           "вечером", "обеда", "первой", "второй", "половине", "дня"})
_WORD_RE = re.compile(r"[^\W\d_][\w-]*")
_EVENT_AFTER_RE = re.compile(
    r"\s*(?:до|после|с\s+момента|со\s+дня|с\s+даты|от\s+даты|с\s+получени|по\s+получени|по\s+поступлени"
    r"|с\s+поступлени|с\s+оплат|с\s+подписани)(?!\w)",
    re.IGNORECASE,
)
_RANGE_AFTER_RE = re.compile(r"\s*[-–—]\s*\d")
_RANGE_BEFORE_RE = re.compile(r"(?:(?<!\w)(?:с|со|от)\s+\d{1,2}(?:[:.\-]\d{2})?\s*(?:час\w*|ч\.?)?\s*(?:[-–—]|до|по)"
                              r"|\d{1,2}[:.]\d{2}\s*[-–—])\s*\Z", re.IGNORECASE)
_JOIN_RE = re.compile(r"[\s,]*(?:(?:к|ко|в|во|до|около|не\s+позднее|не\s+позже|примерно|ориентировочно|утром"
                      r"|днем|вечером)(?!\w)[\s,]*)*\Z", re.IGNORECASE)


class _Sentence:
    """One sentence being read: its clauses, and what each clause says, computed once each."""

    def __init__(self, text: str, items: list[TimeWords]) -> None:
        self.text = text
        self.cuts = [(m.start(), m.end()) for m in _CLAUSE_RE.finditer(text)]
        # The words around the times, with the times blanked out («недели» is no past verb).
        chars = list(text)
        for item in items:
            chars[item.start : item.end] = " " * (item.end - item.start)
        self.words = "".join(chars)
        self.negated_elsewhere = _NEGATED_COMMITMENT_RE.search(text) is not None
        self._committing: bool | None = None
        self._clauses: dict[tuple[int, int], tuple[bool, bool, bool, bool]] = {}

    def committing(self) -> bool:
        """Tell whether any clause of the sentence has a commitment word."""
        if self._committing is None:
            self._committing = _COMMIT_RE.search(self.text) is not None
        return self._committing

    def clause(self, start: int, end: int) -> tuple[bool, bool, bool, bool]:
        """Return (negated or waiting, committing, past, only filler) for the clause around text[start:end]."""
        at = bisect_right(self.cuts, (start, len(self.text)))
        lo = self.cuts[at - 1][1] if at else 0
        while at < len(self.cuts) and self.cuts[at][0] < end:
            at += 1  # a cut inside the expression («3 (трёх) дня») does not end its clause
        hi = self.cuts[at][0] if at < len(self.cuts) else len(self.text)
        if (lo, hi) not in self._clauses:
            words = self.words[lo:hi]
            waiting = _WAITING_RE.search(words) is not None or (
                _EXPECTING_RE.search(words) is not None and _AWAITED_RE.search(words) is not None)
            self._clauses[(lo, hi)] = (
                waiting or _NEGATION_RE.search(words) is not None,
                _COMMIT_RE.search(words) is not None,
                any(m.group().lower() not in _NOT_PAST for m in _PAST_RE.finditer(words)),
                all(len(w) < 3 or w.lower() in _FILLER_WORDS for w in _WORD_RE.findall(words)),
            )
        return self._clauses[(lo, hi)]


def _drop_ranges(text: str, items: list[TimeWords]) -> list[TimeWords]:
    """Drop times that are ranges of working hours («с 9:00 до 18:00», «9:00–18:00»)."""
    kept = []
    for item in items:
        if item.kind == "time" and (_RANGE_AFTER_RE.match(text, item.end)
                                    or _RANGE_BEFORE_RE.search(text[max(0, item.start - 40) : item.start])):
            continue
        kept.append(item)
    return kept


def _joined(text: str, first: TimeWords, second: TimeWords) -> bool:
    """Tell whether two expressions are written as one («05.12 к 15:00», «в четверг, 26.11»)."""
    if second.prep in START_PREPS or second.prep in DOCUMENT_PREPS:
        return False
    return _JOIN_RE.match(text[first.end : second.start]) is not None


def _merge(text: str, items: list[TimeWords]) -> list[tuple[TimeWords, TimeWords | None]]:
    """Read a day named twice as one, and pair each day with the time of day written next to it."""
    days: list[TimeWords] = []
    for item in items:
        last = days[-1] if days else None
        if last is not None and {last.kind, item.kind} <= _DAY_KINDS and last.kind != item.kind \
                and _joined(text, last, item):
            exact = min((last, item), key=lambda d: _DAY_PRECISION.index(d.kind))  # «в четверг, 26.11» → 26.11
            days[-1] = replace(exact, start=last.start, end=item.end, prep=last.prep or item.prep)
        else:
            days.append(item)
    pairs: list[tuple[TimeWords, TimeWords | None]] = []
    at = 0
    while at < len(days):
        item, nxt = days[at], days[at + 1] if at + 1 < len(days) else None
        if nxt is not None and {item.kind, nxt.kind} <= _DAY_KINDS | {"time"} \
                and (item.kind == "time") != (nxt.kind == "time") and _joined(text, item, nxt):
            day, clock = (nxt, item) if item.kind == "time" else (item, nxt)
            # The outer preposition governs: «до 10:00 05.12» is a deadline, «от 24.11 10:00» a document.
            pairs.append((replace(day, start=item.start, end=nxt.end, prep=item.prep or nxt.prep), clock))
            at += 2
        else:
            pairs.append((item, None))
            at += 1
    return pairs


def _next_date(month: int, day: int, year: int | None, today: date) -> date | None:
    """Return the date, or without a year its next occurrence not before today; None if no such date."""
    if month == 0:  # «до 10 числа»: this month's, or once it has passed, the next month's that has it
        for ahead in range(3):
            year, month = today.year + (today.month + ahead - 1) // 12, (today.month + ahead - 1) % 12 + 1
            try:
                candidate = date(year, month, day)
            except ValueError:
                continue
            if candidate >= today:
                return candidate
        return None
    if year is not None:
        try:
            return date(year, month, day)
        except ValueError:
            return None
    for candidate_year in range(today.year, today.year + 9):  # 29.02 comes back within 8 years
        try:
            candidate = date(candidate_year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


def _friday(today: date, following: bool) -> date:
    """Return the Friday of this week (Saturday, Sunday: the next one) or of the next calendar week."""
    monday = today - timedelta(days=today.weekday())
    if following or today.weekday() > 4:
        monday += timedelta(days=7)
    return monday + timedelta(days=4)


def _day(item: TimeWords, today: date) -> date | None:
    """Return the local day a day-like expression names."""
    if item.kind == "date":
        return _next_date(item.month, item.day, item.year, today)
    if item.kind in ("rel", "eod"):
        return today + timedelta(days=item.day)
    if item.kind == "weekday":
        if item.following:
            return today - timedelta(days=today.weekday()) + timedelta(days=7 + item.day)
        return today + timedelta(days=(item.day - today.weekday()) % 7 or 7)
    if item.kind == "eow":
        return _friday(today, item.following)
    if item.kind == "eom":
        if item.month:  # «до конца декабря»: that month, this year or, once it is over, the next
            year, month = today.year + (item.month < today.month), item.month
        else:
            year, month = today.year + (today.month + item.following > 12), (today.month + item.following - 1) % 12 + 1
        return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    if item.kind == "eoy":
        return date(today.year, 12, 31)
    return None


def _clock(item: TimeWords) -> time:
    return _END_OF_DAY if item.hour == 24 else time(item.hour, item.minute)


def _working_day_end(today: date, count: int, calendar: WorkingCalendar) -> date | None:
    """Return the count-th working day after today by the calendar, or None if none comes within ten years."""
    day = today
    for _ in range(_MAX_WORKDAY_SEARCH):
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            count -= 1
            if count <= 0:
                return day
    return None


def _instant(item: TimeWords, clock: TimeWords | None, received: datetime, tz: tzinfo,
             calendar: WorkingCalendar) -> datetime | None:
    """Return the local instant an expression names for a mail received at `received`."""
    local = received.astimezone(tz)
    today = local.date()
    if item.kind == "duration":
        if item.amount <= 0:
            return None
        if item.unit == "workdays":
            day = _working_day_end(today, int(-(-item.amount // 1)), calendar)
            return None if day is None else datetime.combine(day, _END_OF_DAY, tz)
        hours = {"minutes": 1 / 60, "hours": 1, "days": 24, "weeks": 7 * 24}[item.unit]
        return (received + timedelta(hours=item.amount * hours)).astimezone(tz)
    if item.kind == "time":
        moment = datetime.combine(today, _clock(item), tz)
        return moment if moment >= local else datetime.combine(today + timedelta(days=1), _clock(item), tz)
    day = _day(item, today)
    if day is None:
        return None
    return datetime.combine(day, _clock(clock) if clock is not None else _END_OF_DAY, tz)


def _counts(sentence: _Sentence, item: TimeWords, clock: TimeWords | None) -> bool:
    """Tell whether the contractor commits to this time in this sentence."""
    text = sentence.text
    if item.prep in START_PREPS or (item.prep in DOCUMENT_PREPS and (item.kind != "duration" or item.prep == "от")):
        return False
    if (item.short_form or (clock is not None and clock.short_form and not clock.prep)) and not item.prep:
        return False
    if item.kind == "duration" and (_EVENT_AFTER_RE.match(text, item.end)
                                    or (item.short_form and item.prep not in _DURATION_PREPS)):
        return False
    negated, own, past, only_filler = sentence.clause(item.start, item.end)
    if negated or (sentence.negated_elsewhere and not own):
        return False
    if item.prep in DEADLINE_PREPS or (clock is not None and clock.prep in DEADLINE_PREPS):
        return own or not past
    return own or (only_filler and sentence.committing())


def find_promise(sentence: str, *, received: datetime, tz: tzinfo, calendar: WorkingCalendar) -> datetime | None:
    """Return the promised instant (aware, UTC) a sentence commits the contractor to, or None."""
    text = (sentence or "").translate(_YO)
    items = scan_times(text)
    if not items:
        return None
    if text.rstrip().endswith("?") or _CONDITION_RE.search(text) or _REQUEST_RE.search(text):
        return None
    if received.tzinfo is None:
        received = received.replace(tzinfo=timezone.utc)  # Graph gives UTC
    reading = _Sentence(text, items)
    best: datetime | None = None
    for item, clock in _merge(text, _drop_ranges(text, items)):
        if not _counts(reading, item, clock):
            continue
        moment = _instant(item, clock, received, tz, calendar)
        if moment is not None and (best is None or moment > best):
            best = moment
    return None if best is None else best.astimezone(timezone.utc)


def names_time(text: str) -> bool:
    """Tell whether a text names a point or span of time (not a document's date): a bound on a refusal."""
    return any(item.prep not in DOCUMENT_PREPS and not (item.short_form and not item.prep)
               for item in scan_times((text or "").translate(_YO)))
