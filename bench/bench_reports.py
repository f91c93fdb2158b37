"""Benchmark the contractor's record and the export over a year of 2,000 requests.

Counted: Table Storage calls and entities read by one report (GET /api/reports and GET /reports
read the creation-time index c_ of the range, never history rows), the time to read them and
the time to work out the figures (CPU time: the machine is shared), the server time of the two
routes, and the export of the whole list as .xlsx and .csv.

Run: .venv/bin/python bench/bench_reports.py   (Windows: .venv\\Scripts\\python bench\\bench_reports.py)
Writes its figures to bench/results-reports.md.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import time
from datetime import date, datetime, timedelta, timezone

from common import ROOT, azurite_omis, machine

RESULTS = ROOT / "bench" / "results-reports.md"
COUNT = 2_000
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
START = datetime(2025, 12, 31, 21, 0, tzinfo=timezone.utc)     # 1 January 2026 in Moscow
LEVELS = {"normal": {"title": "Обычная", "accept": "4h", "update": "1d", "resolve": "5d", "clarify": "1d",
                     "clock": "work"},
          "urgent": {"title": "Срочная", "accept": "1h", "update": "4h", "resolve": "1d", "clock": "work"},
          "crash": {"title": "Авария", "accept": "15m", "update": "1h", "resolve": "8h", "clock": "24x7"}}
REPEAT, WARMUP = 15, 2


def seed(store, count: int, now: datetime) -> None:
    """Store `count` requests created from START to `now`, written row by row as the store lays them out."""
    from functions.deadlines import facts_of, record_change
    from functions.model import STATUS_ACCEPTED, STATUS_CLARIFY, STATUS_DONE, STATUS_REJECTED, HistoryEntry, Request
    from functions.storage import layout
    from functions.storage.requests import _with_facts

    rng = random.Random(20261201)
    requests = store.requests
    batch: list[tuple] = []
    for i in range(count):
        created = START + (now - START) * rng.random()
        level = rng.choices(("normal", "urgent", "crash"), (6, 3, 1))[0]
        request = Request(number=f"R-{i:05d}", position=f"Позиция {i % 40}", description="Проверка отчёта",
                          author="bench", status="заявка отправлена", comment="", comment_author="",
                          created_at=created, status_updated_at=created, updated_at=created, id=layout.new_id(),
                          level=level)
        facts = facts_of(request)
        at = created
        final = created + timedelta(hours=rng.expovariate(1 / 60))
        steps = [(STATUS_ACCEPTED, at + timedelta(minutes=rng.expovariate(1 / 180)))]
        if rng.random() < 0.15:
            steps.append((STATUS_CLARIFY, steps[-1][1] + timedelta(hours=rng.uniform(1, 24))))
            steps.append((STATUS_ACCEPTED, steps[-1][1] + timedelta(hours=rng.uniform(1, 48))))
        if final < now - timedelta(days=3) or rng.random() < 0.5:
            steps.append((STATUS_REJECTED if rng.random() < 0.1 else STATUS_DONE, max(final, steps[-1][1])))
        status = request.status
        for status, at in steps:
            if at > now:
                break
            facts = record_change(facts, at=at, status=status, source="mail", news=True)
            request = _with_facts(request, facts)
            request = Request(**{**request.__dict__, "status": status, "status_updated_at": at, "updated_at": at})
        breaches = ("accept",) if request.first_news_at and request.first_news_at - created > timedelta(hours=4) \
            else ()
        request = Request(**{**request.__dict__, "breaches": breaches})
        row = requests._with_deadline(layout.row_from_request(request, history_seq=1))
        entry = HistoryEntry(at=created, status=request.status, comment="", author="bench", source="api")
        ops = [("create", {"PartitionKey": layout.PARTITION, "RowKey": layout.lookup_key(request.number),
                           "Id": request.id, "Number": request.number}),
               ("create", row), *layout.index_ops(None, row),
               ("create", layout.history_row(request.id, 1, entry))]
        if len(batch) + len(ops) > 100:
            requests.table.submit(batch)
            batch = []
        batch.extend(ops)
    if batch:
        requests.table.submit(batch)


def timed(fn, repeat: int = REPEAT, warmup: int = WARMUP) -> tuple[float, float]:
    """Return the median wall time and the median CPU time of a call, in milliseconds."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    lines = [(f"Машина: {machine()}. Замер от {date.today().isoformat()}: {COUNT} заявок, созданных с 1 января "
             f"по {NOW:%Y-%m-%d}, отчёт за 12 месяцев 2026 года, три уровня (`work` с `Mon-Fri 09:00-18:00` и `24x7`), p50 по {REPEAT} вызовам "
             f"после {WARMUP} разогревочных."), ""]
    os.environ.update({"OMIS_SLA_LEVELS": json.dumps(LEVELS, ensure_ascii=False),
                       "OMIS_WORK_HOURS": "Mon-Fri 09:00-18:00", "OMIS_HOLIDAYS": "2026-01-01..2026-01-08",
                       "OMIS_TIMEZONE": "Europe/Moscow"})
    with azurite_omis("benchreports"):
        import function_app
        from functions import devhost
        from functions.reports.figures import build_report, month_range
        from functions.reports.record import load_report
        from functions.storage import get_store

        store = get_store()
        store.init()
        started = time.perf_counter()
        seed(store, COUNT, NOW)
        print(f"seeded {COUNT} requests in {time.perf_counter() - started:.1f} s", flush=True)
        settings = store.settings
        months = month_range("2026-01", "2026-12", NOW, settings.timezone)
        low, high = months.bounds(settings.timezone)

        store.stats.reset()
        report = load_report(store, start="2026-01", end="2026-12", level=None, now=NOW)
        calls, read = store.stats.calls, store.stats.entities_read
        print(f"one report: {calls} calls, {read} entities read, {report.total.created} requests", flush=True)
        rows = list(store.requests.created_between(low, high))
        read_ms, read_cpu = timed(lambda: list(store.requests.created_between(low, high)))
        _, figures_cpu = timed(lambda: build_report(rows, levels=settings.sla_levels,
                                                    default_level=settings.sla_default, calendar=settings.calendar,
                                                    tz=settings.timezone, now=NOW, months=months))
        routes, _ = devhost.collect(function_app.app)

        def get(path: str) -> None:
            resp = devhost.dispatch(routes, "GET", "http://localhost:7071" + path, {"Host": "localhost:7071"}, b"")
            assert resp.status_code == 200, (path, resp.status_code)

        api_ms, api_cpu = timed(lambda: get("/api/reports?from=2026-01&to=2026-12"))
        page_ms, page_cpu = timed(lambda: get("/reports?from=2026-01&to=2026-12"))
        store.stats.reset()
        get("/export/requests.xlsx")
        export_calls, export_read = store.stats.calls, store.stats.entities_read
        xlsx_ms, xlsx_cpu = timed(lambda: get("/export/requests.xlsx"), repeat=5, warmup=1)
        csv_ms, csv_cpu = timed(lambda: get("/export/requests.csv"), repeat=5, warmup=1)

    lines += [
        "| что | результат |", "|---|---|",
        (f"| один отчёт за год (`GET /api/reports` или `GET /reports`) | **{calls} обращения к хранилищу, прочитано "
        f"{read} строк** (индекс `c_`, ни одной строки истории) |"),
        f"| чтение этих строк из Azurite | {read_ms:.0f} мс (процессор {read_cpu:.0f} мс: разбор ответа SDK) |",
        f"| расчёт цифр по {report.total.created} заявкам (процессорное время) | {figures_cpu:.0f} мс |",
        f"| `GET /api/reports` целиком, серверное время | {api_ms:.0f} мс (процессор {api_cpu:.0f} мс) |",
        f"| `GET /reports` целиком (с графиками SVG), серверное время | {page_ms:.0f} мс (процессор {page_cpu:.0f} мс) |",
        (f"| `GET /export/requests.xlsx`, {COUNT} строк | {xlsx_ms:.0f} мс (процессор {xlsx_cpu:.0f} мс), "
        f"{export_calls} обращений, {export_read} строк |"),
        f"| `GET /export/requests.csv`, {COUNT} строк | {csv_ms:.0f} мс (процессор {csv_cpu:.0f} мс) |",
    ]
    text = "# Отчёты и выгрузка: результаты\n\n`bench/bench_reports.py`\n\n" + "\n".join(lines) + "\n"
    RESULTS.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
