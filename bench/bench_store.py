"""Benchmark the data layer: concurrent writers, storage calls per applied mail, list pages vs. size.

Run: .venv/bin/python bench/bench_store.py   (Windows: .venv\\Scripts\\python bench\\bench_store.py)
Writes the figures to bench/results-store.md.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import requests
from common import NOW, ROOT, azurite, cost, machine, make_store, p50_ms, seed

RESULTS = Path(__file__).with_name("results-store.md")
WRITES_EACH = 25            # each writer creates this many requests and changes each once


def serve(store) -> tuple[str, object]:
    """Serve the app on a free port with `store`'s settings as the process's; return its base URL."""
    import os

    from functions import devhost
    from functions.settings import reset_settings
    from functions.storage import reset_stores

    os.environ.update({"OMIS_TABLES_CONNECTION_STRING": store.settings.tables_connection_string,
                       "OMIS_TABLE_PREFIX": store.settings.table_prefix, "OMIS_SECRET_KEY": "bench"})
    reset_settings()
    reset_stores()
    sys.path.insert(0, str(ROOT))
    import function_app

    server = devhost.make_server(function_app.app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def writers(base: str, count: int, tag: str) -> dict[str, float]:
    """`count` threads each create WRITES_EACH requests and change each once, over HTTP; figures."""
    codes: dict[int, int] = {}
    lock = threading.Lock()

    def work(w: int) -> None:
        session = requests.Session()
        for i in range(WRITES_EACH):
            number = f"{tag}-{w:02d}-{i:03d}"
            for method, path, body in (("POST", "/api/requests", {"number": number}),
                                       ("POST", f"/api/requests/{number}/status", {"status": "принята в работу"})):
                code = session.request(method, base + path, json=body, timeout=60).status_code
                with lock:
                    codes[code] = codes.get(code, 0) + 1
        session.close()
    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(w,)) for w in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    total = sum(codes.values())
    return {"writers": count, "writes": total, "seconds": seconds, "per_second": total / seconds,
            "refused": sum(n for c, n in codes.items() if c >= 500), "codes": dict(sorted(codes.items()))}


def mail_calls(store) -> dict[str, int]:
    """Storage calls of applying one mail to one request: cold (number looked up) and warm, and a duplicate."""
    from functions.mail.sync import message_key

    store.add_request("MAIL-1", now=NOW)
    store.requests._ids.clear()          # a fresh process: the number is looked up too

    def apply(key: str):
        request_id = store.requests.resolve("MAIL-1")
        return store.apply_mail(request_id, message=message_key(key, None), status="принята в работу",
                                comment="взяли", received=NOW + timedelta(minutes=5), message_id=key, subject="RE")
    cold, _ = cost(store, lambda: apply("<c1@x>"))
    warm, _ = cost(store, lambda: apply("<c2@x>"))
    duplicate, _ = cost(store, lambda: apply("<c2@x>"))
    return {"cold": cold, "warm": warm, "duplicate": duplicate}


def list_figures(store, size: int) -> dict[str, object]:
    out: dict[str, object] = {"size": size}
    for name, query in (("updated", {}), ("deadline", {"sort": "deadline"}), ("breached", {"breached": True}),
                        ("status", {"status": "выполнена"})):
        calls, read = cost(store, lambda q=query: store.list_requests(limit=50, now=NOW, **q))
        out[name] = {"calls": calls, "entities": read,
                     "ms": p50_ms(lambda q=query: store.list_requests(limit=50, now=NOW, **q), repeat=15)}
    calls, read = cost(store, store.counts)
    out["counts"] = {"calls": calls, "entities": read}
    out["page_ms"] = page_ms(store)
    return out


def page_ms(store) -> float:
    """Return the server time of GET / (the list page, with counts) on these tables, as the host calls it."""
    import os

    import function_app
    from functions import devhost
    from functions.settings import reset_settings
    from functions.storage import reset_stores

    os.environ.update({"OMIS_TABLES_CONNECTION_STRING": store.settings.tables_connection_string,
                       "OMIS_TABLE_PREFIX": store.settings.table_prefix, "OMIS_SECRET_KEY": "bench"})
    reset_settings()
    reset_stores()
    routes, _ = devhost.collect(function_app.app)
    headers = {"Host": "localhost:7071"}
    return p50_ms(lambda: devhost.dispatch(routes, "GET", "http://localhost:7071/", headers, b""), repeat=15)


def cold_start() -> float:
    code = ("import time, sys; sys.path.insert(0, '.'); t = time.perf_counter(); import function_app; "
            "print((time.perf_counter() - t) * 1000)")
    runs = [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout) for _ in range(5)]
    return sorted(runs)[2]


def main() -> None:
    print(machine(), flush=True)
    figures: dict[str, object] = {}
    with azurite() as conn:
        store = make_store(conn, "benchw")
        base, server = serve(store)
        figures["writers"] = [writers(base, n, f"W{n}") for n in (1, 4, 16)]
        for row in figures["writers"]:
            print(row, flush=True)
        server.shutdown()   # type: ignore[attr-defined]
        figures["mail_calls"] = mail_calls(make_store(conn, "benchm"))
        print("mail calls", figures["mail_calls"], flush=True)
        small = make_store(conn, "benchs")
        seed(small, 100, breached=10)
        big = make_store(conn, "benchb")
        seconds = seed(big, 10_000, breached=100)
        print(f"seeded 10,000 in {seconds:.0f} s", flush=True)
        figures["lists"] = [list_figures(small, 100), list_figures(big, 10_000)]
        for row in figures["lists"]:
            print(json.dumps(row, ensure_ascii=False), flush=True)
    figures["cold_start_ms"] = cold_start()
    write(figures)


def write(figures: dict) -> None:  # type: ignore[type-arg]
    lines = [
        "# Бенчмарк: хранилище", "",
        f"`bench/bench_store.py`, замер от {date.today():%Y-%m-%d}. Машина: {machine()}.", "",
        "## Одновременные записи", "",
        (f"Каждый писатель через локальный хост (HTTP, `POST /api/requests` и `POST …/status`) создаёт "
        f"{WRITES_EACH} заявок и меняет статус каждой — все пишут в один раздел, каждый в свои заявки."), "",
        "| писателей | записей | записей/с | отказов 5xx | коды ответов |", "|---:|---:|---:|---:|---|",
    ]
    for row in figures["writers"]:
        lines.append(f"| {row['writers']} | {row['writes']} | {row['per_second']:.1f} | {row['refused']} | "
                     f"{row['codes']} |")
    calls = figures["mail_calls"]
    lines += ["", "## Применение письма к заявке", "",
              (f"Обращений к хранилищу на одно письмо × заявку: {calls['cold']} в новом процессе (номер ищется), "
              f"{calls['warm']} когда номер уже известен процессу, {calls['duplicate']} для повтора "
              "(отметка письма — первая операция транзакции: повтор узнаётся по её отказу)."), "",
              "## Страница списка", "",
              "| заявок | порядок | обращений | строк прочитано | p50, мс |", "|---:|---|---:|---:|---:|"]
    for size in figures["lists"]:
        for name in ("updated", "deadline", "breached", "status"):
            row = size[name]
            lines.append(f"| {size['size']} | {name} | {row['calls']} | {row['entities']} | {row['ms']:.1f} |")
        lines.append(f"| {size['size']} | счётчики по статусам | {size['counts']['calls']} | "
                     f"{size['counts']['entities']} | — |")
        lines.append(f"| {size['size']} | вся страница `GET /` (список и счётчики) | — | — | {size['page_ms']:.1f} |")
    lines += ["", (f"Холодный старт (`import function_app` сверх пустого интерпретатора, медиана 5): "
              f"{figures['cold_start_ms']:.0f} мс."), "",
              ("Время на Azurite растёт с таблицей при том же числе прочитанных строк: эмулятор перебирает всю "
              "таблицу на каждый запрос (см. bench/README.md). Повторить: `.venv/bin/python bench/bench_store.py`.")]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
