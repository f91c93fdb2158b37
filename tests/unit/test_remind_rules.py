"""The pure rules of a reminder pass: repeat interval, reminder time, part-by-part delivery, summary."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from functions.alerts.digest import build_digest
from functions.alerts.remind import ReminderReport, _deliver, is_reminder_time, recently_reminded
from functions.model import DEFAULT_STATUS, Request
from functions.settings import load_settings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)   # Thursday 15:00 in Moscow


def request(number: str, minutes_ago: int = 120, position: str = "", reminded_ago: int | None = None) -> Request:
    changed = NOW - timedelta(minutes=minutes_ago)
    return Request(number=number, position=position, description="", author="Инженер", status=DEFAULT_STATUS,
                   comment="", comment_author="", created_at=changed, status_updated_at=changed,
                   updated_at=changed,
                   last_reminded_at=None if reminded_ago is None else NOW - timedelta(minutes=reminded_ago))


def test_never_reminded_is_due() -> None:
    assert not recently_reminded(request("1"), NOW, 60)


def test_reminded_within_the_interval_is_not_due_after_it_is() -> None:
    assert recently_reminded(request("1", reminded_ago=59), NOW, 60)
    assert not recently_reminded(request("1", reminded_ago=60), NOW, 60)


def test_timer_drift_of_seconds_does_not_skip_a_tick() -> None:
    almost = replace(request("1"), last_reminded_at=NOW - timedelta(minutes=60) + timedelta(seconds=4))
    assert not recently_reminded(almost, NOW, 60)


def test_reminder_time_follows_work_hours_and_holidays() -> None:
    hours = load_settings({"OMIS_WORK_HOURS": "Mon-Fri 09:00-18:00"})
    assert is_reminder_time(NOW, hours)                                    # Thu 15:00
    assert not is_reminder_time(NOW + timedelta(hours=4), hours)           # Thu 19:00
    holiday = load_settings({"OMIS_WORK_HOURS": "Mon-Fri 09:00-18:00", "OMIS_HOLIDAYS": "2026-11-26"})
    assert not is_reminder_time(NOW, holiday)
    only_holidays = load_settings({"OMIS_HOLIDAYS": "2026-11-26"})
    assert not is_reminder_time(NOW, only_holidays)
    assert is_reminder_time(NOW + timedelta(days=1), only_holidays)


def test_each_request_counts_as_delivered_with_the_part_that_carried_it() -> None:
    due = [request(f"N-{i:02d}", minutes_ago=200 - i, position="п" * 190) for i in range(40)]
    text = build_digest([(r, 100.0) for r in due], now=NOW, tz=timezone.utc, public_url=None)
    answers = iter([True, False])
    sent: list[str] = []

    def transport(part: str) -> bool:
        sent.append(part)
        return next(answers)

    accepted, rejected = _deliver(text, due, transport)
    assert len(sent) == 2 and accepted and rejected
    assert all(f"<b>{r.number}</b>" in sent[0] for r in accepted)
    assert not any(f"<b>{r.number}</b>" in sent[0] for r in rejected)
    assert len(accepted) + len(rejected) == 40


def test_everything_is_delivered_when_every_part_is_accepted() -> None:
    due = [request("A&B"), request("<1>")]
    text = build_digest([(r, 100.0) for r in due], now=NOW, tz=timezone.utc, public_url=None)
    accepted, rejected = _deliver(text, due, lambda part: True)
    assert accepted == due and rejected == []


def test_summary_says_what_happened_in_russian() -> None:
    report = ReminderReport(delayed=5, reminded=2, skipped_repeat=1, skipped_off_hours=0, failed=2)
    assert report.summary() == ("Напоминания: просрочено 5, напомнено 2, уже напоминали недавно 1, "
                                "не отправлено 2.")
    assert not report.ok
    dry = ReminderReport(delayed=1, dry_run=True, numbers=["1"])
    assert "пробный запуск" in dry.summary() and dry.ok
