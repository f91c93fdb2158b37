"""The contractor's record on Azurite: the creation-time index, GET /api/reports and GET /reports."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

MSK = ZoneInfo("Europe/Moscow")
LEVELS = json.dumps({
    "normal": {"title": "Обычная", "accept": "4h", "update": "1d", "resolve": "2d", "clock": "work"},
    "crash": {"title": "Авария", "accept": "15m", "update": "1h", "resolve": "8h", "clock": "24x7"},
})


def msk(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=MSK).astimezone(timezone.utc)


def body(resp):
    return json.loads(resp.get_body())


@pytest.fixture
def levels(configure):
    configure(OMIS_SLA_LEVELS=LEVELS, OMIS_WORK_HOURS="Mon-Fri 09:00-18:00")


def put(store, number, created, status="заявка отправлена", status_at=None, level="normal", **fields):
    at = status_at or created
    return store.import_request(number, status=status, level=level, created_at=created, status_updated_at=at,
                                updated_at=at, **fields)


@pytest.fixture
def record(levels, call):
    """Four requests from January to March 2026 whose figures are worked out by hand below."""
    from functions.storage import get_store

    store = get_store()
    put(store, "C-1", msk("2026-02-02T10:00"), "выполнена", msk("2026-02-02T18:00"), level="crash")
    put(store, "C-2", msk("2026-02-03T10:00"), "отклонена", msk("2026-02-03T19:00"), level="crash")
    put(store, "N-1", msk("2026-03-02T09:00"), "принята в работу", msk("2026-03-02T10:00"))
    put(store, "N-2", msk("2026-01-15T12:00"))
    # Archived on Tuesday: accept (Thu 16:00) and resolve (Mon 12:00) had passed by then.
    store.set_archived("N-2", True, now=msk("2026-01-20T12:00"))
    return store


def test_created_between_reads_only_the_index_rows_of_the_range(record):
    record.stats.reset()
    found = list(record.requests.created_between(msk("2026-01-01T00:00"), msk("2026-02-03T00:00")))
    assert [r.number for r in found] == ["N-2", "C-1"]
    assert found[0].archived and found[0].breaches == ("accept", "resolve")
    assert record.stats.entities_read == 2 and record.stats.calls == 1


def test_api_reports_gives_the_figures_worked_out_by_hand(record, call):
    resp = call("GET", "/api/reports?from=2026-01&to=2026-03")
    assert resp.status_code == 200
    data = body(resp)
    assert (data["from"], data["to"], data["level"], data["timezone"]) == ("2026-01", "2026-03", None, "Europe/Moscow")
    assert [(m["month"], m["created"], m["done"], m["rejected"], m["open"]) for m in data["months"]] == [
        ("2026-01", 1, 0, 0, 1), ("2026-02", 2, 1, 1, 0), ("2026-03", 1, 0, 0, 1)]
    total = data["total"]
    # First news: C-1 480, C-2 540 (24x7 minutes), N-1 60 working minutes; N-2 had none.
    assert total["first_news"] == {"count": 3, "median_minutes": 480, "p90_minutes": 528}
    assert total["final_status"] == {"count": 2, "median_minutes": 510, "p90_minutes": 534}
    # On time: C-1 only; late: C-2 (after 8 h), N-1 (resolve Wed 09:00 passed), N-2 (archived after it).
    assert total["resolve"] == {"on_time": 1, "late": 3, "share": 0.25}
    assert total["breaches"] == {"accept": 3, "update": 1, "resolve": 3, "promise": 0, "clarify": 0}
    assert [(g["level"], g["title"], g["clock"], g["created"]) for g in data["levels"]] == [
        ("normal", "Обычная", "work", 2), ("crash", "Авария", "24x7", 2)]
    longest = data["longest"]
    # N-1 waits still; N-2 waited until archived: Thu 12–18, Fri, Mon, Tue 9–12 in working minutes.
    assert [w["number"] for w in longest] == ["N-1", "N-2", "C-2", "C-1"]
    assert [w["waited_minutes"] for w in longest[1:]] == [360 + 540 + 540 + 180, 540, 480]
    assert longest[0]["open"] is True and longest[0]["archived"] is False and longest[1]["archived"] is True
    assert longest[3]["created_at"] == "2026-02-02T07:00:00Z"


def test_api_reports_of_one_level(record, call):
    data = body(call("GET", "/api/reports?from=2026-02&to=2026-02&level=crash"))
    assert data["level"] == "crash" and [g["level"] for g in data["levels"]] == ["crash"]
    assert data["total"]["created"] == 2 and len(data["months"]) == 1


@pytest.mark.parametrize(("query", "field"), [
    ("from=2026-13", "from"), ("from=2026-05&to=2026-01", "from"), ("level=nope", "level"),
    ("from=2020-01&to=2026-12", "to"),
])
def test_api_reports_refuses_bad_parameters_with_400(levels, call, query, field):
    resp = call("GET", "/api/reports?" + query)
    assert resp.status_code == 400 and field in body(resp)["fields"]


def test_reports_page_draws_the_charts_and_the_tables(record, call):
    resp = call("GET", "/reports?from=2026-01&to=2026-03")
    assert resp.status_code == 200
    html = resp.get_body().decode("utf-8")
    assert '<a href="/reports" aria-current="page">Отчёты</a>' in html
    assert html.count("<svg") == 4
    assert '<title id="chart-requests-t">Заявки по месяцам</title>' in html
    assert "февраль 2026: выполнено 1" in html and ">25 %<" in html
    assert '<a href="/requests/N-2">' in html


@pytest.mark.parametrize("path", ["/reports?level=crash", "/?level=crash"])
def test_the_level_filter_offers_every_level_and_keeps_the_chosen_one(record, call, path):
    html = call("GET", path).get_body().decode("utf-8")
    assert '<option value="">все уровни</option>' in html
    assert '<option value="normal">Обычная</option>' in html
    assert '<option value="crash" selected>Авария</option>' in html


@pytest.mark.parametrize("path", ["/reports", "/"])
def test_with_one_level_there_is_no_level_filter(call, path):
    assert 'name="level"' not in call("GET", path).get_body().decode("utf-8")


def test_reports_page_refuses_a_bad_month_with_400(levels, call):
    resp = call("GET", "/reports?from=март")
    assert resp.status_code == 400 and "ГГГГ-ММ" in resp.get_body().decode("utf-8")


def test_reports_page_without_requests_says_so(levels, call):
    html = call("GET", "/reports").get_body().decode("utf-8")
    assert "За этот период заявок не создано." in html and "<svg" not in html


def test_a_year_of_requests_is_read_in_a_few_calls(levels, call):
    from functions.storage import get_store

    store = get_store()
    start = msk("2025-01-01T10:00")
    for i in range(120):
        put(store, f"Y-{i:03d}", start + timedelta(days=3 * i), "выполнена", start + timedelta(days=3 * i, hours=5))
    store.stats.reset()
    data = body(call("GET", "/api/reports?from=2025-01&to=2025-12"))
    assert data["total"]["created"] == 120      # every third day from 1 January: the last on 24 December
    assert store.stats.entities_read == data["total"]["created"]
    assert store.stats.calls <= 3
