"""The charts of the reports page, from a Report (pure: figures in, SVG markup out)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import Markup

from ..deadlines import KINDS
from .charts import Bar, Row, Segment, bar_chart, format_minutes, format_share, legend, month_label
from .figures import Report

BREACH_LABEL_WIDTH = 186


@dataclass(frozen=True)
class Chart:
    """One chart of the page: its heading, the SVG and its legend."""

    id: str
    title: str
    svg: Markup
    legend: Markup


def _requests_chart(report: Report) -> Chart:
    rows = []
    for group in report.months:
        name = month_label(group.key, full=True)
        rows.append(Row(month_label(group.key), (Bar((
            Segment(group.done, "seg-done", f"{name}: выполнено {group.done}"),
            Segment(group.rejected, "seg-rejected", f"{name}: отклонено {group.rejected}"),
            Segment(group.open, "seg-open", f"{name}: открыто {group.open}"),
        ), str(group.created)),)))
    return Chart("chart-requests", "Заявки по месяцам",
                 bar_chart("chart-requests", "Заявки по месяцам",
                           "Сколько заявок создано в каждом месяце: выполнено, отклонено, ещё открыто.", rows),
                 legend((("seg-done", "выполнена"), ("seg-rejected", "отклонена"), ("seg-open", "ещё открыта"))))


def _times_chart(report: Report) -> Chart:
    rows = []
    for group in report.months:
        name = month_label(group.key, full=True)
        news, final = group.first_news, group.resolution
        rows.append(Row(month_label(group.key), (
            Bar((Segment(news.median or 0, "seg-news",
                         f"{name}: до первой новости — медиана {format_minutes(news.median)}, "
                         f"90 % — {format_minutes(news.p90)} (заявок: {news.count})"),),
                format_minutes(news.median)),
            Bar((Segment(final.median or 0, "seg-final",
                         f"{name}: до окончательного статуса — медиана {format_minutes(final.median)}, "
                         f"90 % — {format_minutes(final.p90)} (заявок: {final.count})"),),
                format_minutes(final.median)),
        )))
    return Chart("chart-times", "Сколько ждали, медиана",
                 bar_chart("chart-times", "Сколько ждали, медиана",
                           "Медиана времени до первой новости от подрядчика и до окончательного статуса, "
                           "по часам уровня заявки.", rows),
                 legend((("seg-news", "до первой новости"), ("seg-final", "до окончательного статуса"))))


def _on_time_chart(report: Report) -> Chart:
    rows = []
    for group in report.months:
        name = month_label(group.key, full=True)
        share = group.on_time_share
        decided = group.on_time + group.late
        on_time = 100 * group.on_time / decided if decided else 0.0
        rows.append(Row(month_label(group.key), (Bar((
            Segment(on_time, "seg-ontime", f"{name}: в срок {group.on_time} из {decided}"),
            Segment(100 - on_time if decided else 0, "seg-late", f"{name}: с опозданием {group.late} из {decided}"),
        ), format_share(share)),)))
    return Chart("chart-ontime", "Выполнено в срок",
                 bar_chart("chart-ontime", "Выполнено в срок",
                           "Доля заявок, получивших окончательный статус не позже срока выполнения.", rows,
                           scale=100),
                 legend((("seg-ontime", "в срок"), ("seg-late", "с опозданием"))))


def _breaches_chart(report: Report, kind_titles: Mapping[str, str]) -> Chart:
    rows = [Row(kind_titles[kind], (Bar((Segment(report.total.breaches[kind], "seg-breach",
                                                 f"{kind_titles[kind]}: {report.total.breaches[kind]}"),),
                                        str(report.total.breaches[kind])),))
            for kind in KINDS]
    return Chart("chart-breaches", "Нарушения сроков",
                 bar_chart("chart-breaches", "Нарушения сроков",
                           "Сколько заявок пропустили срок каждого вида.", rows, label_width=BREACH_LABEL_WIDTH),
                 legend((("seg-breach", "заявок с нарушением"),)))


def charts(report: Report, kind_titles: Mapping[str, str]) -> list[Chart]:
    """Return the page's charts: requests, waiting times, on time, breaches."""
    return [_requests_chart(report), _times_chart(report), _on_time_chart(report),
            _breaches_chart(report, kind_titles)]
