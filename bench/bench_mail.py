"""Benchmark mail: parse throughput, and one 1,000-message pass from the fake Graph into Azurite.

Run: .venv/bin/python bench/bench_mail.py   (Windows: .venv\\Scripts\\python bench\\bench_mail.py)
Prints the figures and rewrites bench/results-mail.md with them.
"""
from __future__ import annotations

import json
import logging
import os
import time
from datetime import date, timedelta

from common import NOW, ROOT, azurite, machine, make_store, seed

CORPUS = ROOT / "tests" / "data" / "mail-public.json"
PROMISE_CORPUS = ROOT / "tests" / "data" / "mail-promises-public.json"
RESULTS = ROOT / "bench" / "results-mail.md"
PASS_SIZE = 1_000
PARSE_GOAL = 5_000  # messages per second on one core


def parse_throughput(repeat: int = 400, with_promises: bool = False) -> tuple[int, float]:
    """Parse the corpus mail `repeat` times over; return the message count and messages per second.

    With promises, each mail is read as the mail pass reads it: with its received time, the
    Moscow zone and a working calendar, over both corpus files. Timed in CPU seconds of this
    one-threaded process: the rate on one core, whatever else the shared machine runs.
    """
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from functions.mail.parse import parse_mail
    from functions.workhours import WorkingCalendar, parse_work_hours

    tz = ZoneInfo("Europe/Moscow")
    calendar = WorkingCalendar(tz, parse_work_hours("Mon-Fri 09:00-18:00"))
    files = [CORPUS, PROMISE_CORPUS] if with_promises else [CORPUS]
    mails = [(m["subject"], m["body"], datetime.fromisoformat(m["received"].replace("Z", "+00:00")))
             for path in files for case in json.loads(path.read_text("utf-8"))["cases"] for m in case["mail"]]
    options = (lambda at: {"received": at, "tz": tz, "calendar": calendar}) if with_promises else (lambda at: {})
    for subject, body, at in mails * 5:  # warm the regex caches
        parse_mail(subject, body, **options(at))
    messages = [(subject, body, options(at)) for subject, body, at in mails * repeat]
    started = time.process_time()
    for subject, body, kwargs in messages:
        parse_mail(subject, body, **kwargs)
    return len(messages), len(messages) / (time.process_time() - started)


class Counter:
    """Count calls of a function (and the time spent in them) by replacing it on its owner."""

    def __init__(self, owner: object, name: str) -> None:
        self.count = 0
        self.seconds = 0.0
        original = getattr(owner, name)

        def counting(*args, **kwargs):
            self.count += 1
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        setattr(owner, name, counting)


def mail_pass_figures() -> dict[str, float]:
    """Deliver 1,000 replies to 1,000 requests into the fake Graph and time one pass over them."""
    from azure.core.pipeline.transport import RequestsTransport

    from functions.mail import sync
    from functions.mail.graph import GraphMailClient, forget_sign_in_apps
    from functions.storage.tables import Table
    from tests.fakes.graph_server import FakeGraph

    with azurite() as conn, FakeGraph() as fake:
        os.environ["REQUESTS_CA_BUNDLE"] = fake.ca_bundle
        store = make_store(conn, "benchmail", **fake.env(OMIS_OUTLOOK_MAX_MESSAGES=str(PASS_SIZE)))
        seed(store, PASS_SIZE, breached=PASS_SIZE)   # all «заявка отправлена», two days old
        run = lambda: sync.process_mailbox(store=store, use_fake=False, now=NOW)  # noqa: E731
        run()   # warm sign-in and connections on the empty mailbox, then forget its place
        store.mail.set_state(sync.resume_state_name(GraphMailClient(store.settings).state_key), None)
        for i in range(PASS_SIZE):
            number = f"B-{i:06d}"
            fake.add_message("Inbox", f"RE: Заявка №{number}", f"Заявка №{number} принята в работу.\n\n"
                             "С уважением,\nИван Петров", NOW - timedelta(minutes=PASS_SIZE - i),
                             conversation_id=f"conv-{i}")
        transactions = Counter(Table, "submit")
        table_calls = Counter(RequestsTransport, "send")
        store.requests._ids.clear()   # as in a fresh process: each number is looked up (the worst case)
        store.stats.reset()
        started = time.perf_counter()
        report = run()
        wall = time.perf_counter() - started
        storage_share = table_calls.seconds / wall
        calls, read = store.stats.calls, store.stats.entities_read
        pairs = report.pairs_applied + report.pairs_duplicate
        started = time.perf_counter()
        idle = run()
        idle_ms = (time.perf_counter() - started) * 1000
        forget_sign_in_apps()
        assert report.read == PASS_SIZE and report.applied == PASS_SIZE, report
    return {"wall_s": wall, "per_message_ms": wall * 1000 / PASS_SIZE, "graph_calls": report.graph_calls,
            "pages": -(-PASS_SIZE // 50), "transactions_per_pair": transactions.count / pairs,
            "table_calls_per_pair": table_calls.count / pairs, "store_calls_per_pair": calls / pairs,
            "entities_per_pair": read / pairs, "idle_ms": idle_ms, "idle_calls": idle.graph_calls,
            "storage_share": storage_share}


def write_results(where: str, parse: dict[str, tuple[int, float]], figures: dict[str, float]) -> None:
    """Rewrite bench/results-mail.md with these figures."""
    RESULTS.write_text(f"""# Почта: замеры

`bench/bench_mail.py`, замер от {date.today():%Y-%m-%d}. Машина: {where}.

| что | результат | цель |
|---|---:|---|
| разбор писем (`parse_mail`, письма `mail-public.json` по кругу, {parse['plain'][0]} писем) | {parse['plain'][1]:,.0f} писем/с | — |
| разбор с обещанными сроками (время получения, часовой пояс, календарь; оба корпуса, {parse['promises'][0]} писем) | {parse['promises'][1]:,.0f} писем/с | ≥ {PARSE_GOAL:,} |
| проход по {PASS_SIZE} письмам (fake Graph → Azurite), время | {figures['wall_s']:.1f} с ({figures['per_message_ms']:.1f} мс на письмо) | — |
| запросов к Graph за этот проход | {figures['graph_calls']:.0f} | страницы ({figures['pages']:.0f}) + папка (1) |
| транзакций таблицы на применённую пару (письмо, заявка) | {figures['transactions_per_pair']:.2f} | 1 |
| обращений хранилища на пару (`Store.stats`), номер ищется заново | {figures['store_calls_per_pair']:.2f} | — |
| прочитано строк на пару | {figures['entities_per_pair']:.2f} | — |
| всех HTTP-запросов к Table Storage на пару, вместе с записью места в ящике | {figures['table_calls_per_pair']:.2f} | — |
| проход без новых писем | {figures['idle_ms']:.0f} мс, {figures['idle_calls']:.0f} запрос к Graph | — |

Разбор меряется в одном потоке по процессорному времени (`time.process_time`), то есть скорость
на одном ядре, сколько бы ни работало рядом на общей машине: сначала так, как его вызывали до обещанных сроков
(без времени получения), затем так, как его вызывает проход почты (с временем получения письма,
`Europe/Moscow` и рабочим календарём `Mon-Fri 09:00-18:00`).

Как считается: транзакции — вызовы `Table.submit` (одна пакетная транзакция на пару: строка
заявки, её индексы, запись истории, строка «±1» счётчиков и отметка «письмо применено» — её вставка
и есть проверка повтора: 409 значит «уже применено»); обращения хранилища — `Store.stats.calls`:
на пару это поиск номера (строка «номер → заявка»; процесс запоминает найденное, здесь память
очищена перед проходом, как в новом процессе), чтение строки заявки, транзакция и привязка
переписки к заявке (она в таблице почты, поэтому не в той же транзакции); HTTP-запросы — вызовы
транспорта azure-core, вместе с записью места в ящике в конце прохода.
Вход (msal) и соединения прогреты пустым проходом до замера. Из времени прохода
{figures['storage_share']:.0%} — ожидание ответов Azurite (в памяти, на той же машине; пакетная транзакция
в нём заметно дороже простого чтения). В Azure каждый запрос дороже, поэтому число запросов
важнее времени.

Повторить: `.venv/bin/python bench/bench_mail.py` (Windows: `.venv\\Scripts\\python bench\\bench_mail.py`);
скрипт печатает цифры и переписывает этот файл.
""", encoding="utf-8")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    where = machine()
    print("machine:", where)
    parse = {"plain": parse_throughput(), "promises": parse_throughput(with_promises=True)}
    print(f"parse_mail: {parse['plain'][0]} messages, {parse['plain'][1]:,.0f} messages/s")
    print(f"parse_mail with promises: {parse['promises'][0]} messages, {parse['promises'][1]:,.0f} messages/s "
          f"(goal: >= {PARSE_GOAL:,})")
    figures = mail_pass_figures()
    print(f"one pass of {PASS_SIZE} messages: {figures['wall_s']:.1f} s ({figures['per_message_ms']:.1f} ms/message), "
          f"{figures['graph_calls']:.0f} Graph calls (goal: {figures['pages']:.0f} pages + 1 folder), "
          f"{figures['transactions_per_pair']:.2f} table transactions per applied pair (goal: 1), "
          f"{figures['store_calls_per_pair']:.2f} storage calls and {figures['entities_per_pair']:.2f} entities "
          f"read per pair, {figures['table_calls_per_pair']:.2f} table HTTP calls per pair")
    print(f"time waiting for Azurite: {figures['storage_share']:.0%} of the pass")
    print(f"a pass with nothing new: {figures['idle_ms']:.0f} ms, {figures['idle_calls']:.0f} Graph call(s)")
    write_results(where, parse, figures)
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
