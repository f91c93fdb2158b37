"""Table Storage plumbing: clients, table names, key encoding and error translation."""
from __future__ import annotations

import base64
import logging
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator
from urllib.parse import quote

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, TableServiceClient

from .settings import Settings, get_settings

logger = logging.getLogger(__name__)

REQUESTS_TABLE = "requests"
MAIL_TABLE = "mail"
TABLE_SUFFIXES = (REQUESTS_TABLE, MAIL_TABLE)

_TS_DIGITS = 17
_TS_MAX = 10**_TS_DIGITS - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class StoreError(Exception):
    """Base of the data layer's own errors."""


class StorageUnavailable(StoreError):
    """Table Storage did not answer, or refused us; the message says so in Russian."""


class StorageBusy(StorageUnavailable):
    """Too many concurrent changes of the same rows: retry later (nothing was written)."""


def number_key(number: str) -> str:
    """Encode a (case-folded) request number for use inside a RowKey (no / \\ # ?)."""
    return quote(number.strip().casefold(), safe="-_.")


def ts_key(moment: datetime) -> str:
    """Encode an instant as zero-padded microseconds since 1970: text order is time order."""
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return str(max(0, micros)).zfill(_TS_DIGITS)


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
        key = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, UnicodeError):
        raise ValueError("неверный курсор") from None
    if not key:
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


def as_utc(value: datetime | None) -> datetime | None:
    """Return a plain aware UTC datetime (Table Storage gives its own subclass)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(value.timestamp(), timezone.utc).replace(microsecond=value.microsecond)


class _Clients:
    """The table clients for one storage configuration, tables created on first use."""

    def __init__(self, settings: Settings) -> None:
        options = {"retry_total": 2, "retry_backoff_factor": 0.2, "connection_timeout": 5, "read_timeout": 20}
        if settings.tables_endpoint:
            from azure.identity import DefaultAzureCredential  # heavy import: only when used

            self.service = TableServiceClient(endpoint=settings.tables_endpoint,
                                              credential=DefaultAzureCredential(), **options)
        else:
            self.service = TableServiceClient.from_connection_string(settings.tables_connection_string, **options)
        self.prefix = settings.table_prefix
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    def table(self, suffix: str) -> TableClient:
        name = self.prefix + suffix
        if name not in self._ready:
            with self._lock, translate_errors():
                if name not in self._ready:
                    try:
                        self.service.create_table(name)
                        logger.info("created table %s", name)
                    except ResourceExistsError:
                        pass
                    self._ready.add(name)
        return self.service.get_table_client(name)


_clients: dict[tuple, _Clients] = {}
_clients_lock = threading.Lock()


def table(suffix: str, settings: Settings | None = None) -> TableClient:
    """Return the client of one OMIS table, creating the table the first time."""
    settings = settings or get_settings()
    key = (settings.tables_connection_string, settings.tables_endpoint, settings.table_prefix)
    clients = _clients.get(key)
    if clients is None:
        with _clients_lock:
            clients = _clients.get(key)
            if clients is None:
                try:
                    clients = _Clients(settings)
                except ValueError as exc:
                    raise StorageUnavailable(
                        "Не удалось разобрать строку подключения к хранилищу "
                        f"(OMIS_TABLES_CONNECTION_STRING): {exc}") from None
                _clients[key] = clients
    return clients.table(suffix)


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
