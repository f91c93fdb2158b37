"""Benchmark the list page: server time of GET / with 100 and with 10,000 stored requests.

The time is the app's own (dispatch through the function objects, as the host calls them:
store queries, counts, rendering), without a socket. Two sets of tables, with 100 and with
10,000 requests, are timed alternately; the 9,900 extra requests are older than the first
100, so both render the very same first page.

Run: .venv/bin/python bench/bench_pages.py   (Windows: .venv\\Scripts\\python bench\\bench_pages.py)
Writes its figures to bench/README.md, section «Страницы».
"""
from __future__ import annotations

import os
import re
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from common import ROOT, azurite_omis, machine, seed_requests

README = ROOT / "bench" / "README.md"
REPEAT, WARMUP = 200, 20
GOAL = 1.5


@dataclass
class Figures:
    """What one size of the store measured, in milliseconds (p50 unless named otherwise)."""

    total: float
    total_p90: float
    storage: float
    app: float
    point_read: float


class StorageClock:
    """Time spent inside the store calls the list page makes (wrapping them in place)."""

    def __init__(self) -> None:
        self.spent = 0.0

    def install(self) -> None:
        from functions import store

        for name in ("get_requests", "status_counts"):
            original = getattr(store, name)
            setattr(store, name, self._timed(original))

    def _timed(self, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.spent += (time.perf_counter() - started) * 1000
        return timed


def use_tables(prefix: str) -> None:
    """Point OMIS at one set of tables (settings are re-read, table clients stay cached)."""
    from functions.settings import get_settings, reset_settings

    os.environ["OMIS_TABLE_PREFIX"] = prefix
    reset_settings()
    get_settings()


def point_read_ms() -> float:
    """Return the time of one read by key of the counts row, in milliseconds."""
    from functions import store

    started = time.perf_counter()
    store._requests_table().get_entity(store.PARTITION, store.COUNTS_ROW)
    return (time.perf_counter() - started) * 1000


def measure() -> dict[int, Figures]:
    """Seed 100 requests in one set of tables and 10,000 in another; time GET / on both, alternating."""
    import function_app
    from functions import devhost

    routes, _ = devhost.collect(function_app.app)
    clock = StorageClock()
    clock.install()

    def get_root():
        return devhost.dispatch(routes, "GET", "http://localhost:7071/", {"Host": "localhost:7071"}, b"")

    now = datetime.now(timezone.utc)
    sizes = {100: "benchpages100", 10_000: "benchpages10k"}
    for size, prefix in sizes.items():
        use_tables(prefix)
        started = time.perf_counter()
        seed_requests(100, delayed=10, now=now)
        # The rest is older than the first 100, so both sizes render the very same first page.
        if size > 100:
            seed_requests(size - 100, delayed=500, now=now - timedelta(days=5), start_index=100)
        print(f"seeded {size:,} requests in {time.perf_counter() - started:.0f} s", flush=True)
    samples = {size: {"total": [], "storage": [], "point": []} for size in sizes}
    # Alternate the two sizes, so that a busy moment of the machine hits both alike.
    for round_no in range(WARMUP + REPEAT):
        for size, prefix in sizes.items():
            use_tables(prefix)
            clock.spent = 0.0
            started = time.perf_counter()
            resp = get_root()
            total = (time.perf_counter() - started) * 1000
            assert resp.status_code == 200, resp.status_code
            if round_no >= WARMUP:
                samples[size]["total"].append(total)
                samples[size]["storage"].append(clock.spent)
                samples[size]["point"].append(point_read_ms())
    figures = {}
    for size, got in samples.items():
        totals = sorted(got["total"])
        figures[size] = Figures(statistics.median(totals), totals[int(len(totals) * 0.9) - 1],
                                statistics.median(got["storage"]),
                                statistics.median(t - s for t, s in zip(got["total"], got["storage"], strict=True)),
                                statistics.median(got["point"]))
        f = figures[size]
        print(f"GET /, {size:>6} stored: p50 {f.total:.1f} ms (p90 {f.total_p90:.1f}); storage calls {f.storage:.1f} ms, "
              f"app's own work {f.app:.1f} ms; one read by key on Azurite {f.point_read:.1f} ms", flush=True)
    return figures


def section(figures: dict[int, Figures], where: str) -> str:
    """Return the «Страницы» section of bench/README.md."""
    small, big = figures[100], figures[10_000]
    ratio, app_ratio, point_ratio = big.total / small.total, big.app / small.app, big.point_read / small.point_read
    verdict = "цель выполнена" if ratio <= GOAL else "цель на Azurite не выполнена, см. ниже"
    rows = "".join(f"| {n:,} | {f.total:.1f} | {f.total_p90:.1f} | {f.storage:.1f} | {f.app:.1f} | {f.point_read:.1f} |\n"
                   .replace(",", " ") for n, f in figures.items())
    return (
        "## Страницы\n\n"
        "`bench/bench_pages.py`: серверное время `GET /` (первая страница списка, 50 строк, со счётчиками\n"
        "по статусам и отметками «Без ответа») — вызов функции приложения через `devhost.dispatch`, как её\n"
        f"вызывает хост, без сокета; p50 по {REPEAT} вызовам после {WARMUP} разогревочных. Два набора таблиц\n"
        "(100 и 10 000 заявок) в одном Azurite, вызовы чередуются, чтобы нагрузка машины влияла на оба\n"
        "одинаково; 9 900 добавочных заявок старше первых 100, так что отрисовывается одна и та же страница.\n\n"
        "| заявок | `GET /` p50, мс | p90, мс | из них хранилище, мс | работа приложения, мс | одно чтение строки в Azurite, мс |\n"
        "|---:|---:|---:|---:|---:|---:|\n" + rows +
        f"\nОтношение p50 `GET /` (10 000 / 100): **{ratio:.2f}** (цель ≤ {GOAL}) — {verdict}.\n"
        f"То же отношение для работы самого приложения (запрос минус ожидание хранилища): {app_ratio:.2f}.\n"
        f"Одно чтение строки по ключу в Azurite дорожает в {point_ratio:.2f} раза.\n\n"
        f"Машина: {where}. Замер от {datetime.now(timezone.utc):%Y-%m-%d}.\n\n"
        "Страница делает два обращения к хранилищу при любом числе заявок: запрос по диапазону индекса\n"
        "`u_…` (51 строка) и чтение строки счётчиков. В Table Storage их цена зависит от размера\n"
        "страницы, а не таблицы. Azurite устроен иначе: каждый запрос у него проходит по всей коллекции\n"
        "(LokiJS, `where` с предикатом), сортирует все подходящие строки и только потом берёт первые 51,\n"
        "и даже чтение по ключу замедляется с ростом таблицы — отсюда рост общего времени на эмуляторе.\n"
        "Поиск по тексту (`q`) и в Table Storage просматривает индекс, пока не наберёт страницу.\n"
    )


def write_section(text: str) -> None:
    """Put the section into bench/README.md, replacing an older one (other sections stay)."""
    old = README.read_text(encoding="utf-8") if README.exists() else "# Бенчмарки\n"
    pattern = re.compile(r"^## Страницы\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: text + "\n", old, count=1) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    README.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    where = machine()
    print("machine:", where)
    with azurite_omis("benchpages"):
        figures = measure()
    print(f"ratio 10,000 / 100: GET / {figures[10_000].total / figures[100].total:.2f} (goal <= {GOAL}), "
          f"app's own work {figures[10_000].app / figures[100].app:.2f}")
    write_section(section(figures, where))
    print(f"written: {README.relative_to(ROOT)}, section «Страницы»")


if __name__ == "__main__":
    main()
