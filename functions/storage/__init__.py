"""Everything that touches Table Storage, behind one `Store` built from `Settings`.

Services receive a Store (the web handlers and timers take the process's one from `get_store()`),
so a test or a scenario points OMIS at other tables by building its own from other settings.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..model import Request, ValidationError, utcnow, validate_edit, validate_new_request, validate_status_change
from ..settings import Settings, get_settings
from . import changes
from .counts import read_counts
from .errors import (
    ConflictError,
    DuplicateRequestError,
    MailApplyResult,
    RequestNotFound,
    RequestPage,
    SimilarNumberError,
)
from .listing import ListQuery, list_requests
from .mail import MailStore, UnmatchedBusy, UnmatchedGone, UnmatchedMail
from .requests import RequestStore
from .schema import InitReport, init_store
from .tables import CallStats, StorageBusy, StorageUnavailable, StoreError, Tables

__all__ = [
    "CallStats",
    "ConflictError",
    "DuplicateRequestError",
    "InitReport",
    "ListQuery",
    "MailApplyResult",
    "MailStore",
    "RequestNotFound",
    "RequestPage",
    "RequestStore",
    "SimilarNumberError",
    "StorageBusy",
    "StorageUnavailable",
    "Store",
    "StoreError",
    "UnmatchedBusy",
    "UnmatchedGone",
    "UnmatchedMail",
    "get_store",
    "reset_stores",
]

IMPORT_AUTHOR = "Импорт"     # the author of an imported request that names none


class Store:
    """The OMIS tables of one storage configuration, and the operations services call on them.

    The operations validate what a person typed (model rules, raising ValidationError with the
    fields) and leave the storage work to requests/changes/listing/mail.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tables = Tables(settings)
        self.requests = RequestStore(self.tables, settings)
        self.mail = MailStore(self.tables)

    @property
    def stats(self) -> CallStats:
        """Calls made and entities read so far (benchmarks reset and read it)."""
        return self.tables.stats

    def init(self) -> InitReport:
        """Create the tables and upgrade an older layout in place (idempotent)."""
        return init_store(self.tables, self.requests)

    def ping(self) -> None:
        """Raise StorageUnavailable unless storage answers and OMIS's tables are there (re-created if not)."""
        self.tables.ensure()
        read_counts(self.requests)

    def drop(self) -> None:
        """Delete the tables (scenarios clean up with it)."""
        self.tables.drop()

    # ----- requests ----------------------------------------------------------------------

    def _level(self, level: object) -> str:
        if level is None or level == "":
            return self.settings.sla_default
        if not isinstance(level, str) or level not in self.settings.sla_levels:
            raise ValidationError({"level": "Неизвестный уровень: выберите из списка ("
                                   + ", ".join(self.settings.sla_levels) + ")."})
        return level

    def add_request(self, number: object, position: object = "", description: object = "", *,
                    author: str | None = None, source: str = "web", level: object = None,
                    due: datetime | None = None, now: datetime | None = None, confirm_similar: bool = False,
                    outbox: Callable[[Request], list[tuple]] | None = None) -> Request:
        """Register a request; raise ValidationError, DuplicateRequestError or SimilarNumberError."""
        number, position, description = validate_new_request(number, position, description)
        level_id = self._level(level)
        at = now or utcnow()
        if due is not None and due < at:
            raise ValidationError({"due": "Срок не может быть раньше, чем заявка создана."})
        return self.requests.create(number, position, description, author=self._author(author), source=source,
                                    level=level_id, due=due, now=at, confirm_similar=confirm_similar,
                                    outbox=outbox)

    def import_request(self, number: object, position: object = "", description: object = "", *,
                       status: object, comment: object = "", author: str = "", comment_author: str = "",
                       level: object = None, created_at: datetime, status_updated_at: datetime,
                       updated_at: datetime, due: datetime | None = None, promised: datetime | None = None,
                       now: datetime | None = None) -> Request:
        """Bring in a request of older data with its own times and status; its history is one `import` entry.

        Raises ValidationError (a bad number, status, level or text) or DuplicateRequestError (the
        number is there already). Numbers that merely look alike are taken as the distinct
        requests the older data says they are.
        """
        number, position, description = validate_new_request(number, position, description)
        status, text = validate_status_change(status, comment)
        level_id = self._level(level)
        who = author.strip()[:200] or IMPORT_AUTHOR
        updated = max(updated_at, status_updated_at, created_at)
        return self.requests.create(number, position, description, author=who, source="import", level=level_id,
                                    due=due, now=now, confirm_similar=True, comment=text or "Заявка импортирована.",
                                    status=status, created_at=created_at,
                                    status_updated_at=max(status_updated_at, created_at), updated_at=updated,
                                    promised=promised,
                                    current_comment=(text, (comment_author.strip()[:200] or who) if text else ""))

    def _author(self, author: str | None) -> str:
        return (author or self.settings.dev_user).strip()[:200]

    def get_request(self, number: str, with_history: bool = True) -> Request | None:
        """Return the request that has (or had) this number, or None."""
        return self.requests.get(number, with_history)

    def list_requests(self, query: ListQuery | None = None, now: datetime | None = None, **filters: Any) -> RequestPage:
        """Return a page of the list (ListQuery fields as keywords); ValidationError names a bad filter."""
        return list_requests(self.requests, query or ListQuery(**filters), now)

    def counts(self) -> dict[str, int]:
        """Return how many requests are in each status (and "archived")."""
        return read_counts(self.requests)

    def update_status(self, number: str, status: object, comment: object = "", *, author: str | None = None,
                      source: str = "web", now: datetime | None = None) -> Request:
        """Set a request's status (and comment) by hand."""
        status, comment = validate_status_change(status, comment)
        try:
            return changes.change_status(self.requests, number, status, comment, author=self._author(author),
                                         source=source, now=now)
        except ValueError as exc:
            raise ValidationError({"comment": str(exc)}) from None

    def update_comment(self, number: str, comment: object, *, author: str | None = None, source: str = "web",
                       now: datetime | None = None) -> Request:
        """Record a person's note about a request without changing its status."""
        current = self.requests.get(number, with_history=False)
        if current is None:
            raise RequestNotFound(number)
        _, text = validate_status_change(current.status, comment)
        if not text:
            raise ValidationError({"comment": "Комментарий пуст."})
        return self.update_status(number, current.status, text, author=author, source=source, now=now)

    def edit_request(self, number: str, *, new_number: object = None, position: object = None,
                     description: object = None, level: object = None, due: Any = changes.UNSET,
                     author: str | None = None, source: str = "web", confirm_similar: bool = False,
                     now: datetime | None = None) -> Request:
        """Change a request's number, position, description, level or due (None: leave as is)."""
        fields = validate_edit(new_number, position, description)
        level_id = None if level is None else self._level(level)
        try:
            return changes.edit(self.requests, number, new_number=fields.get("number"),
                                position=fields.get("position"), description=fields.get("description"),
                                level=level_id, due=due, author=self._author(author), source=source,
                                confirm_similar=confirm_similar, now=now)
        except ValueError as exc:
            raise ValidationError({"due": str(exc)}) from None

    def set_archived(self, number: str, archived: bool, *, author: str | None = None, source: str = "web",
                     now: datetime | None = None) -> Request:
        """Archive a request or bring it back."""
        return changes.set_archived(self.requests, number, archived, author=self._author(author), source=source,
                                    now=now)

    def apply_mail(self, request_id: str, **kwargs: Any) -> MailApplyResult:
        """Apply one mail message to one request, at most once (see changes.apply_mail)."""
        return changes.apply_mail(self.requests, request_id, **kwargs)


_stores: dict[int, tuple[Settings, Store]] = {}
_lock = threading.Lock()


def get_store(settings: Settings | None = None) -> Store:
    """Return the Store of these settings (default: the process's), one per settings object."""
    settings = settings or get_settings()
    with _lock:
        found = _stores.get(id(settings))
        if found is None or found[0] is not settings:
            found = (settings, Store(settings))
            _stores[id(settings)] = found
        return found[1]


def reset_stores() -> None:
    """Forget the stores made so far (tests change settings between cases)."""
    with _lock:
        _stores.clear()
