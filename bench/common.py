"""Shared benchmark plumbing: a private in-memory Azurite, OMIS settings, fast seeding, timing."""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.azurite import connection_string, free_port, start_azurite, stop_azurite  # noqa: E402


def machine() -> str:
    """Describe the machine the figures were measured on."""
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        mem_text = f", {mem:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        mem_text = ""
    return (f"{platform.machine()}, {os.cpu_count()} cores{mem_text}, Python {platform.python_version()}, "
            f"Azurite 3.35.0 in memory on 127.0.0.1")


@contextmanager
def azurite_omis(prefix: str = "bench") -> Iterator[str]:
    """Start a private Azurite and point OMIS at it; yield the connection string."""
    port = free_port()
    proc = start_azurite(port)
    conn = connection_string(port)
    os.environ.update({"OMIS_TABLES_CONNECTION_STRING": conn, "OMIS_TABLE_PREFIX": prefix,
                       "OMIS_SECRET_KEY": "bench", "OMIS_DELAY_MINUTES": "60"})
    from functions import settings

    settings.reset_settings()
    try:
        yield conn
    finally:
        stop_azurite(proc)


def seed_requests(count: int, delayed: int, now: datetime, start_index: int = 0) -> None:
    """Store `count` requests the way add_request does, in batched transactions.

    `delayed` of them changed status more than a day before `now`; the others are done
    (final) or fresh, so they are not delayed.
    """
    from functions import store
    from functions.model import DEFAULT_STATUS, STATUS_DONE, HistoryEntry

    table = store._requests_table()
    batch: list[tuple] = []
    counts = dict.fromkeys(store.STATUSES, 0)
    for i in range(start_index, start_index + count):
        if i - start_index < delayed:
            at, status = now - timedelta(days=2, minutes=i), DEFAULT_STATUS
        elif i % 2:
            at, status = now - timedelta(days=3, seconds=i), STATUS_DONE
        else:
            at, status = now - timedelta(seconds=i % 1800), DEFAULT_STATUS  # fresh: under 30 min
        number = f"B-{i:06d}"
        row = {"PartitionKey": store.PARTITION, "RowKey": "r_" + store.number_key(number), "Number": number,
               "Position": f"Позиция {i % 40}", "Description": "Проверка производительности", "Author": "bench",
               "Status": status, "Comment": "", "CommentAuthor": "", "CreatedAt": at, "StatusUpdatedAt": at,
               "UpdatedAt": at, "CommentAt": at, "HistorySeq": 1}
        entry = HistoryEntry(at=at, status=status, comment="", author="bench", source="api")
        ops = [("create", row), *store._index_ops(None, row), ("create", store._history_row(row, 1, entry))]
        counts[status] += 1
        if len(batch) + len(ops) > 100:
            table.submit_transaction(batch)
            batch = []
        batch.extend(ops)
    if batch:
        table.submit_transaction(batch)
    old = store.status_counts()
    table.upsert_entity({"PartitionKey": store.PARTITION, "RowKey": store.COUNTS_ROW,
                         **{f"S{i}": old[s] + counts[s] for i, s in enumerate(store.STATUSES)}})


def p50_ms(fn: Callable[[], object], repeat: int = 30, warmup: int = 3) -> float:
    """Return the median wall time of a call, in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
