"""The request model: statuses, field rules and the request value objects (pure, no I/O)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

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

SOURCES = ("web", "api", "mail")

NUMBER_MAX = 32
POSITION_MAX = 200
DESCRIPTION_MAX = 4000
COMMENT_MAX = 2000          # typed by a person
MAIL_COMMENT_MAX = 500      # composed from mail

# Letters (any alphabet), digits, "-", "_", "/", ".".
_NUMBER_RE = re.compile(r"^(?:[^\W_]|[-_/.])+$")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


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


def number_error(number: object) -> str | None:
    """Say what is wrong with a request number, or None when it is fine."""
    if not isinstance(number, str) or not number.strip():
        return "Укажите номер заявки."
    text = number.strip()
    # The case-folded form is bounded too: it becomes the storage key, and a few letters fold
    # into several («ß» → «ss», «ΐ» → three), which would push the key past Table Storage's limit.
    if len(text) > NUMBER_MAX or len(normalize_number(text)) > NUMBER_MAX:
        return f"Номер не длиннее {NUMBER_MAX} символов."
    if not _NUMBER_RE.match(text):
        return "Номер может содержать только буквы, цифры и знаки - _ / ."
    # Browsers and hosts rewrite "." and ".." path segments, so such a number's card could not be opened.
    if any(part in (".", "..") for part in text.split("/")):
        return "Часть номера между знаками «/» не может быть «.» или «..»."
    return None


def _text_error(value: object, limit: int, what: str) -> str | None:
    if not isinstance(value, str):
        return f"{what}: ожидается текст."
    if "\x00" in value:
        return f"{what}: недопустимый символ NUL."
    if _SURROGATE_RE.search(value):  # JSON "\ud800": not text, cannot be stored or shown as UTF-8
        return f"{what}: недопустимые символы (одиночные суррогаты UTF-16)."
    if len(value) > limit:
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
    return str(number).strip(), str(position).strip(), str(description).strip()


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
    return str(status), str(comment).strip()


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


@dataclass(frozen=True)
class Request:
    """A request as stored, with its history when it was asked for."""

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
    last_reminded_at: datetime | None = None
    history: tuple[HistoryEntry, ...] = field(default=())

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES
