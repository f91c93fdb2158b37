"""Benchmark a reminder pass: 100 delayed requests among 100 and among 10,000 stored ones.

Two kinds of pass: a dry run (read the delay index, build the digest, log it) and a real pass
against a fake Bot API on loopback (send the digest, note the reminder on each request).
Counted: the entities the pass read from the delay index (range queries: the delayed requests,
then the claim re-reads their delay rows to take them with their ETags) and point reads of
request rows.

Run: .venv/bin/python bench/bench_reminders.py   (Windows: .venv\\Scripts\\python bench\\bench_reminders.py)
Writes its figures to bench/results-reminders.md.
"""
from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta

from common import NOW, ROOT, azurite_omis, machine, seed_requests

from tests.fakes.telegram_server import FakeTelegram

RESULTS = ROOT / "bench" / "results-reminders.md"
DRY_REPEAT, SEND_REPEAT, WARMUP = 20, 10, 2
DELAYED = 100
STEP = timedelta(minutes=2)   # each real pass runs 2 minutes after the last (repeat interval: 1 minute)


@dataclass
class Figures:
    """One store size: p50 wall times in ms and what one pass read."""

    dry_ms: float
    send_ms: float
    record_ms: float
    index_entities: int
    point_reads: int
    reminded: int
    messages: int


class Counter:
    """Count entities read by the store (range-query rows, point reads) and time spent recording."""

    def __init__(self) -> None:
        self.index_entities = 0
        self.point_reads = 0
        self.record_ms = 0.0

    def install(self) -> None:
        from functions import store

        original_range, original_read, original_claim = store._range, store._read_row, store.claim_reminders

        def timed_claim(requests, at):
            started = time.perf_counter()
            try:
                return original_claim(requests, at)
            finally:
                self.record_ms += (time.perf_counter() - started) * 1000

        store.claim_reminders = timed_claim

        def counting_range(*args, **kwargs):
            for entity in original_range(*args, **kwargs):
                self.index_entities += 1
                yield entity

        def counting_read(number):
            self.point_reads += 1
            return original_read(number)

        store._range, store._read_row = counting_range, counting_read

    def reset(self) -> None:
        self.index_entities = self.point_reads = 0
        self.record_ms = 0.0


class Clock:
    """The benchmark's own clock: every real pass is a little later than the last."""

    def __init__(self) -> None:
        self.now = NOW

    def tick(self):
        self.now += STEP
        return self.now


def measure_size(counter: Counter, clock: Clock, telegram: FakeTelegram) -> Figures:
    """Time dry runs and real passes over what is stored now."""
    from functions.alerts.remind import notify_delays

    dry_now = clock.tick()   # past the repeat interval of the last real pass
    for _ in range(WARMUP):
        notify_delays(send=False, now=dry_now)
    dry = []
    for _ in range(DRY_REPEAT):
        started = time.perf_counter()
        report = notify_delays(send=False, now=dry_now)
        dry.append((time.perf_counter() - started) * 1000)
        assert len(report.numbers) == DELAYED, report.summary()
    for _ in range(WARMUP):
        notify_delays(now=clock.tick())
    sent, recording = [], []
    before = len(telegram.messages)
    for _ in range(SEND_REPEAT):
        counter.reset()
        started = time.perf_counter()
        report = notify_delays(now=clock.tick())
        sent.append((time.perf_counter() - started) * 1000)
        recording.append(counter.record_ms)
        assert report.sent and report.reminded == DELAYED, report.summary()
    return Figures(statistics.median(dry), statistics.median(sent), statistics.median(recording),
                   counter.index_entities, counter.point_reads, report.reminded,
                   (len(telegram.messages) - before) // SEND_REPEAT)


def measure() -> dict[int, Figures]:
    """Seed 100 delayed requests, measure; add 9,900 that are not delayed, measure again."""
    from functions import settings

    figures: dict[int, Figures] = {}
    counter, clock = Counter(), Clock()
    with azurite_omis("benchremind"), FakeTelegram() as telegram:
        os.environ.update(telegram.settings_env(OMIS_DELAY_MINUTES="120", OMIS_ALERT_REPEAT_MINUTES="1"))
        settings.reset_settings()
        counter.install()
        seed_requests(DELAYED, delayed=DELAYED, now=NOW)
        figures[DELAYED] = measure_size(counter, clock, telegram)
        show(DELAYED, figures[DELAYED])
        started = time.perf_counter()
        seed_requests(10_000 - DELAYED, delayed=0, now=NOW, start_index=DELAYED)
        print(f"(seeded {10_000 - DELAYED:,} more in {time.perf_counter() - started:.0f} s)", flush=True)
        figures[10_000] = measure_size(counter, clock, telegram)
        show(10_000, figures[10_000])
    return figures


def show(stored: int, f: Figures) -> None:
    print(f"{stored:>6} stored, {DELAYED} delayed: dry run p50 {f.dry_ms:.1f} ms; real pass p50 {f.send_ms:.1f} ms "
          f"({f.messages} message(s), {f.reminded} reminded; recording {f.record_ms:.0f} ms); "
          f"read per pass: {f.index_entities} index entities, "
          f"{f.point_reads} point reads", flush=True)


def write_results(figures: dict[int, Figures], where: str) -> None:
    """Write bench/results-reminders.md."""
    rows = "".join(f"| {n:,} | {DELAYED} | {f.index_entities} | {f.point_reads} | {f.dry_ms:.1f} | {f.send_ms:.1f} "
                   f"| {f.record_ms:.1f} |\n"
                   .replace(",", " ") for n, f in figures.items())
    small, big = figures[DELAYED], figures[10_000]
    follows = big.index_entities == small.index_entities <= 2 * DELAYED
    RESULTS.write_text(f"""# Бенчмарк: проход напоминаний

`bench/bench_reminders.py`: один проход `notify_delays` при 100 и при 10 000 заявок в хранилище,
из них просрочено ровно 100 (`bench.common.seed_requests`: остальные закрыты или свежие).
Пробный запуск (`send=False`) читает индекс задержек и собирает дайджест; настоящий проход
вдобавок до отправки отмечает напоминание на заявках (`claim_reminders`: строки индекса
задержек перечитываются одним запросом и отмечаются пакетными транзакциями по 50 заявок с
проверкой ETag) и отправляет дайджест в поддельный Bot API на 127.0.0.1 ({big.messages} сообщения
по лимиту 4096 символов). p50 по {DRY_REPEAT} пробным и {SEND_REPEAT} настоящим
проходам после {WARMUP} разогревочных.

| заявок в хранилище | просрочено | прочитано строк индекса задержек за настоящий проход | точечных чтений | пробный запуск, p50 мс | настоящий проход, p50 мс | из него отметки, мс |
|---:|---:|---:|---:|---:|---:|---:|
{rows}
Цель — чтение следует за числом просроченных (100), а не за числом заявок (10 000):
**{"выполнена" if follows else "НЕ выполнена"}** — настоящий проход читает {big.index_entities} строк индекса
`d_…` (два запроса по диапазону: найти просроченные и взять их для отметки) при любом числе заявок.
Отметка — {(DELAYED + 49) // 50} пакетные транзакции: {small.record_ms:.0f} мс при {DELAYED} заявках,
{big.record_ms:.0f} мс при 10 000 (Azurite просматривает всю таблицу на каждый запрос, поэтому на
эмуляторе время растёт с таблицей; число операций — нет). Отправка — {big.messages} HTTP-вызова.

Машина: {where}. Замер от {date.today():%Y-%m-%d}.

Повторить: `.venv/bin/python bench/bench_reminders.py`
(Windows: `.venv\\Scripts\\python bench\\bench_reminders.py`); нужен `npm ci` (Azurite).
Файл перезаписывается.
""", encoding="utf-8")


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("functions").setLevel(logging.ERROR)  # the dry runs log every digest
    where = machine()
    print(f"Machine: {where}", flush=True)
    figures = measure()
    write_results(figures, where)
    print(f"Written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
