"""Report figures (functions/reports/figures.py) against tables worked out by hand."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from functions.deadlines import Duration, ServiceLevel
from functions.model import Request, ValidationError
from functions.reports.figures import Month, MonthRange, build_report, month_range, outcome, percentile
from functions.workhours import WorkingCalendar, parse_work_hours

MSK = ZoneInfo("Europe/Moscow")
CALENDAR = WorkingCalendar(MSK, parse_work_hours("Mon-Fri 09:00-18:00"))
LEVELS = {
    "normal": ServiceLevel("normal", "Обычная", "work", accept=Duration(4, "h"), update=Duration(1, "d"),
                           resolve=Duration(2, "d")),
    "crash": ServiceLevel("crash", "Авария", "24x7", accept=Duration(15, "m"), update=Duration(1, "h"),
                          resolve=Duration(8, "h")),
}


def msk(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=MSK).astimezone(timezone.utc)


def request(number: str, created: datetime, status: str = "заявка отправлена", *, level: str = "normal",
            status_at: datetime | None = None, first_news: datetime | None = None, last_news: datetime | None = None,
            breaches: tuple[str, ...] = (), pauses: tuple[tuple[datetime, datetime], ...] = (),
            archived: bool = False, updated: datetime | None = None, due: datetime | None = None) -> Request:
    return Request(number=number, position="", description="", author="t", status=status, comment="",
                   comment_author="", created_at=created, status_updated_at=status_at or created,
                   updated_at=updated or status_at or created, id=number, level=level, due=due,
                   first_news_at=first_news, last_news_at=last_news or first_news, breaches=breaches,
                   pauses=pauses, archived=archived)


def report(requests, now, first="2026-01", last="2026-03", level=None):
    return build_report(requests, levels=LEVELS, default_level="normal", calendar=CALENDAR, tz=MSK, now=now,
                        months=MonthRange(Month.parse(first), Month.parse(last)), level=level)


NOW = msk("2026-03-20T12:00")


# ----- percentiles and ranges ------------------------------------------------------------

@pytest.mark.parametrize(("values", "share", "expected"), [
    ([1, 2, 3, 4], 0.5, 2.5),
    ([4, 1, 3, 2], 0.5, 2.5),
    (list(range(1, 11)), 0.9, 9.1),
    ([5], 0.9, 5),
    ([10, 20], 0.9, 19),
    ([], 0.5, None),
])
def test_percentile_interpolates_between_closest_ranks(values, share, expected):
    found = percentile(values, share)
    assert found == expected if expected is None else found == pytest.approx(expected)


def test_default_range_is_the_twelve_months_up_to_the_current_one_in_the_time_zone():
    # 31 December 21:30 UTC is already January in Moscow.
    found = month_range(None, None, datetime(2026, 12, 31, 21, 30, tzinfo=timezone.utc), MSK)
    assert (str(found.first), str(found.last)) == ("2026-02", "2027-01")
    assert len(found.months()) == 12


def test_one_end_given_makes_a_range_of_twelve_months():
    assert [str(m) for m in (month_range("2025-05", None, NOW, MSK).first, month_range("2025-05", None, NOW, MSK).last)] \
        == ["2025-05", "2026-04"]
    assert str(month_range(None, "2025-05", NOW, MSK).first) == "2024-06"


def test_range_bounds_are_local_midnights_in_utc():
    start, end = MonthRange(Month(2026, 2), Month(2026, 3)).bounds(MSK)
    assert start == datetime(2026, 1, 31, 21, 0, tzinfo=timezone.utc)
    assert end == datetime(2026, 3, 31, 21, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("start", "end", "field"), [
    ("2026-13", None, "from"), ("26-01", None, "from"), ("2026-1", None, "from"), (None, "2026-00", "to"),
    ("2026-05", "2026-04", "from"), ("2020-01", "2026-01", "to"), ("２０２６-01", None, "from"),
    ("9999-12", None, "from"), ("1899-12", None, "from"),
])
def test_bad_range_names_the_field(start, end, field):
    with pytest.raises(ValidationError) as caught:
        month_range(start, end, NOW, MSK)
    assert field in caught.value.fields


# ----- months cut in OMIS_TIMEZONE ------------------------------------------------------

def test_a_request_belongs_to_the_month_of_its_creation_in_the_time_zone():
    late_january = request("A", datetime(2026, 1, 31, 20, 59, tzinfo=timezone.utc))    # 23:59 MSK
    early_february = request("B", datetime(2026, 1, 31, 21, 0, tzinfo=timezone.utc))   # 00:00 MSK
    found = report([late_january, early_february], NOW)
    assert [(g.key, g.created) for g in found.months] == [("2026-01", 1), ("2026-02", 1), ("2026-03", 0)]


def test_requests_outside_the_range_and_of_other_levels_are_left_out():
    inside = request("A", msk("2026-02-10T10:00"), level="crash")
    before = request("B", msk("2025-12-31T23:59"), level="crash")
    other = request("C", msk("2026-02-10T10:00"))
    found = report([inside, before, other], NOW, level="crash")
    assert found.total.created == 1
    assert [g.key for g in found.levels] == ["crash"]


# ----- the 24x7 clock -------------------------------------------------------------------

def test_crash_level_figures_count_every_minute():
    created = msk("2026-03-07T10:00")      # a Saturday: the 24x7 clock does not care
    on_time = request("A", created, "выполнена", level="crash", first_news=created + timedelta(minutes=30),
                      status_at=created + timedelta(hours=8))
    late = request("B", created, "отклонена", level="crash", first_news=created + timedelta(minutes=90),
                   status_at=created + timedelta(hours=9))
    found = report([on_time, late], NOW)
    total = found.total
    assert (total.created, total.done, total.rejected, total.open) == (2, 1, 1, 0)
    assert (total.first_news.count, total.first_news.median, total.first_news.p90) == (2, 60, 84)
    assert (total.resolution.median, total.resolution.p90) == (510, 534)
    assert (total.on_time, total.late, total.on_time_share) == (1, 1, 0.5)
    # Both answered after the 15-minute accept deadline; the rejection came after resolve.
    assert (total.breaches["accept"], total.breaches["resolve"]) == (2, 1)


# ----- the work clock -------------------------------------------------------------------

def test_work_level_counts_working_minutes_over_a_weekend():
    created = msk("2026-03-06T17:00")      # Friday, an hour before the end of the day
    item = outcome(request("A", created, "выполнена", first_news=msk("2026-03-09T10:00"),
                           status_at=msk("2026-03-10T12:00")), LEVELS["normal"], CALENDAR, MSK, NOW)
    assert item.first_news == 60 + 60                 # Fri 17–18, Mon 9–10
    assert item.resolution == 60 + 540 + 180          # Fri 17–18, Mon whole day, Tue 9–12
    assert item.on_time is True                       # resolve 2d: Tue 17:00


def test_a_clarify_pause_moves_the_resolve_deadline():
    created = msk("2026-03-02T09:00")      # Monday; resolve 2d → Wednesday 09:00
    pause = (msk("2026-03-02T10:00"), msk("2026-03-02T14:00"))    # 240 working minutes
    with_pause = request("A", created, "выполнена", first_news=msk("2026-03-02T10:00"),
                         status_at=msk("2026-03-04T12:00"), pauses=(pause,))
    without = request("B", created, "выполнена", first_news=msk("2026-03-02T10:00"),
                      status_at=msk("2026-03-04T12:00"))
    assert outcome(with_pause, LEVELS["normal"], CALENDAR, MSK, NOW).on_time is True     # deadline Wed 13:00
    assert outcome(without, LEVELS["normal"], CALENDAR, MSK, NOW).on_time is False


def test_due_set_by_an_engineer_overrides_the_level():
    created = msk("2026-03-02T09:00")
    item = request("A", created, "выполнена", status_at=msk("2026-03-11T12:00"), due=msk("2026-03-12T18:00"))
    assert outcome(item, LEVELS["normal"], CALENDAR, MSK, NOW).on_time is True


# ----- open requests, breaches, the longest waits ---------------------------------------

def test_open_requests_count_late_once_resolve_has_passed_and_breaches_add_up():
    now = msk("2026-03-20T12:00")
    overdue = request("A", now - timedelta(hours=10), "принята в работу", level="crash",
                      first_news=now - timedelta(hours=9, minutes=50), breaches=("accept",))
    fresh = request("B", now - timedelta(hours=1), level="crash")
    archived = request("C", msk("2026-03-02T09:00"), "принята в работу", first_news=msk("2026-03-02T09:30"),
                       breaches=("resolve",), archived=True, updated=msk("2026-03-05T09:00"))
    found = report([overdue, fresh, archived], now)
    total = found.total
    assert (total.open, total.on_time, total.late) == (3, 0, 2)
    assert dict(total.breaches) == {"accept": 2, "update": 1, "resolve": 2, "promise": 0, "clarify": 0}
    assert [g.breaches["accept"] for g in found.levels] == [0, 2]


def test_longest_waits_run_to_the_final_status_to_archiving_or_to_now():
    now = msk("2026-03-20T12:00")
    done = request("DONE", msk("2026-03-01T10:00"), "выполнена", level="crash", status_at=msk("2026-03-03T10:00"))
    still = request("OPEN", msk("2026-03-19T12:00"), level="crash")
    archived = request("ARCH", msk("2026-03-10T12:00"), level="crash", archived=True, updated=msk("2026-03-13T12:00"))
    found = report([still, done, archived], now)
    assert [(o.request.number, o.waited, o.open) for o in found.longest] == [
        ("ARCH", 3 * 24 * 60, True), ("DONE", 2 * 24 * 60, False), ("OPEN", 24 * 60, True)]


def test_a_level_no_longer_configured_counts_under_the_default_level():
    found = report([request("A", msk("2026-02-02T10:00"), level="gone")], NOW)
    assert [(g.key, g.created) for g in found.levels] == [("normal", 1), ("crash", 0)]


def test_no_requests_give_empty_figures():
    found = report([], NOW)
    assert found.total.created == 0
    assert found.total.first_news.median is None and found.total.on_time_share is None
    assert len(found.months) == 3 and found.longest == ()
