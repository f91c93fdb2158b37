"""Charts of the contractor's record as inline SVG, drawn on the server (pure: values in, markup out).

No script and no network: each chart is a list of horizontal bars, one row per month (or per
kind), so it stays readable on a 390 px phone, where rows simply stack. Colours come from CSS
classes in web_static/omis.css (the page's Content-Security-Policy allows no inline styles);
every bar carries a <title> with its figure, and the figures are written beside the bars.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH = 400
LABEL_WIDTH = 64
VALUE_WIDTH = 76
BAR_HEIGHT = 12
BAR_GAP = 3
ROW_GAP = 9
MONTHS_SHORT = ("янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек")
MONTHS_FULL = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь", "октябрь",
               "ноябрь", "декабрь")
MONTHS_FROM = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
               "ноября", "декабря")


@dataclass(frozen=True)
class Segment:
    """A part of a bar: its value, CSS class and the words its tooltip says."""

    value: float
    css: str
    title: str


@dataclass(frozen=True)
class Bar:
    """One bar: segments stacked left to right, and the figure written after it."""

    segments: tuple[Segment, ...]
    note: str


@dataclass(frozen=True)
class Row:
    """One row of a chart: its label and one or more bars."""

    label: str
    bars: tuple[Bar, ...]


def month_label(key: str, full: bool = False) -> str:
    """Name a `YYYY-MM` month the Russian way: «мар 26», or «март 2026» when full."""
    year, month = int(key[:4]), int(key[5:7])
    return f"{MONTHS_FULL[month - 1]} {year}" if full else f"{MONTHS_SHORT[month - 1]} {year % 100:02d}"


def period_text(first: str, last: str) -> str:
    """Say a range of `YYYY-MM` months: «с января по март 2026», «с ноября 2025 по март 2026», «за март 2026»."""
    (y1, m1), (y2, m2) = (int(first[:4]), int(first[5:7])), (int(last[:4]), int(last[5:7]))
    if (y1, m1) == (y2, m2):
        return f"за {MONTHS_FULL[m2 - 1]} {y2}"
    start = MONTHS_FROM[m1 - 1] if y1 == y2 else f"{MONTHS_FROM[m1 - 1]} {y1}"
    return f"с {start} по {MONTHS_FULL[m2 - 1]} {y2}"


def format_minutes(minutes: float | None) -> str:
    """Show a duration in hours the short way: «45 мин», «3,5 ч», «120 ч»; «—» for none."""
    if minutes is None:
        return "—"
    if minutes < 59.5:
        return f"{round(minutes)} мин"
    hours = minutes / 60
    if hours < 99.95:
        return f"{hours:.1f}".replace(".", ",").replace(",0", "") + " ч"
    return f"{round(hours)} ч"


def format_share(share: float | None) -> str:
    """Show a share as whole percent: «83 %»; «—» for none."""
    return "—" if share is None else f"{round(share * 100)} %"


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def bar_chart(chart_id: str, title: str, description: str, rows: Sequence[Row], *, scale: float | None = None,
              label_width: int = LABEL_WIDTH) -> Markup:
    """Draw rows of horizontal bars as an SVG image; `scale` is the value of a full-width bar (default: the largest).

    `chart_id` (unique on the page) names the chart's title and description for screen readers.
    """
    largest = max((sum(s.value for s in bar.segments) for row in rows for bar in row.bars), default=0.0)
    full = scale if scale is not None else largest
    span = WIDTH - label_width - VALUE_WIDTH
    parts: list[Markup] = []
    y = ROW_GAP / 2
    for row in rows:
        height = len(row.bars) * BAR_HEIGHT + (len(row.bars) - 1) * BAR_GAP
        parts.append(Markup('<text class="chart-label" x="0" y="{}">{}</text>').format(
            _number(y + height / 2 + 4), row.label))
        for index, bar in enumerate(row.bars):
            top = y + index * (BAR_HEIGHT + BAR_GAP)
            x = float(label_width)
            for segment in bar.segments:
                width = span * segment.value / full if full > 0 else 0.0
                if width > 0:
                    parts.append(Markup('<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title>'
                                        '</rect>').format(segment.css, _number(x), _number(top),
                                                          _number(max(width, 1.5)), BAR_HEIGHT, segment.title))
                x += width
            parts.append(Markup('<text class="chart-value" x="{}" y="{}">{}</text>').format(
                _number(x + 4), _number(top + BAR_HEIGHT - 2), bar.note))
        y += height + ROW_GAP
    total_height = max(y - ROW_GAP / 2, BAR_HEIGHT)
    body = Markup("").join(parts)
    return Markup(
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" '
        'role="img" aria-labelledby="{id}-t {id}-d" preserveAspectRatio="xMinYMin meet">'
        '<title id="{id}-t">{title}</title><desc id="{id}-d">{desc}</desc>'
        '<line class="chart-axis" x1="{x}" y1="0" x2="{x}" y2="{h}"/>{body}</svg>'
    ).format(w=WIDTH, h=_number(total_height), id=chart_id, title=title, desc=description, x=label_width,
             body=body)


def legend(items: Sequence[tuple[str, str]]) -> Markup:
    """Return the legend of a chart: (CSS class, words) pairs as an HTML list."""
    entries = Markup("").join(Markup('<li><span class="swatch {}" aria-hidden="true"></span>{}</li>').format(css, text)
                              for css, text in items)
    return Markup('<ul class="legend">{}</ul>').format(entries)

