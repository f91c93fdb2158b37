"""Benchmark the reminder pass: 100 breached requests among 100 and among 10,000 stored.

A pass reads the deadline index before now (k_ rows), so what it reads should follow the
breached requests, not the table. Dry runs build the digest only; real passes also claim the
reminders in storage and send the digest to a fake Bot API on 127.0.0.1.

Run: .venv/bin/python bench/bench_reminders.py   (Windows: .venv\\Scripts\\python bench\\bench_reminders.py)
Writes the figures to bench/results-reminders.md.
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from common import NOW, ROOT, azurite, machine, make_store, seed

sys.path.insert(0, str(ROOT))
from tests.fakes.telegram_server import FakeTelegram

RESULTS = Path(__file__).with_name("results-reminders.md")
BREACHED = 100
DRY, REAL = 10, 5
REPEAT_MINUTES = 1


@dataclass
class Figures:
    stored: int
    index_rows: int
    entities: int
    calls: int
    dry_ms: float
    real_ms: float
    messages: int


def measure(store, stored: int, telegram: FakeTelegram) -> Figures:
    from functions.alerts.remind import notify

    now = NOW
    dry = []
    for _ in range(DRY):
        started = time.perf_counter()
        report = notify(store=store, now=now, send=False)
        dry.append((time.perf_counter() - started) * 1000)
        assert len(report.numbers) == BREACHED, report.summary()
    real = []
    before = len(telegram.messages)
    for _ in range(REAL):
        # Past the repeat interval (1 minute here): every breached request is due again, while the
        # fresh ones (created in the last half hour, accept after 60 minutes) stay within their deadline.
        now += timedelta(minutes=REPEAT_MINUTES + 1)
        started = time.perf_counter()
        report = notify(store=store, now=now)
        real.append((time.perf_counter() - started) * 1000)
        assert report.sent and report.reminded == BREACHED, report.summary()
    return Figures(stored, report.index_rows, report.entities_read, report.calls, statistics.median(dry),
                   statistics.median(real), (len(telegram.messages) - before) // REAL)


def main() -> None:
    print(machine(), flush=True)
    rows = []
    with azurite() as conn, FakeTelegram() as telegram:
        env = {**telegram.settings_env(), "OMIS_ALERT_REPEAT_MINUTES": str(REPEAT_MINUTES)}
        for stored in (BREACHED, 10_000):
            store = make_store(conn, f"benchr{stored}", **env)
            seconds = seed(store, stored, breached=BREACHED)
            print(f"seeded {stored} in {seconds:.0f} s", flush=True)
            rows.append(measure(store, stored, telegram))
            print(rows[-1], flush=True)
    lines = [
        "# Бенчмарк: проход напоминаний", "",
        (f"`bench/bench_reminders.py`: проход `notify` при {BREACHED} и при 10 000 заявок в хранилище, из них у "
        f"{BREACHED} прошёл срок ответа (остальные закрыты или свежие). Пробный запуск (`--dry-run`) читает "
        "индекс сроков и собирает сводку; настоящий проход вдобавок до отправки отмечает напоминания "
        "(пакетные транзакции по 50 заявок с проверкой ETag строки индекса) и отправляет сводку в поддельный "
        f"Bot API на 127.0.0.1; интервал повтора — {REPEAT_MINUTES} мин, и каждый настоящий проход идёт на "
        f"{REPEAT_MINUTES + 1} мин позже предыдущего, так что каждый раз напоминает о тех же {BREACHED} заявках. "
        f"p50 по {DRY} пробным и {REAL} настоящим проходам."), "",
        ("| заявок | просрочено | строк индекса сроков | всего строк прочитано | обращений к хранилищу | "
        "пробный, p50 мс | настоящий, p50 мс | сообщений Telegram |"),
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in rows:
        lines.append(f"| {f.stored} | {BREACHED} | {f.index_rows} | {f.entities} | {f.calls} | {f.dry_ms:.1f} | "
                     f"{f.real_ms:.1f} | {f.messages} |")
    lines += ["", ("Цель — чтение следует за числом просроченных, а не заявок: строк индекса сроков "
              f"{rows[0].index_rows} и {rows[1].index_rows}. «Всего строк» добавляет постоянное: строку отпечатка "
              "уровней и строки счётчиков по статусам, которые проход сворачивает. Время на Azurite растёт с "
              "таблицей при том же числе строк (эмулятор перебирает всю таблицу на каждый запрос)."), "",
              f"Машина: {machine()}. Замер от {date.today():%Y-%m-%d}.", "",
              "Повторить: `.venv/bin/python bench/bench_reminders.py`."]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
