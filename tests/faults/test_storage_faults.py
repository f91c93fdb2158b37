"""Storage goes away and comes back: the host, a mail pass and a reminder pass (issue 7, item 1).

Storage is the real Azurite behind a TcpProxy: `cut()` resets every connection and refuses
new ones, as a stopped Azurite does; `restore()` brings it back with its data.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
import requests

from functions.alerts.remind import notify
from functions.storage import Store
from tests.fakes.graph_server import FakeGraph
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.telegram_server import FakeTelegram

from .conftest import current_store, serving

ACCEPTED = "принята в работу"


@pytest.fixture
def host(proxied_store: Store) -> Iterator[str]:
    """Serve the Function App with the local host (the real HTTP server) in a thread; yield its URL."""
    with serving() as (address, port):
        yield f"http://{address}:{port}"


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=30, allow_redirects=False)


def post_json(url: str, payload: dict) -> requests.Response:
    return requests.post(url, json=payload, timeout=30)


def test_host_answers_503_while_storage_is_down_and_200_once_it_is_back(
        host: str, storage_proxy: TcpProxy, proxied_store: Store):
    proxied_store.add_request("С-1", position="Котельная")
    assert [get(host + path).status_code for path in ("/", "/healthz", "/api/requests")] == [200, 200, 200]

    storage_proxy.cut()

    for path in ("/", "/requests", "/requests/%D0%A1-1", "/mail/unmatched"):
        page = get(host + path)
        assert page.status_code == 503, path
        assert page.headers["Content-Type"].startswith("text/html")
        assert "Хранилище недоступно" in page.text and "Traceback" not in page.text, path
    health = get(host + "/healthz")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    for response in (get(host + "/api/requests"), get(host + "/api/requests/%D0%A1-1"),
                     post_json(host + "/api/requests", {"number": "С-2"})):
        assert response.status_code == 503
        assert response.json() == {"error": "Хранилище временно недоступно, повторите позже."}

    storage_proxy.restore()

    assert get(host + "/healthz").json() == {"status": "ok"}
    listing = get(host + "/")
    assert listing.status_code == 200 and "С-1" in re.sub(r"<[^>]+>", "", listing.text)
    assert get(host + "/api/requests/%D0%A1-2").status_code == 404   # the refused POST stored nothing
    assert post_json(host + "/api/requests", {"number": "С-2"}).status_code == 201
    assert [r.number for r in proxied_store.list_requests().items] == ["С-2", "С-1"]


# -- a mail pass -------------------------------------------------------------------------------

RECEIVED = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=2)


def deliver(fake: FakeGraph, numbers: list[str]) -> None:
    for i, number in enumerate(numbers):
        fake.add_message("Inbox", f"RE: Заявка №{number}", f"Заявка №{number} принята в работу.",
                         RECEIVED + dt.timedelta(minutes=i))


def mail_entries(number: str) -> int:
    return sum(h.source == "mail" for h in current_store().get_request(number).history)


@pytest.mark.parametrize("lose_answer", [False, True], ids=["cut-before-4th-change", "4th-change-answer-lost"])
def test_mail_pass_cut_by_storage_fails_clearly_and_the_next_pass_applies_the_rest_once(
        mail_env: FakeGraph, storage_proxy: TcpProxy, cli_main, capsys, lose_answer: bool):
    numbers = [f"Х-{i}" for i in range(6)]
    for number in numbers:
        current_store().add_request(number, now=RECEIVED - dt.timedelta(days=1))
    deliver(mail_env, numbers)
    cut = storage_proxy.cut_at("$batch", after=3, lose_answer=lose_answer)  # one transaction per message

    assert cli_main(["mail"]) == 1

    assert cut.is_set()
    failed = capsys.readouterr()
    assert "Ошибка: Хранилище недоступно" in failed.err and "Traceback" not in failed.err + failed.out
    storage_proxy.restore()
    stored_before = 4 if lose_answer else 3      # a lost answer still means a stored change

    assert cli_main(["mail"]) == 0

    report = capsys.readouterr().out
    assert "Писем прочитано: 6" in report
    assert f"Писем применено к заявкам: {6 - stored_before}\n" in report
    assert f"Писем уже применённых раньше (пропущены): {stored_before}\n" in report
    assert [mail_entries(n) for n in numbers] == [1] * 6
    assert current_store().counts()[ACCEPTED] == 6
    assert cli_main(["mail"]) == 0 and "Писем прочитано: 0" in capsys.readouterr().out


def test_storage_down_stops_mail_and_reminders_before_graph_or_telegram_is_called(
        mail_env: FakeGraph, storage_proxy: TcpProxy, telegram: FakeTelegram, configure, cli_main, capsys):
    configure(**telegram.settings_env())
    current_store().add_request("Н-1", now=RECEIVED - dt.timedelta(days=1))
    deliver(mail_env, ["Н-1"])
    storage_proxy.cut()

    assert cli_main(["run"]) == 1

    err = capsys.readouterr().err
    assert "Хранилище недоступно" in err and "Azurite" in err and "Traceback" not in err
    assert mail_env.graph_calls("/messages/delta") == [] and telegram.calls == []
    storage_proxy.restore()
    assert cli_main(["run"]) == 0
    assert mail_entries("Н-1") == 1 and len(telegram.messages) == 1


# -- a reminder pass ---------------------------------------------------------------------------

def test_storage_cut_while_reminding_never_sends_a_reminder_twice(
        proxied_store: Store, storage_proxy: TcpProxy, telegram: FakeTelegram, configure, cli_main, capsys):
    configure(**telegram.settings_env())
    # Created 3 h ago with no news: the default level's accept deadline (OMIS_DELAY_MINUTES, 60) has passed.
    current_store().add_request("Н-2", now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3))
    cut = storage_proxy.cut_at("$batch")     # the pass's first write: the claim of the reminder

    first = cli_main(["notify"])
    storage_proxy.restore()
    second = cli_main(["notify"])
    third = cli_main(["notify"])

    assert cut.is_set()
    out, err = capsys.readouterr()
    assert (first, second, third) == (1, 0, 0)
    assert "Хранилище недоступно" in err
    assert "напомнено 1" in out and "уже напоминали недавно 1" in out
    assert [m.text.count("<b>Н-2</b>") for m in telegram.messages] == [1]
    assert current_store().get_request("Н-2").last_reminded_at is not None


def test_storage_cut_after_a_failed_send_delays_the_reminder_one_interval_and_never_doubles_it(
        proxied_store: Store, storage_proxy: TcpProxy, telegram: FakeTelegram, configure):
    configure(**telegram.settings_env(), OMIS_ALERT_REPEAT_MINUTES="60")
    t0 = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.timezone.utc)
    current_store().add_request("Н-3", now=t0)            # accept deadline t0 + 60 min
    telegram.server_error()                               # the send fails ...
    cut = storage_proxy.cut_at("$batch", after=1)         # ... and so does giving the claim back

    failed = notify(now=t0 + dt.timedelta(hours=2))
    storage_proxy.restore()
    soon = notify(now=t0 + dt.timedelta(hours=2, minutes=10))
    later = notify(now=t0 + dt.timedelta(hours=3))

    assert cut.is_set() and failed.failed == 1 and not failed.ok
    assert (soon.reminded, soon.skipped_repeat) == (0, 1)   # still noted: late, not twice
    assert later.reminded == 1 and len(telegram.messages) == 1
