"""Charts, CSV and the reading of import files (functions/reports: charts, export, sources, importer)."""
from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from functions.reports.charts import (
    Bar,
    Row,
    Segment,
    bar_chart,
    format_minutes,
    format_share,
    month_label,
    period_text,
)
from functions.reports.export import COLUMNS, csv_bytes
from functions.reports.importer import RowRefused, read_time
from functions.reports.sources import SourceError, read_csv

ROOT = Path(__file__).resolve().parents[2]
MSK = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(("minutes", "text"), [
    (None, "—"), (0, "0 мин"), (44.6, "45 мин"), (60, "1 ч"), (90, "1,5 ч"), (600, "10 ч"), (5999, "100 ч"),
    (6000, "100 ч"), (7230, "120 ч"),
])
def test_durations_are_shown_in_minutes_then_hours(minutes, text):
    assert format_minutes(minutes) == text


def test_shares_and_months_read_the_russian_way():
    assert (format_share(None), format_share(0.8333)) == ("—", "83 %")
    assert (month_label("2026-03"), month_label("2026-12", full=True)) == ("мар 26", "декабрь 2026")
    assert period_text("2026-01", "2026-03") == "с января по март 2026"
    assert period_text("2025-11", "2026-03") == "с ноября 2025 по март 2026"
    assert period_text("2026-03", "2026-03") == "за март 2026"


def test_bars_are_scaled_to_the_largest_and_labels_are_escaped():
    rows = [Row("<b>", (Bar((Segment(3, "a", "три"), Segment(1, "b", "один")), "4"),)),
            Row("x", (Bar((Segment(2, "a", "два"),), "2"),))]
    svg = str(bar_chart("c1", "Т", "О", rows))
    assert "&lt;b&gt;" in svg and "<b>" not in svg
    # 400 wide, 64 for labels, 76 for figures: 260 units for the largest total (4).
    assert 'class="a" x="64" y="4.5" width="195"' in svg and 'class="b" x="259" y="4.5" width="65"' in svg
    assert 'class="a" x="64" y="25.5" width="130"' in svg
    assert '<title id="c1-t">Т</title>' in svg and 'aria-labelledby="c1-t c1-d"' in svg


def test_an_empty_chart_draws_no_bars():
    svg = str(bar_chart("c", "t", "d", [Row("янв 26", (Bar((Segment(0, "a", "ноль"),), "0"),))]))
    assert "<rect" not in svg and ">0</text>" in svg


def test_csv_has_crlf_quotes_and_a_guard_before_formulas():
    data = csv_bytes([["A,1", 'a "b"', "=2+2", "+7", "@x", "-1", "обычный", None, None, None, None]])
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data[3:].decode("utf-8").split("\r\n")
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1] == '"A,1","a ""b""",\'=2+2,\'+7,\'@x,\'-1,обычный,,,,'


def test_a_csv_saved_by_excel_in_windows_1251_with_semicolons_is_read():
    data = "Номер;Статус;Создана\r\nА-1;выполнена;01.02.2026 10:00\r\n".encode("cp1251")
    source = read_csv(data)
    assert "Windows-1251" in source.description and "«;»" in source.description
    assert [(r.ref, r.fields) for r in source.rows] == [
        ("строка 2", {"number": "А-1", "status": "выполнена", "created_at": "01.02.2026 10:00"})]


def test_csv_rows_keep_their_line_numbers_and_lose_the_formula_guard():
    data = "\ufeffНомер,Комментарий\r\n\r\nB-1,'-минус\r\n,\r\nB-2,'обычный\r\n".encode()
    source = read_csv(data)
    assert [(r.ref, r.fields["comment"]) for r in source.rows] == [("строка 3", "-минус"), ("строка 5", "'обычный")]


def test_a_csv_without_the_number_column_cannot_be_imported():
    with pytest.raises(SourceError, match="нет столбца «Номер»"):
        read_csv("Позиция,Статус\r\n1,2\r\n".encode())


@pytest.mark.parametrize(("value", "utc", "end", "expected"), [
    ("2026-01-10 08:00:00", True, False, datetime(2026, 1, 10, 8, 0, tzinfo=timezone.utc)),
    ("2026-01-10 08:00:00", False, False, datetime(2026, 1, 10, 5, 0, tzinfo=timezone.utc)),
    ("10.01.2026 08:00", False, False, datetime(2026, 1, 10, 5, 0, tzinfo=timezone.utc)),
    ("10.01.2026", False, True, datetime(2026, 1, 10, 20, 59, 59, tzinfo=timezone.utc)),
    ("2026-01-10", False, False, datetime(2026, 1, 9, 21, 0, tzinfo=timezone.utc)),
    ("2026-01-10T08:00:00Z", False, False, datetime(2026, 1, 10, 8, 0, tzinfo=timezone.utc)),
    (date(2026, 1, 10), False, True, datetime(2026, 1, 10, 20, 59, 59, tzinfo=timezone.utc)),
    (1767945600, True, False, datetime(2026, 1, 9, 8, 0, tzinfo=timezone.utc)),
    ("", True, False, None), (None, False, False, None),
])
def test_times_of_import_files(value, utc, end, expected):
    assert read_time(value, tz=MSK, utc=utc, end_of_day=end) == expected


@pytest.mark.parametrize("value", ["вчера", "32.01.2026", "2026-02-30 10:00", "10:00"])
def test_a_cell_that_is_no_time_is_refused(value):
    with pytest.raises(RowRefused, match="не дата и время"):
        read_time(value, tz=MSK, utc=False)


def test_the_app_starts_without_loading_openpyxl():
    code = "import sys, function_app; print('openpyxl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
