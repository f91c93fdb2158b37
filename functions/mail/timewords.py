"""Time expressions in Russian contractor mail: where they are and what they name (pure, no I/O).

`scan_times(text)` finds dates, weekdays, «сегодня/завтра», times of day, week/month periods and
durations, each with the preposition before it («до», «к», «с», «от», «в течение» …). It only reads
the words; whether an expression is a promise, and which instant it means, is `promises.py`'s call.
Texts are expected with «ё» already read as «е».
"""
from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER_WORDS: dict[str, int] = {
    "одного": 1, "одной": 1, "одних": 1, "один": 1, "одну": 1, "одни": 1, "пары": 2, "пару": 2, "двух": 2,
    "два": 2, "две": 2, "трех": 3, "три": 3, "четырех": 4, "четыре": 4, "пяти": 5, "пять": 5, "шести": 6,
    "шесть": 6, "семи": 7, "семь": 7, "восьми": 8, "восемь": 8, "девяти": 9, "девять": 9, "десяти": 10,
    "десять": 10, "двенадцати": 12, "четырнадцати": 14, "пятнадцати": 15, "двадцати": 20, "тридцати": 30,
}
_NUMWORD = "(?:" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")(?!\w)"
MONTH_STEMS = ("янв", "фев", "мар", "апр", "ма", "июн", "июл", "авг", "сен", "окт", "ноя", "дек")
_MONTH = (
    r"(?:январ[яеь]|янв|феврал[яеь]|февр?|март[аеу]?|мар|апрел[яеь]|апр|ма[яйе]|июн[яеь]|июн|июл[яеь]|июл"
    r"|август[аеу]?|авг|сентябр[яеь]|сент?|октябр[яеь]|окт|ноябр[яеь]|нояб?|декабр[яеь]|дек)(?!\w)\.?"
)
WEEKDAY_STEMS = ("пон", "вто", "сре", "чет", "пят", "суб", "вос")
WEEKDAY_SHORT = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")
_END = r"кон(?:ец|ца|цу|це|цом)"
_UNITS = (r"минут\w*|мин(?!\w)\.?|получаса|час(?:а|ов|ам|у)?(?!\w)|ч(?!\w)\.?|сут(?:ок|ки)(?!\w)"
          r"|дн(?:я|ей|ям)(?!\w)|день(?!\w)|недел[иьяюе]\w*")

# One pass over the sentence; the branches are tried in this order at each place. The head lets the
# engine skip, cheaply, every place where no branch can start: inside words and before other letters.
_TIME_RE = re.compile(
    r"(?:(?<!\w)|(?<=[^\W\d_])(?=\d))(?=[\dрмпчсднкиэтбзвош])(?:"
    r"(?<![\d.,:/])(?P<iy>\d{4})-(?P<im>\d{2})-(?P<id>\d{2})(?!\d)"
    r"|(?<![\d.,:/])(?P<n1>\d{1,2})(?P<sep>[.:\-])(?P<n2>\d{1,2})(?:\.(?P<n3>\d{4}|\d{2}))?"
    r"(?!\d|[.:\-/]\d|,\d|\s*(?:час|ч(?!\w)|мин|дн|сут|недел|рабоч))(?:\s*г(?:ода?(?!\w)|\.|(?!\w)))?"
    rf"|(?<![\d.,:/])(?P<dd>\d{{1,2}})(?:-?(?:го|ого|е|ое|му|ому)(?!\w))?\s*(?P<mon>{_MONTH})"
    r"(?:\s*(?P<dy>\d{4})(?!\d)(?:\s*(?:г(?:ода?)?(?!\w)\.?))?)?"
    r"|(?<![\d.,:/])(?P<cd>\d{1,2})(?:-?(?:го|ого|е|ое|му|ому)(?!\w))?\s*числ(?:а|у|о)(?!\w)"
    rf"|(?<![\d.,:/])(?P<dn>\d{{1,3}}(?:[.,]\d)?(?:\s*[-–—]\s*\d{{1,3}})?|(?<!\w){_NUMWORD}(?:\s*[-–—]\s*{_NUMWORD})?)"
    rf"(?:-?х(?!\w))?(?:\s*\(\s*[^\W\d_]+(?:\s*[-–—]\s*[^\W\d_]+)?\s*\))?\s*(?P<dwork>рабоч\w*|раб\.)?\s*(?P<dunit>{_UNITS})"
    r"(?:\s+(?P<dpart>утра|дня|вечера|ночи)(?!\w))?"
    rf"|(?<!\w)(?P<dwork0>рабоч\w*\s+)?(?P<dunit0>{_UNITS})"
    r"|(?<![\d.,:/])(?P<hp>\d{1,2})\s+(?P<hpart>утра|вечера|ночи)(?!\w)"
    rf"|(?<!\w)(?P<eow>(?:{_END}|исход[ауе])\s+(?:(?P<eowmod>следующ\w*|будущ\w*|эт\w*|текущ\w*)\s+)?"
    r"(?:рабоч\w*\s+)?недели)(?!\w)"
    r"|(?<!\w)(?P<week>(?P<weekmod>следующ\w*|будущ\w*|эт\w*|текущ\w*)\s+неделе)(?!\w)"
    rf"|(?<!\w)(?P<eod>{_END}\s+(?:(?P<eodmod>эт\w*|текущ\w*|сегодняшн\w*|завтрашн\w*)\s+)?(?:рабоч\w*\s+)?дня)(?!\w)"
    rf"|(?<!\w)(?P<eom>{_END}\s+(?:(?P<eommod>эт\w*|текущ\w*|следующ\w*)\s+)?месяца)(?!\w)"
    rf"|(?<!\w)(?P<eomname>{_END}\s+(?P<mon2>{_MONTH}))"
    rf"|(?<!\w)(?P<eoy>{_END}\s+(?:эт\w*\s+|текущ\w*\s+)?года)(?!\w)"
    r"|(?<!\w)(?P<rel>сегодня(?:шн\w*)?|послезавтра|завтра(?:шн\w*)?)(?!\w)"
    r"|(?<!\w)(?:(?P<wmod>следующ\w*|будущ\w*|ближайш\w*)\s+)?(?P<wd>понедельник\w*|вторник\w*"
    r"|сред(?:а|ы|у|е|ой)|четверг\w*|пятниц\w*|суббот\w*|воскресень\w*|пн|вт|ср|чт|пт|сб|вс)(?!\w))",
    re.IGNORECASE,
)
_PREP_RE = re.compile(
    r"(?<!\w)(не\s+позднее|не\s+позже|не\s+раньше|не\s+ранее|не\s+более|не\s+дольше|начиная\s+с|в\s+течени[еи]"
    r"|в\s+пределах|через|раньше|позднее|позже|после|около|ко|до|к|во|в|на|по|со|с|от|за)\s*(?:,?\s*чем\s+)?\Z",
    re.IGNORECASE,
)
_PREP_WINDOW = 24
# After these an hour count is a time of day («к 10 часам»); after «в течение», «через», «за» a duration.
CLOCK_PREPS = frozenset({"к", "ко", "до", "в", "во", "около", "не позднее", "не позже", "по"})


@dataclass
class TimeWords:
    """One time expression: its kind, place, the preposition before it and what it names."""

    kind: str  # date, time, rel, weekday, eod, eow, week, eom, eoy, duration
    start: int
    end: int
    prep: str  # lower-case, single-spaced; "" when none
    year: int | None = None
    month: int = 0
    # date: day of month (with month 0, «10 числа»: of this month or the next);
    # rel, eod: days after the received day; weekday: 0 = Monday
    day: int = 0
    hour: int = 0
    minute: int = 0
    amount: float = 0.0  # duration
    unit: str = ""  # duration: minutes, hours, days, weeks, workdays
    following: bool = False  # «следующий понедельник», «следующая неделя», «следующий месяц»
    short_form: bool = False  # «пн», «15-00», «дня»: read only after a preposition


def month_number(word: str) -> int:
    """Return 1–12 for a month name or abbreviation («декабря», «дек.»)."""
    word = word.lower()
    if word.startswith("мар"):
        return 3
    return next(i for i, stem in enumerate(MONTH_STEMS, 1) if word.startswith(stem))


def _amount(text: str) -> float | None:
    """Read «3», «2,5», «2-3» (the upper bound), «трех», «двух-трех» as a number."""
    text = text.lower().replace(",", ".")
    last = re.split(r"\s*[-–—]\s*", text)[-1]
    if last in NUMBER_WORDS:
        return float(NUMBER_WORDS[last])
    try:
        return float(last)
    except ValueError:
        return None


def _unit(word: str, working: bool) -> str:
    word = word.lower()
    if word.startswith("мин"):
        return "minutes"
    if word.startswith(("ч", "получас")):
        return "hours"
    if word.startswith("недел"):
        return "weeks"
    return "workdays" if working else "days"


def _clock(at: tuple[int, int], prep: str, hour: int, part: str | None) -> TimeWords | None:
    """Return the time of day «N часов [утра|дня|вечера|ночи]» names, or None past 24."""
    part = (part or "").lower()
    if (part == "дня" and 1 <= hour <= 6) or (part == "вечера" and hour < 12):
        hour += 12
    elif part == "ночи" and hour == 12:
        hour = 0
    return TimeWords("time", *at, prep, hour=hour) if hour <= 24 else None


def _item(m: re.Match[str], prep: str) -> TimeWords | None:
    """Turn one match of _TIME_RE into a TimeWords, or None when the numbers cannot be a date or time."""
    g = m.groupdict()
    at = (m.start(), m.end())
    if g["iy"]:
        return TimeWords("date", *at, prep, year=int(g["iy"]), month=int(g["im"]), day=int(g["id"]))
    if g["n1"]:
        a, b, sep, y = int(g["n1"]), int(g["n2"]), g["sep"], g["n3"]
        if sep == "." and 1 <= a <= 31 and 1 <= b <= 12:
            year = None if y is None else int(y) + (2000 if len(y) == 2 else 0)
            return TimeWords("date", *at, prep, year=year, month=b, day=a)
        if y is None and len(g["n2"]) == 2 and b <= 59 and (a <= 23 or (a == 24 and b == 0)):
            return TimeWords("time", *at, prep, hour=a, minute=b, short_form=sep == "-")
        return None
    if g["dd"]:
        year = int(g["dy"]) if g["dy"] else None
        return TimeWords("date", *at, prep, year=year, month=month_number(g["mon"]), day=int(g["dd"]))
    if g["cd"]:  # «к 10 числу»: a day of a month to come (month 0)
        return TimeWords("date", *at, prep, day=int(g["cd"])) if 1 <= int(g["cd"]) <= 31 else None
    if g["dunit"] or g["dunit0"]:
        amount = _amount(g["dn"]) if g["dn"] else 0.5 if (g["dunit0"] or "").lower() == "получаса" else 1.0
        unit = _unit(g["dunit"] or g["dunit0"], bool(g["dwork"] or g["dwork0"]))
        if unit == "hours" and g["dn"] and prep in CLOCK_PREPS and amount is not None and amount.is_integer():
            return _clock(at, prep, int(amount), g["dpart"])  # «к 10 часам», «в 3 часа дня»
        return TimeWords("duration", *at, prep, amount=amount or 0.0, unit=unit, short_form=not g["dn"])
    if g["hp"]:
        return _clock(at, prep, int(g["hp"]), g["hpart"])
    if g["eow"] or g["week"]:
        mod = (g["eowmod"] or g["weekmod"] or "").lower()
        return TimeWords("eow", *at, prep, following=mod.startswith(("след", "буд")))
    if g["eod"]:
        return TimeWords("eod", *at, prep, day=1 if (g["eodmod"] or "").lower().startswith("завтр") else 0)
    if g["eom"]:
        return TimeWords("eom", *at, prep, following=(g["eommod"] or "").lower().startswith("след"))
    if g["eomname"]:
        return TimeWords("eom", *at, prep, month=month_number(g["mon2"]))
    if g["eoy"]:
        return TimeWords("eoy", *at, prep)
    if g["rel"]:
        word = g["rel"].lower()
        return TimeWords("rel", *at, prep, day=2 if word.startswith("после") else 1 if word.startswith("завтр") else 0)
    word = g["wd"].lower()
    short = word in WEEKDAY_SHORT
    index = WEEKDAY_SHORT.index(word) if short else WEEKDAY_STEMS.index(word[:3])
    return TimeWords("weekday", *at, prep, day=index, following=(g["wmod"] or "").lower().startswith(("след", "буд")),
                     short_form=short)


def scan_times(text: str) -> list[TimeWords]:
    """Return the time expressions of a text in order, each with the preposition that stands before it."""
    found: list[TimeWords] = []
    for m in _TIME_RE.finditer(text):
        window = text[max(0, m.start() - _PREP_WINDOW) : m.start()]
        before = _PREP_RE.search(window)
        prep = " ".join(before.group(1).lower().split()) if before else ""
        item = _item(m, prep)
        if item is not None:
            found.append(item)
    return found
