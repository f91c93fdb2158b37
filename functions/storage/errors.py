"""The storage layer's refusals, and the values its operations answer with."""
from __future__ import annotations

from dataclasses import dataclass

from ..model import Request, normalize_number


class RequestNotFound(Exception):
    """No request has this number (nor had it before a rename)."""

    def __init__(self, number: str) -> None:
        self.number = number
        super().__init__(f"Заявка «{number}» не найдена.")


class DuplicateRequestError(Exception):
    """A request has this number (in any letter case), now or before a rename."""

    def __init__(self, number: str, existing: str) -> None:
        self.number, self.existing = number, existing
        if normalize_number(number) == normalize_number(existing):
            text = f"Заявка с номером «{existing}» уже есть."
        else:
            text = f"Номер «{number}» был у заявки, которая теперь называется «{existing}»."
        super().__init__(text)


class SimilarNumberError(Exception):
    """A request's number looks like this one (letters of other scripts that are drawn alike)."""

    def __init__(self, number: str, existing: str) -> None:
        self.number, self.existing = number, existing
        super().__init__(f"Номер «{number}» выглядит как номер существующей заявки «{existing}» "
                         "(похожие буквы разных алфавитов). Если это действительно другая заявка, подтвердите.")


class ConflictError(Exception):
    """The change cannot be made in the request's present state (archived, changed meanwhile)."""


@dataclass(frozen=True)
class RequestPage:
    """One page of the list and the cursor of the next page (None on the last)."""

    items: list[Request]
    next_cursor: str | None


@dataclass(frozen=True)
class MailApplyResult:
    """What applying one mail message to one request did."""

    outcome: str  # "status_changed", "recorded" (history/comment only) or "duplicate"
    request: Request | None
