"""The request model: statuses, field rules and the request value objects (pure, no I/O)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone, tzinfo

import regex

DEFAULT_STATUS = "заявка отправлена"
ROBOT_AUTHOR = "Робот"

STATUS_ACCEPTED = "принята в работу"
STATUS_CLARIFY = "требует уточнения"
STATUS_DONE = "выполнена"
STATUS_REJECTED = "отклонена"

# In the order a request usually moves through them.
STATUSES: tuple[str, ...] = (
    DEFAULT_STATUS,
    STATUS_ACCEPTED,
    STATUS_CLARIFY,
    STATUS_DONE,
    STATUS_REJECTED,
)
FINAL_STATUSES = frozenset({STATUS_DONE, STATUS_REJECTED})

SOURCES = ("web", "api", "mail", "outbox", "telegram", "import")
PERSON_SOURCES = frozenset({"web", "api", "telegram"})

NUMBER_MAX = 32
POSITION_MAX = 200
DESCRIPTION_MAX = 4000
COMMENT_MAX = 2000          # typed by a person
MAIL_COMMENT_MAX = 500      # composed from mail
LATEST_YEAR = 9000          # of a deadline typed by a person

# Letters (any alphabet), digits, "-", "_", "/", ".".
_NUMBER_RE = re.compile(r"^(?:[^\W_]|[-_/.])+$")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# Characters that change a text without showing: bidi controls (U+202A-U+202E, U+2066-U+2069,
# U+200E/F, U+061C) and the Unicode Default_Ignorable_Code_Point set (zero-width characters,
# soft hyphen, variation selectors, tags, the Hangul fillers U+3164, U+115F, U+1160, U+FFA0 …),
# from the `regex` module's Unicode database (the standard library has no such property).
_BIDI_RE = regex.compile(r"\p{Bidi_Control}")
_INVISIBLE_RE = regex.compile(r"[\p{Default_Ignorable_Code_Point}\p{Bidi_Control}]")
# Blank but not default-ignorable: a number made of them would look empty or shorter than it is.
_BLANK_LETTERS = frozenset("\u2800")
_TYPED_CONTROLS_ALLOWED = frozenset("\n\t")


class ValidationError(ValueError):
    """Input that breaks a field rule; `fields` maps field name to a message in Russian."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = dict(fields)
        super().__init__("; ".join(f"{name}: {msg}" for name, msg in self.fields.items()))


def utcnow() -> datetime:
    """Return the current instant in UTC."""
    return datetime.now(timezone.utc)


def normalize_number(number: str) -> str:
    """Return the key form of a request number: trimmed and case-folded."""
    return number.strip().casefold()


def _code_point(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def number_error(number: object) -> str | None:
    """Say what is wrong with a request number, or None when it is fine."""
    if not isinstance(number, str) or not number.strip():
        return "Укажите номер заявки."
    text = number.strip()
    if (bidi := _BIDI_RE.search(text)) is not None:
        return (f"Номер содержит символ управления направлением текста ({_code_point(bidi.group())}): "
                "он переставляет знаки на экране, номер выглядит не тем, что есть. Уберите его.")
    found = _INVISIBLE_RE.search(text)
    hidden = found.group() if found is not None else next((ch for ch in text if ch in _BLANK_LETTERS), None)
    if hidden is not None:
        return (f"Номер содержит невидимый символ ({_code_point(hidden)}): на экране и в письме его не видно, "
                "а номер с ним — другой. Уберите его.")
    # The case-folded form is bounded too: it is what numbers are compared by, and a few letters
    # fold into several («ß» → «ss», «ΐ» → three); a number must stay within the limit either way.
    if len(text) > NUMBER_MAX or len(normalize_number(text)) > NUMBER_MAX:
        return f"Номер не длиннее {NUMBER_MAX} символов."
    if not _NUMBER_RE.match(text):
        return "Номер может содержать только буквы, цифры и знаки - _ / ."
    # Browsers and hosts rewrite "." and ".." path segments, so such a number's card could not be opened.
    if any(part in (".", "..") for part in text.split("/")):
        return "Часть номера между знаками «/» не может быть «.» или «..»."
    return None


def clean_typed_text(value: str) -> str:
    """Return typed text as stored: CRLF as LF, bidi controls and default-ignorable characters removed."""
    return _INVISIBLE_RE.sub("", value.replace("\r\n", "\n"))


def _control_in(value: str) -> str | None:
    return next((ch for ch in value if unicodedata.category(ch) == "Cc" and ch not in _TYPED_CONTROLS_ALLOWED),
                None)


def _text_error(value: object, limit: int, what: str) -> str | None:
    if not isinstance(value, str):
        return f"{what}: ожидается текст."
    if "\x00" in value:
        return f"{what}: недопустимый символ NUL."
    if _SURROGATE_RE.search(value):  # JSON "\ud800": not text, cannot be stored or shown as UTF-8
        return f"{what}: недопустимые символы (одиночные суррогаты UTF-16)."
    # Escape sequences, BEL, a lone CR: they repaint terminals and forge lines in logs and mail.
    if (control := _control_in(value.replace("\r\n", "\n"))) is not None:
        return (f"{what}: недопустимый управляющий символ {_code_point(control)} "
                "(из управляющих разрешены только перевод строки и табуляция).")
    if len(clean_typed_text(value)) > limit:
        return f"{what}: не длиннее {limit} символов."
    return None


def validate_new_request(number: object, position: object, description: object) -> tuple[str, str, str]:
    """Check the fields of a new request; return them trimmed or raise ValidationError."""
    errors: dict[str, str] = {}
    if (err := number_error(number)) is not None:
        errors["number"] = err
    position = "" if position is None else position
    description = "" if description is None else description
    if (err := _text_error(position, POSITION_MAX, "Позиция")) is not None:
        errors["position"] = err
    if (err := _text_error(description, DESCRIPTION_MAX, "Описание")) is not None:
        errors["description"] = err
    if errors:
        raise ValidationError(errors)
    return str(number).strip(), clean_typed_text(str(position)).strip(), clean_typed_text(str(description)).strip()


def validate_edit(number: object = None, position: object = None, description: object = None) -> dict[str, str]:
    """Check the fields of an edit (None: not changed); return those given, trimmed, or raise ValidationError."""
    errors: dict[str, str] = {}
    fields: dict[str, str] = {}
    if number is not None:
        if (err := number_error(number)) is not None:
            errors["number"] = err
        else:
            fields["number"] = str(number).strip()
    for name, value, limit, what in (("position", position, POSITION_MAX, "Позиция"),
                                     ("description", description, DESCRIPTION_MAX, "Описание")):
        if value is None:
            continue
        if (err := _text_error(value, limit, what)) is not None:
            errors[name] = err
        else:
            fields[name] = str(value).strip()
    if errors:
        raise ValidationError(errors)
    return fields


def validate_status_change(status: object, comment: object) -> tuple[str, str]:
    """Check a status and a person's comment; return them or raise ValidationError."""
    errors: dict[str, str] = {}
    if status not in STATUSES:
        errors["status"] = "Выберите статус из списка: " + ", ".join(STATUSES) + "."
    comment = "" if comment is None else comment
    if (err := _text_error(comment, COMMENT_MAX, "Комментарий")) is not None:
        errors["comment"] = err
    if errors:
        raise ValidationError(errors)
    return str(status), clean_typed_text(str(comment)).strip()


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a request."""

    at: datetime
    status: str
    comment: str
    author: str
    source: str
    message_id: str | None = None
    subject: str | None = None
    position: str | None = None
    promised: datetime | None = None
    to: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboxMail:
    """A mail OMIS sends (or sent) about a request (SPEC §8)."""

    seq: int
    kind: str                     # "request" or "nudge"
    subject: str
    to: tuple[str, ...]
    state: str                    # queued | sent | failed
    at: datetime                  # when it was queued, then when it was sent or failed
    error: str = ""


@dataclass(frozen=True)
class Request:
    """A request as stored, with its history when it was asked for.

    `id` is immutable and internal (storage keys are built from it); `number` can be corrected,
    and the numbers it had before stay its `aliases`. The deadline facts (`first_news_at` …
    `pauses`) are what functions.deadlines computes the request's deadlines from.
    """

    number: str
    position: str
    description: str
    author: str
    status: str
    comment: str
    comment_author: str
    created_at: datetime
    status_updated_at: datetime
    updated_at: datetime
    id: str = ""
    level: str = ""
    due: datetime | None = None
    promised: datetime | None = None
    archived: bool = False
    first_news_at: datetime | None = None
    last_news_at: datetime | None = None
    clarify_since: datetime | None = None
    clarify_answered: bool = False
    pauses: tuple[tuple[datetime, datetime], ...] = ()
    aliases: tuple[str, ...] = ()
    last_reminded_at: datetime | None = None
    last_escalated_at: datetime | None = None
    snoozed_until: datetime | None = None
    breaches: tuple[str, ...] = ()
    history: tuple[HistoryEntry, ...] = field(default=())
    outbox: tuple[OutboxMail, ...] = field(default=())

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


def parse_instant(value: object, tz: tzinfo) -> datetime:
    """Read an ISO 8601 date-time (`Z`/offset, or local time in `tz` without one) or a date (its end).

    ValueError with a Russian message otherwise.
    """
    if not isinstance(value, str) or not value.strip() or len(value) > 40:
        raise ValueError("Укажите срок как дату и время ISO 8601, например 2026-12-05T18:00.")
    text = value.strip()
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(23, 59, 59), tz)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"Срок «{text}» — не дата и время ISO 8601 (например 2026-12-05T18:00).") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    out_of_range = ValueError(f"Срок «{text}» — вне допустимого диапазона дат (не позже {LATEST_YEAR} года).")
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:   # «0001-01-01T00:00+23:00» is a valid text of no representable instant
        raise out_of_range from None
    # Deadlines move later by pauses and are shown in tz: near year 9999 that leaves datetime's range.
    if moment.year > LATEST_YEAR:
        raise out_of_range
    return moment
