"""Understand a contractor's reply: request numbers, positions, statuses and promises (SPEC §3; pure, no I/O)."""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo

from ..model import (
    MAIL_COMMENT_MAX,
    STATUS_ACCEPTED,
    STATUS_CLARIFY,
    STATUS_DONE,
    STATUS_REJECTED,
    normalize_number,
    number_error,
)
from ..workhours import WorkingCalendar
from .promises import find_promise, names_time

# Regex sources, matched case-insensitively as whole words on text where «ё» is read as «е».
STATUS_KEYWORDS: dict[str, tuple[str, ...]] = {
    STATUS_REJECTED: (
        r"отклон(?:ен|ена|ено|ены|яем|яется|яются|или|ил|ила)",
        # «отказ оборудования» is a failure, not a refusal: only a bare «отказ» or «отказ от/в/по».
        r"отказ(?=\s*(?:[.,;:!?)]|$)|\s+(?:от|в|по)\s)",
        r"отказ(?:ано|ываем|ываемся|ались|ался|алась|ать|аться)",
        (r"не\s+(?:можем|сможем|будем|получится|имеем\s+возможности|представляется\s+возможным)\s+"
         r"(?:[^\s,;:!?]+\s+)?(?:выполн\w*|приня\w*|взять|провести|произвести)"),
        r"(?:невозможно|не\s+возможно)\s+выполн\w*",
        r"(?:выполн(?:ить|ение)|взять|принять)(?:\s+в\s+работу)?\s+(?:не\s+можем|не\s+сможем|не\s+получится|невозможно)",
    ),
    STATUS_DONE: (
        r"(?:выполн|заверш|законч|оконч|устран|исполн|восстановл)ен[аоы]?|отремонтирован[аоы]?",
        r"(?:выполн|заверш|законч|устран|восстанов)или|отремонтировали",
        r"(?:вс[её]|работы)\s+сделан[аоы]?",
        r"(?:сделан[аоы]?|готово)(?=\s*(?:[.,;!]|$))",
    ),
    STATUS_CLARIFY: (
        r"уточн(?:ить|ите|ение|ения|ений)",
        r"поясните",
        r"(?:просим|прошу|просьба)\s+(?:вас\s+)?(?:сообщить|предоставить|прислать|направить|пояснить|дополнить)",
        r"(?:не\s+хватает|недостаточно|нет)\s+(?:[^\s,;:!?]+\s+)?(?:данных|информации|сведений)",
        (r"(?:требуется|требуются|нужна|нужны|необходима|необходимы)\s+(?:дополнительн\w+\s+)?"
         r"(?:информация|данные|сведения)"),
    ),
    STATUS_ACCEPTED: (
        (r"(?:принят[аоы]?|приняли|принял[аи]?|принимаем|взят[аоы]?|взяли|взял[аи]?|бер[её]м(?:ся)?)\s+"
         r"(?:[^\s,;:!?]+\s+){0,3}?в\s+работу"),
        r"приступ(?:или|ила|ил|аем|ают|ает)",
        # Bare «принята» / «в работе» only right after a request («заявка принята», «№ 5 в работе»):
        # «оборудование в работе» says nothing about the request.
        r"(?:(?<=\d\s)|заявк[аиу]\s+(?:уже\s+)?)(?:принят[аоы]?|приняли)",
        r"(?:принят[аоы]?|приняли)(?=\s*(?:[.,;!]|$))",
        r"(?:(?<=\d\s)|заявк[аи]\s+(?:уже\s+)?|находи(?:тся|лась|лись|ятся)\s+|уже\s+)в\s+работе",
    ),
}

STATUS_RANK: dict[str, int] = {STATUS_ACCEPTED: 1, STATUS_CLARIFY: 2, STATUS_DONE: 3, STATUS_REJECTED: 4}

_STATUS_ORDER = tuple(STATUS_KEYWORDS)
_STATUS_RE = re.compile(
    r"(?<!\w)(?=[^\W\d_])(?:"  # every phrase starts a word with a letter; lets the engine skip the rest fast
    + "|".join(f"(?P<s{i}>{'|'.join(STATUS_KEYWORDS[s])})" for i, s in enumerate(_STATUS_ORDER))
    + r")(?!\w)",
    re.IGNORECASE,
)
_YO = str.maketrans("ёЁ", "еЕ")
_WORD_RE = re.compile(r"[^\W\d_]+")
# The words around a status phrase, for negation and tense, are whole tokens of letters only: the
# letters of a request number («заявка № НЕ-5», «№ БЫ-1») are no «не» or «бы».
_TOKEN_RE = re.compile(r"[\w-]+(?:[./][\w-]+)*")
_CLAUSE_RE = re.compile(r"[,;:.!?()\[\]—–]")
_NEGATION = "не"
_STOP_WORDS = frozenset({"и", "но", "а", "однако", "зато", "или"})
_NOT_YET_WORDS = frozenset({"будет", "будут", "быть", "бы"})
# A refusal bounded in time («раньше среды не сможем выполнить») is a deferral; a start in the present
# tense with a time to come («приступаем завтра») is not a start yet (SPEC §3).
_INABILITY_RE = re.compile(r"(?<!\w)(?:не|невозможно)(?!\w)", re.IGNORECASE)
_PRESENT_START_RE = re.compile(r"приступа|принимаем|бер[её]м", re.IGNORECASE)
_PHRASE_CLAUSE_RE = re.compile(r"[,;:](?=\s|$)|\s[-–—]\s|[()]")
_NOT_NEEDED_RE = re.compile(r"(?<!\w)не\s+(?:требуе|нуж|понадоб)", re.IGNORECASE)  # «уточнение ... не требуется»

# Quoted history and signature (SPEC §3).
_ORIGINAL_RE = re.compile(
    r"^\s*-{2,}\s*(?:original message|исходное сообщение|forwarded message|пересылаемое сообщение"
    r"|пересланное сообщение)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_WROTE_RE = re.compile(r"(?:пишет|wrote|написал(?:а|\(а\))?|@[^<>\s@]+>)\s*:\s*\Z", re.IGNORECASE)
_FROM_RE = re.compile(r"^\s*(?:from|от)\s*:", re.IGNORECASE)
_HEADER_RE = re.compile(
    r"^\s*(?:from|sent|to|cc|date|subject|от|отправлено|кому|копия|дата|тема)\s*:", re.IGNORECASE
)
_SIGNOFF_RE = re.compile(
    r"(?:^|(?<=[.!?])\s+)(?:с\s+уважением|с\s+наилучшими\s+пожеланиями|best\s+regards|kind\s+regards)",
    re.IGNORECASE,
)
_RULE_RE = re.compile(r"[\s_\-=*~—]*")
_SUBJECT_PREFIX_RE = re.compile(
    r"^\s*(?:(?:re|fw|fwd|ответ|отв|пересл|aw|wg|sv|tr)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*)+", re.IGNORECASE
)

# Sentences: «.» before whitespace, «!?…;», or a line break that does not continue the sentence.
_BOUNDARY_RE = re.compile(r"[.!?…;]+(?=\s|$)|\n")
_ALNUM_RE = re.compile(r"[^\W_]")
_ABBREVIATIONS = frozenset(
    {"поз", "п", "пп", "ул", "д", "г", "гг", "кв", "корп", "стр", "т", "е", "см", "тел", "им", "пр", "эт", "ч", "мин",
     "янв", "фев", "февр", "мар", "апр", "июн", "июл", "авг", "сен", "сент", "окт", "ноя", "нояб", "дек"}
)

# Request numbers and positions.
_MARKER_RE = re.compile(
    r"(?<!\w)(?:(?P<pos>позици(?:я|и|ю|ей|й|ям|ях|ями)|поз)|(?P<req>заявк(?:а|и|е|у|ой|ою|ам|ами|ах|ок)))(?!\w)"
    r"|(?P<sign>(?<![№#])[№#]+)",
    re.IGNORECASE,
)
_GAP_RE = re.compile(
    r"\.?\s*(?:(?:№+|#|N(?=[\s\d])|No\.?(?=[\s\d])|номер(?:а|у|ом)?(?!\w))\s*)?[:\-–—]?\s*", re.IGNORECASE
)
_DIGIT_RE = re.compile(r"\d")
_TOKEN_RE = re.compile(r"[^\W_][\w\-/.]*")
_ENUM_RE = re.compile(
    r"\s*,\s*(?:(?:и|а\s+также)\s+)?(?:[№#]+\s*)?|\s+(?:и|а\s+также)\s+(?:[№#]+\s*)?", re.IGNORECASE
)
# A bare «№» after one of these nouns numbers that thing, not a request («договор № 45», «д. № 3»).
_OWNER_WORDS = frozenset({"д", "дом", "кв", "п", "пп", "каб", "тел", "исх", "вх", "стр", "корп", "поз", "лот", "ттн",
                          "упд"})
_OWNER_STEMS = (
    "договор", "контракт", "акт", "счет", "счёт", "бригад", "пункт", "письм", "приказ", "накладн", "объект",
    "кабинет", "офис", "этаж", "подъезд", "помещени", "спецификаци", "приложени", "протокол", "смет",
    "позици", "телефон", "квартир",
)


def _later(a: str | None, b: str | None) -> str | None:
    """Return the later-stage of two statuses, either may be None."""
    if a is None or b is None:
        return a or b
    return a if STATUS_RANK[a] >= STATUS_RANK[b] else b


def new_text(body: str) -> str:
    """Return the new part of a reply: quoted history, quote lines and signature cut off."""
    lines = (body or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if (
            line.rstrip() == "--"
            or _ORIGINAL_RE.match(line)
            or _WROTE_RE.search(line.rstrip())
            or (_FROM_RE.match(line) and any(_HEADER_RE.match(nxt) for nxt in lines[i + 1 : i + 5]))
        ):
            break
        if line.lstrip().startswith(">"):
            continue
        signoff = _SIGNOFF_RE.search(line)
        if signoff:
            kept.append(line[: signoff.start()].rstrip())
            break
        kept.append(line.rstrip())
    while kept and _RULE_RE.fullmatch(kept[-1]):
        kept.pop()
    return "\n".join(kept).strip()


def _edge_char(text: str, i: int, step: int) -> str:
    """Return the first char from i in direction step past spaces and tabs, "" at a line end."""
    while 0 <= i < len(text) and text[i] in " \t":
        i += step
    return text[i] if 0 <= i < len(text) and text[i] != "\n" else ""


def _sentences(text: str) -> list[str]:
    """Split text into sentences, keeping «поз. 7» and wrapped lines together."""
    parts: list[str] = []
    start = 0
    for m in _BOUNDARY_RE.finditer(text):
        if m.group() == "\n":
            prev, nxt = _edge_char(text, m.start() - 1, -1), _edge_char(text, m.end(), 1)
            if nxt.islower() or (prev and prev in ",:№#-–—"):
                continue
        elif m.group() == ".":
            word = _WORD_RE.findall(text[max(0, m.start() - 6) : m.start()])[-1:]
            nxt = text[m.end() : m.end() + 20].lstrip()[:1]
            abbreviation = text[m.start() - 1 : m.start()].isalpha() and word[0].casefold() in _ABBREVIATIONS
            if abbreviation and (nxt.islower() or nxt.isdigit() or nxt in "№#"):
                continue
        parts.append(text[start : m.end()])
        start = m.end()
    parts.append(text[start:])
    return [p.strip() for p in parts if _ALNUM_RE.search(p)]


def _counts(text: str, start: int, end: int, status: str) -> bool:
    """Tell whether a status phrase at text[start:end] is stated as a fact (not negated, not future)."""
    lo = max(0, start - 60)
    tokens = _TOKEN_RE.findall(_CLAUSE_RE.split(text[lo:start])[-1].casefold())
    if tokens and lo > 0 and _TOKEN_RE.fullmatch(text[lo - 1 : lo + 1]):
        tokens = tokens[1:]  # the window cut this word
    before = [t for t in tokens if t.isalpha()]
    for i in range(len(before) - 1, -1, -1):
        if before[i] in _STOP_WORDS:
            before = before[i + 1 :]
            break
    before = before[-3:]
    after = text[end : end + 80]
    after_clause = _CLAUSE_RE.split(after, maxsplit=1)[0]
    following = [t for t in _TOKEN_RE.findall(after_clause.casefold()) if t.isalpha()][:1]
    if _NEGATION in before or following == [_NEGATION] or _NOT_NEEDED_RE.search(after_clause):
        return False
    if status == STATUS_CLARIFY:  # a question or a future «нужно будет уточнить» still asks us
        return True
    if _NOT_YET_WORDS.intersection(before) or _NOT_YET_WORDS.intersection(following):
        return False
    clause_end = _CLAUSE_RE.search(after)
    return not (clause_end and clause_end.group() == "?")


class _TimeBounds:
    """Whether a sentence, or a clause of it, names a time; each worked out at most once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._cuts: list[int] | None = None
        self._named: dict[tuple[int, int], bool] = {}

    def named(self, lo: int, hi: int) -> bool:
        if (lo, hi) not in self._named:
            self._named[(lo, hi)] = names_time(self.text[lo:hi])
        return self._named[(lo, hi)]

    def in_clause(self, start: int, end: int) -> bool:
        if self._cuts is None:
            self._cuts = [i for m in _PHRASE_CLAUSE_RE.finditer(self.text) for i in (m.start(), m.end())]
        at, after = bisect_right(self._cuts, start), bisect_left(self._cuts, end)
        lo = self._cuts[at - 1] if at else 0
        hi = self._cuts[after] if after < len(self._cuts) else len(self.text)
        return self.named(lo, hi)

    def defers(self, m: re.Match[str], status: str) -> bool:
        """Tell whether a refusal or a present-tense start is bounded by a time to come (no status then)."""
        if status == STATUS_REJECTED:
            return _INABILITY_RE.search(m.group()) is not None and self.named(0, len(self.text))
        if status == STATUS_ACCEPTED and _PRESENT_START_RE.match(m.group()):
            return self.in_clause(m.start(), m.end())
        return False


def _sentence_status(sentence: str) -> str | None:
    """Return the latest-stage status stated in one sentence."""
    text = sentence.translate(_YO)
    best: str | None = None
    bounds: _TimeBounds | None = None
    for m in _STATUS_RE.finditer(text):
        status = _STATUS_ORDER[int((m.lastgroup or "s0")[1:])]
        if best is not None and STATUS_RANK[status] <= STATUS_RANK[best]:
            continue
        if not _counts(text, m.start(), m.end(), status):
            continue
        if status in (STATUS_REJECTED, STATUS_ACCEPTED):
            bounds = bounds or _TimeBounds(text)
            if bounds.defers(m, status):
                continue
        best = _later(best, status)
    return best


def detect_status(text: str) -> str | None:
    """Return the latest-stage status stated (not negated) in a text, or None."""
    best: str | None = None
    for sentence in _sentences(text or ""):
        best = _later(best, _sentence_status(sentence))
    return best


def _token(text: str, at: int) -> tuple[str, int] | None:
    """Read a request number (or position) at text[at:], without a sentence-ending dot."""
    m = _TOKEN_RE.match(text, at)
    if not m:
        return None
    value = m.group().rstrip(".")
    if not _DIGIT_RE.search(value) or number_error(value) is not None:
        return None
    return value, at + len(value)


def _owned_by_noun(text: str, at: int) -> bool:
    """Tell whether a bare «№» at text[at] follows a noun that owns it («акт № 45»)."""
    tail = text[max(0, at - 40) : at].rstrip().removesuffix(".")
    if not tail[-1:].isalpha():
        return False
    word = _WORD_RE.findall(tail)[-1].casefold()
    return word in _OWNER_WORDS or word.startswith(_OWNER_STEMS)


def _scan(text: str) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
    """Find (number, offset, marker group) and (position, offset) mentions in a sentence."""
    numbers: list[tuple[str, int, int]] = []
    positions: list[tuple[str, int]] = []
    at = 0
    while (m := _MARKER_RE.search(text, at)) is not None:
        at = m.end()
        if m.lastgroup == "sign" and _owned_by_noun(text, m.start()):
            continue
        gap = _GAP_RE.match(text, at)
        found = _token(text, gap.end() if gap is not None else at)
        if found is None:
            continue
        if m.lastgroup == "pos":
            positions.append((found[0], m.start()))
            at = found[1]
            continue
        group = m.start()
        numbers.append((found[0], m.start(), group))
        at = found[1]
        while (sep := _ENUM_RE.match(text, at)) and (found := _token(text, sep.end())):
            numbers.append((found[0], sep.end(), group))
            at = found[1]
    return numbers, positions


def extract_numbers(text: str) -> list[str]:
    """Return the request numbers named in a text, as typed, first mention first, without repeats."""
    seen: dict[str, str] = {}
    for sentence in _sentences(text or ""):
        for number, _, _ in _scan(sentence)[0]:
            seen.setdefault(normalize_number(number), number)
    return list(seen.values())


@dataclass(frozen=True)
class ParsedMail:
    """What one e-mail says: numbers, and per number its status, position and promised instant (UTC)."""

    numbers: tuple[str, ...]
    statuses: dict[str, str | None]
    positions: dict[str, str | None]
    general_status: str | None
    comment: str
    promises: dict[str, datetime | None] = field(default_factory=dict)
    general_promise: datetime | None = None


def _comment(text: str) -> str:
    """Collapse whitespace and shorten to the mail comment limit."""
    text = " ".join(text.split())
    return text if len(text) <= MAIL_COMMENT_MAX else text[: MAIL_COMMENT_MAX - 1].rstrip() + "…"


def _position_owners(found: list[tuple[str, int, int]], offset: int) -> list[str]:
    """Return the keys of the numbers a position at offset stands by: the marker group before it, else after."""
    before = [group for _, at, group in found if at < offset]
    group = before[-1] if before else next(group for _, at, group in found if at > offset)
    return [normalize_number(number) for number, _, g in found if g == group]


def parse_mail(
    subject: str,
    body: str,
    unique_body: str | None = None,
    *,
    received: datetime | None = None,
    tz: tzinfo | None = None,
    calendar: WorkingCalendar | None = None,
) -> ParsedMail:
    """Read the subject and the new part of the body into numbers, statuses, positions and promises.

    Promises are read only with `received` (the mail's received time), from the sentences of the
    new text, in `tz` (default: the calendar's, else UTC) with `calendar` for «рабочих дней»
    (default: every day works). A sentence's promise goes where its status would; the last
    promising sentence of the mail wins for a request.
    """
    subject = _SUBJECT_PREFIX_RE.sub("", subject or "")
    text = new_text(unique_body if unique_body and unique_body.strip() else body)
    zone = tz or (calendar.tz if calendar is not None else timezone.utc)
    days = calendar or WorkingCalendar(zone)
    numbers: dict[str, str] = {}
    statuses: dict[str, str | None] = {}
    positions: dict[str, str | None] = {}
    promised: dict[str, tuple[int, datetime]] = {}
    general: str | None = None
    general_promise: tuple[int, datetime] | None = None
    loose_positions: list[str] = []
    subject_sentences = _sentences(subject)
    for index, sentence in enumerate(subject_sentences + _sentences(text)):
        found, named_positions = _scan(sentence)
        status = _sentence_status(sentence)
        promise = None
        if received is not None and index >= len(subject_sentences):
            promise = find_promise(sentence, received=received, tz=zone, calendar=days)
        if not found:
            general = _later(general, status)
            loose_positions.extend(value for value, _ in named_positions)
            if promise is not None:
                general_promise = (index, promise)
            continue
        for number, _, _ in found:
            key = normalize_number(number)
            numbers.setdefault(key, number)
            statuses[key] = _later(statuses.get(key), status)
            positions.setdefault(key, None)
            if promise is not None:
                promised[key] = (index, promise)
        for value, offset in named_positions:
            for key in _position_owners(found, offset):
                if positions[key] is None:
                    positions[key] = value
    for key in numbers:
        statuses[key] = _later(statuses[key], general)
    if len(numbers) == 1 and loose_positions:
        (only,) = numbers
        positions[only] = positions[only] or loose_positions[0]
    promises: dict[str, datetime | None] = {}
    for key in numbers:
        latest = max((p for p in (promised.get(key), general_promise) if p is not None), default=None)
        promises[key] = latest[1] if latest else None
    return ParsedMail(
        numbers=tuple(numbers.values()),
        statuses=statuses,
        positions=positions,
        general_status=general,
        comment=_comment(text) or _comment(subject),
        promises=promises,
        general_promise=general_promise[1] if general_promise else None,
    )


@dataclass(frozen=True)
class ContractorMessage:
    """One (mail, request number) pair: what sync applies to that request."""

    number: str
    position: str | None
    status: str | None
    comment: str
    received: datetime
    author: str
    message_id: str
    subject: str
    promised: datetime | None = None


def contractor_messages(
    parsed: ParsedMail, *, received: datetime, author: str, message_id: str, subject: str
) -> list[ContractorMessage]:
    """Split a parsed mail into one message per request number it names."""
    return [
        ContractorMessage(
            number=number,
            position=parsed.positions.get(normalize_number(number)),
            status=parsed.statuses.get(normalize_number(number)),
            comment=parsed.comment,
            received=received,
            author=author,
            message_id=message_id,
            subject=subject,
            promised=parsed.promises.get(normalize_number(number)),
        )
        for number in parsed.numbers
    ]
