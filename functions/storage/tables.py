"""Table Storage plumbing: clients, table names, keys, errors, call counting and the one retry loop.

Keys are built only from `[A-Za-z0-9_-]` (every Table Storage implementation handles those in
point operations): immutable request ids, fixed-width zero-padded timestamps and hex digests.
"""
from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar, overload

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError

from ..settings import Settings

logger = logging.getLogger(__name__)

REQUESTS_TABLE = "requests"
MAIL_TABLE = "mail"
TABLE_SUFFIXES = (REQUESTS_TABLE, MAIL_TABLE)
KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

MAX_ATTEMPTS = 8
_TS_DIGITS = 17
_TS_MAX = 10**_TS_DIGITS - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

T = TypeVar("T")


class StoreError(Exception):
    """Base of the data layer's own errors."""


class StorageUnavailable(StoreError):
    """Table Storage did not answer, or refused us; the message says so in Russian."""


class StorageBusy(StorageUnavailable):
    """Too many concurrent changes of the same rows: retry later (nothing was written)."""


def ts_key(moment: datetime) -> str:
    """Encode an instant as zero-padded microseconds since 1970: text order is time order."""
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return str(min(_TS_MAX, max(0, micros))).zfill(_TS_DIGITS)


def inverted_ts_key(moment: datetime) -> str:
    """Encode an instant so that text order is newest first."""
    return str(_TS_MAX - int(ts_key(moment))).zfill(_TS_DIGITS)


def encode_cursor(row_key: str) -> str:
    """Turn the last RowKey of a page into an opaque cursor."""
    return base64.urlsafe_b64encode(row_key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    """Turn a cursor back into a RowKey; ValueError if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True).decode("ascii")
    except (ValueError, UnicodeError):
        raise ValueError("неверный курсор") from None
    if not key or not KEY_CHARS.issuperset(key):
        raise ValueError("неверный курсор")
    return key


def fit_text(text: str, max_units: int) -> str:
    """Cut a text to at most `max_units` UTF-16 code units, how Table Storage measures a string.

    A property holds 64 KiB, i.e. 32K units: a character outside the BMP (an emoji) takes two,
    so a limit in characters is not enough. Never cuts a surrogate pair in half.
    """
    if len(text) * 2 <= max_units:
        return text
    data = text.encode("utf-16-le", "surrogatepass")
    if len(data) <= 2 * max_units:
        return text
    cut = data[:2 * max_units]
    if 0xD800 <= int.from_bytes(cut[-2:], "little") <= 0xDBFF:
        cut = cut[:-2]
    return cut.decode("utf-16-le", "surrogatepass")


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """Return a plain aware UTC datetime (Table Storage gives its own subclass)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    # Field by field: a float timestamp is off by a second near year 9999, where its precision runs out.
    utc = value.astimezone(timezone.utc)
    return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond,
                    tzinfo=timezone.utc)


@dataclass
class CallStats:
    """What the store asked of Table Storage: calls (HTTP round trips) and entities read."""

    calls: int = 0
    entities_read: int = 0

    def reset(self) -> None:
        self.calls = self.entities_read = 0


def is_conflict(exc: Exception) -> bool:
    """Say whether a failure means "someone else changed these rows first" (retry with fresh reads)."""
    code = getattr(exc, "status_code", None)
    return code in (409, 412) or isinstance(exc, (ResourceModifiedError, ResourceExistsError))


def failed_index(exc: TableTransactionError) -> int | None:
    """Return the position of the operation a transaction failed on, when the service says."""
    index = getattr(exc, "index", None)
    return index if isinstance(index, int) else None


def etag_of(entity: Mapping[str, Any]) -> str:
    """Return the ETag Table Storage gave an entity it returned."""
    return str(entity.metadata["etag"])   # type: ignore[attr-defined]


def if_unchanged(entity: Mapping[str, Any]) -> dict[str, Any]:
    """Return the keyword arguments that make a write conditional on the entity's ETag."""
    from azure.core import MatchConditions

    return {"etag": etag_of(entity), "match_condition": MatchConditions.IfNotModified}


def backoff(attempt: int) -> None:
    """Wait a little before retrying a conflicting transaction, more after each try (with jitter)."""
    time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311 - jitter, not a secret


class Table:
    """One OMIS table: the SDK client, counting calls, re-creating the table if it vanished."""

    def __init__(self, owner: Tables, suffix: str) -> None:
        self._owner = owner
        self.suffix = suffix
        self.name = owner.prefix + suffix

    @property
    def client(self) -> TableClient:
        return self._owner.client(self.suffix)

    @contextmanager
    def _call(self) -> Iterator[None]:
        """Count one round trip; a table the service says is gone is created again on the next call."""
        self._owner.stats.calls += 1
        try:
            with translate_errors():
                yield
        except HttpResponseError as exc:
            if getattr(exc, "error_code", None) == "TableNotFound":
                self._owner.forget(self.suffix)
                raise StorageUnavailable(f"Таблицы {self.name} не было; она создана снова") from exc
            raise

    def get(self, pk: str, rk: str, select: list[str] | None = None) -> dict[str, Any] | None:
        """Return one entity, or None when there is none."""
        try:
            with self._call():
                entity = self.client.get_entity(pk, rk, select=select) if select else self.client.get_entity(pk, rk)
        except ResourceNotFoundError:
            return None
        self._owner.stats.entities_read += 1
        return entity

    def query(self, query: str, parameters: dict[str, Any], *, select: list[str] | None = None,
              page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield the entities of a query, page by page (each page one call)."""
        pages = self.client.query_entities(query, parameters=parameters, select=select,
                                           results_per_page=page_size).by_page()
        while True:
            with self._call():
                page = next(pages, None)
                rows = list(page) if page is not None else None
            if rows is None:
                self._owner.stats.calls -= 1   # the end of the pages is no round trip
                return
            self._owner.stats.entities_read += len(rows)
            yield from rows

    def range(self, pk: str, low: str, high: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Yield the entities of one partition with low < RowKey < high, in key order."""
        return self.query("PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
                          {"pk": pk, "lo": low, "hi": high}, **kwargs)

    def submit(self, ops: list[tuple]) -> None:
        """Submit one entity-group transaction (all operations in one partition)."""
        with self._call():
            self.client.submit_transaction(ops)

    def upsert(self, entity: dict[str, Any], **kwargs: Any) -> None:
        with self._call():
            self.client.upsert_entity(entity, **kwargs)

    def update(self, entity: dict[str, Any], **kwargs: Any) -> None:
        with self._call():
            self.client.update_entity(entity, **kwargs)

    def create(self, entity: dict[str, Any]) -> None:
        with self._call():
            self.client.create_entity(entity)

    def delete(self, pk: str, rk: str, **kwargs: Any) -> None:
        try:
            with self._call():
                self.client.delete_entity(pk, rk, **kwargs)
        except ResourceNotFoundError:
            pass


class Tables:
    """The OMIS tables of one storage configuration, created on first use."""

    def __init__(self, settings: Settings) -> None:
        options: dict[str, Any] = {"retry_total": 2, "retry_backoff_factor": 0.2, "connection_timeout": 5,
                                   "read_timeout": 20}
        try:
            if settings.tables_endpoint:
                from azure.identity import DefaultAzureCredential  # heavy import: only when used

                self.service = TableServiceClient(endpoint=settings.tables_endpoint,
                                                  credential=DefaultAzureCredential(), **options)
            else:
                self.service = TableServiceClient.from_connection_string(settings.tables_connection_string,
                                                                         **options)
        except ValueError as exc:
            raise StorageUnavailable("Не удалось разобрать строку подключения к хранилищу "
                                     f"(OMIS_TABLES_CONNECTION_STRING): {exc}") from None
        self.prefix = settings.table_prefix
        self.stats = CallStats()
        self._ready: set[str] = set()
        self._lock = threading.Lock()
        self.requests = Table(self, REQUESTS_TABLE)
        self.mail = Table(self, MAIL_TABLE)

    def client(self, suffix: str) -> TableClient:
        """Return the SDK client of a table, creating the table the first time."""
        name = self.prefix + suffix
        if name not in self._ready:
            with self._lock, translate_errors():
                if name not in self._ready:
                    self.stats.calls += 1
                    try:
                        self.service.create_table(name)
                        logger.info("created table %s", name)
                    except ResourceExistsError:
                        pass
                    self._ready.add(name)
        return self.service.get_table_client(name)

    def forget(self, suffix: str) -> None:
        """Forget that a table exists (it vanished): the next use creates it again."""
        with self._lock:
            self._ready.discard(self.prefix + suffix)

    def ensure(self) -> list[str]:
        """Create every OMIS table that is missing; return their names."""
        for suffix in TABLE_SUFFIXES:
            self.forget(suffix)
            self.client(suffix)
        return [self.prefix + suffix for suffix in TABLE_SUFFIXES]

    def drop(self) -> None:
        """Delete every OMIS table (scenarios clean up their own tables with this)."""
        with translate_errors():
            for suffix in TABLE_SUFFIXES:
                self.forget(suffix)
                self.service.delete_table(self.prefix + suffix)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn transport and auth failures into StorageUnavailable with a readable message."""
    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise StorageUnavailable(f"Хранилище недоступно: {type(exc).__name__}") from exc
    except ClientAuthenticationError as exc:
        raise StorageUnavailable(f"Хранилище отказало в доступе: {exc.message}") from exc
    except HttpResponseError as exc:
        if exc.status_code is not None and exc.status_code >= 500:
            raise StorageUnavailable(f"Хранилище ответило ошибкой {exc.status_code}") from exc
        raise


def retrying(attempt_once: Callable[[int], T], *, busy_message: str, attempts: int = MAX_ATTEMPTS) -> T:
    """Run `attempt_once(attempt)` until it returns; after a conflict back off and run it again.

    `attempt_once` reads what it needs afresh and submits one transaction; it raises
    TableTransactionError (or ResourceModifiedError/ResourceExistsError) on a conflict, which is
    retried; anything else propagates. StorageBusy after `attempts` conflicts: nothing was written.
    """
    for attempt in range(attempts):
        try:
            return attempt_once(attempt)
        except (TableTransactionError, ResourceModifiedError, ResourceExistsError) as exc:
            if not is_conflict(exc):
                raise
            logger.info("conflict (%s), retrying (%d)", type(exc).__name__, attempt + 1)
            backoff(attempt)
    raise StorageBusy(busy_message)
