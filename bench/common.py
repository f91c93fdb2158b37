"""Shared benchmark plumbing: a private in-memory Azurite, a Store on it, seeding, timing.

Benchmarks use only OMIS's public functions (the Store facade, the local host); what storage
costs is read from `Store.stats` (calls made, entities read), beside the times.
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.azurite import connection_string, free_port, start_azurite, stop_azurite  # noqa: E402

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


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
def azurite() -> Iterator[str]:
    """Start a private in-memory Azurite; yield its connection string."""
    port = free_port()
    proc = start_azurite(port)
    try:
        yield connection_string(port)
    finally:
        stop_azurite(proc)


@contextmanager
def azurite_omis(prefix: str = "bench") -> Iterator[str]:
    """Start a private in-memory Azurite and point this process's OMIS (get_store, the app) at it."""
    from functions.settings import reset_settings
    from functions.storage import reset_stores

    with azurite() as conn:
        os.environ.update({"OMIS_TABLES_CONNECTION_STRING": conn, "OMIS_TABLE_PREFIX": prefix,
                           "OMIS_SECRET_KEY": "bench", "OMIS_DELAY_MINUTES": "60"})
        reset_settings()
        reset_stores()
        yield conn


def make_store(conn: str, prefix: str, **env: str):
    """Return an initialised Store on its own tables (settings built, not read from os.environ)."""
    from functions.settings import load_settings
    from functions.storage import Store

    settings = load_settings({"OMIS_TABLES_CONNECTION_STRING": conn, "OMIS_TABLE_PREFIX": prefix,
                              "OMIS_SECRET_KEY": "bench", "OMIS_DELAY_MINUTES": "60", **env})
    store = Store(settings)
    store.init()
    return store


def seed(store, count: int, *, start: int = 0, breached: int = 0, now: datetime = NOW,
         threads: int = 6) -> float:
    """Add `count` requests through Store.add_request; return the seconds it took.

    The first `breached` were created two days before `now` and heard nothing since (their
    accept deadline has passed); of the rest, every other one is done (no deadline) and the
    others are fresh (created within the last half hour).
    """
    from functions.storage import StorageUnavailable
    from functions.storage.counts import fold_counts

    def one(i: int) -> None:
        number = f"B-{start + i:06d}"
        if i < breached:
            created, done = now - timedelta(days=2, minutes=i), None
        elif i % 2:
            created, done = now - timedelta(days=3, minutes=i), now - timedelta(days=2, minutes=i)
        else:
            created, done = now - timedelta(seconds=i % 1800), None
        for attempt in range(5):     # a loaded emulator drops a connection now and then: try again
            try:
                # Only a retry asks what the dropped attempt left behind (each read scans Azurite's table).
                if attempt == 0 or store.get_request(number, with_history=False) is None:
                    store.add_request(number, f"Позиция {i % 40}", "Замер", author="bench", source="api",
                                      now=created, confirm_similar=True)
                if done is not None and (attempt == 0 or store.get_request(number, with_history=False).status
                                         != "выполнена"):
                    store.update_status(number, "выполнена", "", author="bench", now=done)
                return
            except StorageUnavailable:
                time.sleep(2 ** attempt)
        raise RuntimeError(f"could not seed {number}")

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    fold_counts(store.requests)
    return time.perf_counter() - started


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


def cost(store, fn: Callable[[], object]) -> tuple[int, int]:
    """Run a call once; return the storage calls it made and the entities it read."""
    store.stats.reset()
    fn()
    return store.stats.calls, store.stats.entities_read
