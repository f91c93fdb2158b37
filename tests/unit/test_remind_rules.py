"""The pure rules of a reminder pass: who is due, repeat, snooze, working hours, escalation, delivery."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from functions.alerts.digest import DigestItem, build_deadline_digest
from functions.alerts.remind import Breach, ReminderReport, _deliver, is_reminder_time, plan_reminders, read_breaches
from functions.model import DEFAULT_STATUS, Request
from functions.settings import load_settings
from functions.storage.layout import row_from_request

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)   # Thursday 15:00 in Moscow
LEVELS = ('{"normal": {"title": "Обычная", "accept": "1h", "clock": "work"},'
          ' "crash": {"title": "Авария", "accept": "15m", "clock": "24x7"}}')


def request(number: str, minutes_ago: int = 120, position: str = "", level: str = "normal", **fields) -> Request:
    created = NOW - timedelta(minutes=minutes_ago)
    base = Request(number=number, position=position, description="", author="Инженер", status=DEFAULT_STATUS,
                   comment="", comment_author="", created_at=created, status_updated_at=created,
                   updated_at=created, id=f"{number:0>22}"[:22], level=level)
    return replace(base, **fields)


def breaches(settings, *requests: Request, now: datetime = NOW) -> list[Breach]:
    rows = [row_from_request(r, history_seq=1) for r in requests]
    return read_breaches(rows, now, settings)


def test_a_passed_deadline_is_due_and_one_not_yet_passed_is_not() -> None:
    settings = load_settings({"OMIS_SLA_LEVELS": LEVELS})
    found = breaches(settings, request("late", 61), request("fresh", 59))
    assert [b.request.number for b in found] == ["late"]
    assert [b.request.number for b in plan_reminders(found, NOW, settings).team] == ["late"]


def test_reminded_within_the_interval_is_skipped_and_due_after_it() -> None:
    settings = load_settings({"OMIS_SLA_LEVELS": LEVELS, "OMIS_ALERT_REPEAT_MINUTES": "60"})
    recent = request("1", last_reminded_at=NOW - timedelta(minutes=59))
    old = request("2", last_reminded_at=NOW - timedelta(minutes=60))
    plan = plan_reminders(breaches(settings, recent, old), NOW, settings)
    assert [b.request.number for b in plan.team] == ["2"] and plan.skipped_repeat == 1


def test_timer_drift_of_seconds_does_not_skip_a_tick() -> None:
    settings = load_settings({"OMIS_SLA_LEVELS": LEVELS})
    almost = request("1", last_reminded_at=NOW - timedelta(minutes=60) + timedelta(seconds=4))
    assert plan_reminders(breaches(settings, almost), NOW, settings).team


def test_a_snoozed_request_waits_until_its_snooze_ends() -> None:
    settings = load_settings({"OMIS_SLA_LEVELS": LEVELS})
    snoozed = request("1", snoozed_until=NOW + timedelta(minutes=1))
    plan = plan_reminders(breaches(settings, snoozed), NOW, settings)
    assert plan.team == [] and plan.skipped_snoozed == 1
    later = NOW + timedelta(minutes=2)
    assert plan_reminders(breaches(settings, snoozed, now=later), later, settings).team


def test_outside_working_hours_only_24x7_levels_are_reminded() -> None:
    settings = load_settings({"OMIS_SLA_LEVELS": LEVELS, "OMIS_WORK_HOURS": "Mon-Fri 09:00-18:00"})
    evening = NOW + timedelta(hours=5)     # Thu 20:00 in Moscow
    found = breaches(settings, request("work", 60 * 24 * 3), request("crash", 60, level="crash"), now=evening)
    plan = plan_reminders(found, evening, settings)
    assert [b.request.number for b in plan.team] == ["crash"] and plan.skipped_off_hours == 1


def test_reminder_time_follows_work_hours_and_holidays() -> None:
    hours = load_settings({"OMIS_WORK_HOURS": "Mon-Fri 09:00-18:00"})
    assert is_reminder_time(NOW, hours)                                    # Thu 15:00
    assert not is_reminder_time(NOW + timedelta(hours=4), hours)           # Thu 19:00
    holiday = load_settings({"OMIS_WORK_HOURS": "Mon-Fri 09:00-18:00", "OMIS_HOLIDAYS": "2026-11-26"})
    assert not is_reminder_time(NOW, holiday)
    only_holidays = load_settings({"OMIS_HOLIDAYS": "2026-11-26"})
    assert not is_reminder_time(NOW, only_holidays)
    assert is_reminder_time(NOW + timedelta(days=1), only_holidays)


def test_escalation_takes_requests_breached_longer_than_the_setting_with_its_own_repeat() -> None:
    settings = load_settings({"OMIS_SLA_LEVELS": LEVELS, "OMIS_ESCALATION_MINUTES": "120",
                              "OMIS_ESCALATION_CHAT_ID": "-100"})
    long_ago = request("long", 60 + 121)             # breached 121 min ago
    lately = request("lately", 60 + 30)
    escalated = request("done", 60 + 200, last_escalated_at=NOW - timedelta(minutes=10))
    plan = plan_reminders(breaches(settings, long_ago, lately, escalated), NOW, settings)
    assert sorted(b.request.number for b in plan.team) == ["done", "lately", "long"]
    assert [b.request.number for b in plan.escalation] == ["long"]


def test_without_escalation_settings_nobody_is_escalated() -> None:
    settings = load_settings({"OMIS_SLA_LEVELS": LEVELS})
    assert plan_reminders(breaches(settings, request("1", 60 * 24)), NOW, settings).escalation == []


def _digest(found: list[Breach]) -> str:
    items = [DigestItem(number=b.request.number, position=b.request.position, level_title="Обычная",
                        status=b.request.status, kind=b.state.kind or "", deadline=b.state.deadline,  # type: ignore[arg-type]
                        overdue_minutes=b.overdue, working_time=False, last_news_at=None) for b in found]
    return build_deadline_digest(items, now=NOW, tz=timezone.utc, public_url=None)


def test_each_request_counts_as_delivered_with_the_part_that_carried_it() -> None:
    settings = load_settings({"OMIS_SLA_LEVELS": LEVELS})
    found = breaches(settings, *[request(f"N-{i:02d}", 200 - i, position="п" * 190) for i in range(40)])
    answers = iter([True, False])
    sent: list[str] = []

    def transport(part: str) -> bool:
        sent.append(part)
        return next(answers)

    accepted, rejected = _deliver(_digest(found), found, transport)
    assert len(sent) == 2 and accepted and rejected
    assert all(f"<b>{b.request.number}</b>" in sent[0] for b in accepted)
    assert not any(f"<b>{b.request.number}</b>" in sent[0] for b in rejected)
    assert len(accepted) + len(rejected) == 40


def test_everything_is_delivered_when_every_part_is_accepted() -> None:
    settings = load_settings({"OMIS_SLA_LEVELS": LEVELS})
    found = breaches(settings, request("A&B"), request("<1>"))
    accepted, rejected = _deliver(_digest(found), found, lambda part: True)
    assert accepted == found and rejected == []


def test_summary_says_what_happened_in_russian() -> None:
    report = ReminderReport(breached=5, reminded=2, skipped_repeat=1, skipped_snoozed=1, failed=2)
    assert report.summary() == ("Напоминания: сроков прошло 5, напомнено 2, уже напоминали недавно 1, "
                                "отложено 1, не отправлено 2.")
    assert not report.ok
    dry = ReminderReport(breached=1, dry_run=True, numbers=["1"])
    assert "пробный запуск" in dry.summary() and dry.ok
