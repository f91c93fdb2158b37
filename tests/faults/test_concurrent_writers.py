"""Many people at once through the real local host: no change lost, none answered done and not done.

The app is served by the local host (devhost: a ThreadingHTTPServer, one thread per connection)
on a free port, in front of the session's Azurite. The writers are threads, each with its own
HTTP connection, released together by a barrier before every step. Every change of a request is
one ETag-guarded transaction and no row is shared between requests (the status counts are
blind-written deltas), so:

- writers of distinct requests never contend for a row: every answer is 2xx, never 503;
- writers of one request do contend, and each conflict is decided again from a fresh read: a change
  answered 200 (the API) or 303 (the card's form) is in the history exactly once, the history's
  order is the order the changes took effect (their sequence in storage), the request ends in the
  status applied last, and a refused change is answered 409 and is nowhere to be found.

Each scenario runs ROUNDS times on fresh requests: one lucky interleaving proves little. The last
test makes the refusal certain (a rival change lands before each attempt) to pin its answer.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests

from functions.model import STATUS_ACCEPTED, STATUS_DONE, STATUSES
from functions.storage import Store
from functions.storage.layout import PARTITION
from functions.storage.tables import MAX_ATTEMPTS
from functions.web import signing

from .conftest import serving

ROUNDS = 3
DISTINCT_WRITERS = 16
SAME_REQUEST_WRITERS = 8


@dataclass(frozen=True)
class Answer:
    """One HTTP answer a writer got."""

    writer: int
    step: str
    status: int
    body: dict[str, Any]   # the JSON answer; a form's page as {"page": html}


@pytest.fixture
def host(store: Store) -> Iterator[str]:
    """The Function App on the real local host, on fresh tables; yield its base URL."""
    with serving() as (address, port):
        yield f"http://{address}:{port}"


def author(writer: int) -> str:
    return f"writer-{writer}@example.org"


def run_writers(count: int, steps: Callable[[int, requests.Session, threading.Barrier], list[Answer]]
                ) -> list[Answer]:
    """Run `count` writers at once, each with its own connection; return every answer they got."""
    barrier = threading.Barrier(count, timeout=60)
    answers: list[Answer] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def work(writer: int) -> None:
        with requests.Session() as session:
            try:
                got = steps(writer, session, barrier)
            except BaseException as exc:  # noqa: BLE001 - reported below
                with lock:
                    failures.append(exc)
                barrier.abort()
                return
        with lock:
            answers.extend(got)

    threads = [threading.Thread(target=work, args=(w,), name=f"writer-{w}", daemon=True) for w in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer did not finish"
    assert not failures, failures
    return answers


def send(session: requests.Session, barrier: threading.Barrier, writer: int, step: str, method: str, url: str,
         payload: dict[str, Any]) -> Answer:
    """Wait until every writer is ready, then send one JSON request as this writer."""
    barrier.wait()
    resp = session.request(method, url, json=payload, timeout=60,
                           headers={"X-MS-CLIENT-PRINCIPAL-NAME": author(writer)})
    return Answer(writer, step, resp.status_code, resp.json())


def stored_history(store: Store, number: str) -> list[dict[str, Any]]:
    """Return a request's history rows as stored, in the order they were written (their sequence)."""
    request_id = store.requests.resolve(number)
    prefix = f"h_{request_id}_"
    return list(store.tables.requests.range(PARTITION, prefix, prefix + "~"))


def distinct_request_steps(host: str, round_no: int, writer: int, session: requests.Session,
                           barrier: threading.Barrier) -> list[Answer]:
    """Create a request of this writer's own, then change it three times."""
    number = f"Р{round_no}-{writer}"
    url = f"{host}/api/requests/{quote(number, safe='')}"
    return [
        send(session, barrier, writer, "create", "POST", f"{host}/api/requests",
             {"number": number, "position": "Котельная"}),
        send(session, barrier, writer, "accept", "POST", url + "/status",
             {"status": STATUS_ACCEPTED, "comment": f"взяли {number}"}),
        send(session, barrier, writer, "edit", "PATCH", url, {"position": f"Насосная {writer}"}),
        send(session, barrier, writer, "done", "POST", url + "/status",
             {"status": STATUS_DONE, "comment": f"готово {number}"}),
    ]


def test_sixteen_writers_of_distinct_requests_at_once_all_get_2xx(host: str, store: Store):
    for round_no in range(ROUNDS):
        answers = run_writers(DISTINCT_WRITERS, partial(distinct_request_steps, host, round_no))

        assert len(answers) == 4 * DISTINCT_WRITERS
        refused = [(a.writer, a.step, a.status, a.body.get("error")) for a in answers if not 200 <= a.status < 300]
        assert refused == [], f"round {round_no}"
        for writer in range(DISTINCT_WRITERS):
            number = f"Р{round_no}-{writer}"
            request = store.get_request(number)
            assert (request.status, request.position) == (STATUS_DONE, f"Насосная {writer}")
            assert [(h.status, h.author) for h in request.history] == [
                (STATUSES[0], author(writer)), (STATUS_ACCEPTED, author(writer)),
                (STATUS_ACCEPTED, author(writer)), (STATUS_DONE, author(writer))]
        assert store.counts()[STATUS_DONE] == DISTINCT_WRITERS * (round_no + 1)
    listed = requests.get(f"{host}/api/requests?status={quote(STATUS_DONE)}&limit=100", timeout=30).json()
    assert len(listed["items"]) == DISTINCT_WRITERS * ROUNDS and listed["next"] is None


def status_of(writer: int, round_no: int) -> str:
    return STATUSES[(writer + round_no) % len(STATUSES)]


def one_request_steps(host: str, secret: str, number: str, round_no: int, writer: int, session: requests.Session,
                      barrier: threading.Barrier) -> list[Answer]:
    """Change the status of the one request, with this writer's comment: every fourth by the card's form."""
    comment = f"изменение {writer} раунда {round_no}"
    if writer % 4 != 3:
        return [send(session, barrier, writer, "api", "POST", f"{host}/api/requests/{quote(number, safe='')}/status",
                     {"status": status_of(writer, round_no), "comment": comment})]
    fields = {"status": status_of(writer, round_no), "comment": comment, "confirm_reopen": "1",
              "csrf_token": signing.make_csrf_token(secret, author(writer))}
    barrier.wait()
    resp = session.post(f"{host}/requests/{quote(number, safe='')}/status", data=fields, timeout=60,
                        allow_redirects=False, headers={"X-MS-CLIENT-PRINCIPAL-NAME": author(writer)})
    return [Answer(writer, "form", resp.status_code, {"page": resp.text})]


def test_eight_writers_of_one_request_at_once_are_applied_in_order_or_refused_with_409(
        host: str, store: Store, omis_env: dict[str, str]):
    writers = SAME_REQUEST_WRITERS
    for round_no in range(ROUNDS):
        number = f"ОДНА-{round_no}"
        store.add_request(number, position="Котельная")

        answers = run_writers(writers, partial(one_request_steps, host, omis_env["OMIS_SECRET_KEY"], number,
                                               round_no))

        assert sorted(a.writer for a in answers) == list(range(writers))
        codes = {"api": {200, 409}, "form": {303, 409}}
        assert all(a.status in codes[a.step] for a in answers), [(a.writer, a.step, a.status) for a in answers]
        assert all(a.body["error"] for a in answers if a.step == "api" and a.status == 409)
        assert all("Ничего не сохранено" in a.body["page"] for a in answers if a.step == "form" and a.status == 409)
        ok = {a.writer for a in answers if a.status in (200, 303)}
        # Eight fit the retry budget: each attempt loses only to another writer's commit, at most seven.
        assert writers <= MAX_ATTEMPTS and ok == set(range(writers)), f"round {round_no}"
        request = store.get_request(number)
        changes = request.history[1:]                       # after «Заявка зарегистрирована.»
        # Every change answered as done is in the history, once; a refused one is not there at all.
        assert sorted(int(h.comment.split()[-3]) for h in changes) == sorted(ok)
        for h in changes:
            writer = int(h.comment.split()[-3])
            assert h.status == status_of(writer, round_no) and h.author == author(writer)
        # The history's order is the order the changes took effect: their sequence in storage.
        written = stored_history(store, number)[1:]
        assert [(h.author, h.comment) for h in changes] == [(e["Author"], e["Comment"]) for e in written]
        times = [h.at for h in request.history]
        assert times == sorted(times) and len(set(times)) == len(times)
        # The request is as the last applied change left it.
        last = changes[-1]
        assert (request.status, request.comment_author, request.updated_at) == (last.status, last.author, last.at)
        assert last.comment.endswith(request.comment)       # a reopening prefixes a note of its own
        moved = [h for before, h in zip(request.history, changes, strict=False) if h.status != before.status]
        assert request.status_updated_at == (moved[-1].at if moved else request.created_at)


def test_a_change_that_keeps_losing_to_other_writers_is_refused_with_409_and_applies_nothing(
        call, store: Store, omis_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    # Deterministic, where the writers above only make it likely: before each of our attempts is
    # submitted, another person's change of the same request lands first (through a Store of its
    # own), so every attempt meets a stale ETag, as long as the retry budget lasts.
    store.add_request("К-1")
    rival = Store(store.settings)
    table = store.requests.table
    real_submit = table.submit
    rival_changes: list[str] = []

    def submit_after_a_rival(ops: list[tuple]) -> None:
        if any(op[1]["RowKey"].startswith("r_") for op in ops):
            rival_changes.append(f"соседняя правка {len(rival_changes) + 1}")
            rival.update_comment("К-1", rival_changes[-1], author="сосед")
        real_submit(ops)

    monkeypatch.setattr(table, "submit", submit_after_a_rival)
    resp = call("POST", "/api/requests/%D0%9A-1/status", json.dumps({"status": STATUS_DONE, "comment": "моё"}),
                {"Content-Type": "application/json"})
    assert resp.status_code == 409
    assert "одновременных изменений" in json.loads(resp.get_body())["error"]
    fields = {"status": STATUS_DONE, "comment": "моё из формы",
              "csrf_token": signing.make_csrf_token(omis_env["OMIS_SECRET_KEY"], "Инженер")}
    resp = call("POST", "/requests/%D0%9A-1/status", urlencode(fields),
                {"Content-Type": "application/x-www-form-urlencoded"})
    page = resp.get_body().decode("utf-8")
    assert resp.status_code == 409 and "Ничего не сохранено" in page and "моё из формы" in page
    monkeypatch.undo()

    request = store.get_request("К-1")
    assert request.status == STATUSES[0]
    assert [h.comment for h in request.history[1:]] == rival_changes     # every rival's change, none of ours
    assert len(rival_changes) == 2 * MAX_ATTEMPTS
