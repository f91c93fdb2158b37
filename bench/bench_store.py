"""Benchmark the data layer: list page cost vs. stored requests, the delay query, cold start.

Run: .venv/bin/python bench/bench_store.py   (Windows: .venv\\Scripts\\python bench\\bench_store.py)
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

from common import NOW, ROOT, azurite_omis, machine, p50_ms, seed_requests


class CountingPages:
    """Count the entities a query hands back, by wrapping the table client's query."""

    def __init__(self) -> None:
        self.entities = 0

    def install(self) -> None:
        from functions import store

        original = getattr(store._range, "__wrapped__", store._range)

        def counting(*args, **kwargs):
            for entity in original(*args, **kwargs):
                self.entities += 1
                yield entity

        counting.__wrapped__ = original
        store._range = counting


def list_page_figures() -> dict[int, float]:
    from functions import store

    figures = {}
    stored = 0
    counter = CountingPages()
    counter.install()
    for target in (100, 1_000, 10_000):
        seed_requests(target - stored, delayed=0, now=NOW, start_index=stored)
        stored = target
        counter.entities = 0
        store.get_requests(limit=50)
        read = counter.entities
        figures[target] = p50_ms(lambda: store.get_requests(limit=50))
        print(f"first page (50 rows), {target:>6} stored: p50 {figures[target]:.1f} ms, "
              f"{read} entities read", flush=True)
    return figures


def delayed_figures() -> tuple[float, int, int]:
    from functions import store

    seed_requests(10_000, delayed=100, now=NOW, start_index=20_000)
    counter = CountingPages()
    counter.install()
    found = store.get_delayed_requests(minutes=60, now=NOW)
    read = counter.entities
    ms = p50_ms(lambda: store.get_delayed_requests(minutes=60, now=NOW), repeat=15)
    return ms, len(found), read


def cold_start_ms() -> float:
    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        return (time.perf_counter() - started) * 1000

    base = statistics.median(run("pass") for _ in range(5))
    full = statistics.median(run("import function_app") for _ in range(5))
    return full - base


def main() -> None:
    print("machine:", machine())
    with azurite_omis("benchstore"):
        pages = list_page_figures()
        print(f"ratio 10,000 / 100: {pages[10_000] / pages[100]:.2f} (goal <= 1.5)")
    with azurite_omis("benchdelay"):
        ms, found, read = delayed_figures()
        print(f"get_delayed_requests, 10,000 stored / 100 delayed: p50 {ms:.1f} ms, "
              f"{found} found, {read} entities read")
    print(f"import function_app (cold start, over a bare interpreter): {cold_start_ms():.0f} ms")


if __name__ == "__main__":
    main()
