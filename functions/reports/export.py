"""The list as a file (SPEC §10): an Excel workbook or UTF-8 CSV, one row per request.

Columns, exactly: COLUMNS. «Срок» is the deadline an engineer set (`due`), «Обещано» the
contractor's latest promise, «Уровень» the level's title; times are in OMIS_TIMEZONE — in the
workbook as real date cells (naive local date-times, as Excel keeps them), in the CSV as
`YYYY-MM-DD HH:MM:SS`. The CSV follows RFC 4180 (comma, CRLF, quotes doubled) and starts with a
UTF-8 byte order mark: without it Excel on Windows reads the file as the ANSI code page and the
Cyrillic comes out garbled. A CSV field that begins with = + - @ or a tab is written with a
leading apostrophe, so that a spreadsheet shows text a contractor's mail put there instead of
running it as a formula; the import takes that apostrophe off again. In the workbook every
text is a text cell, never a formula.

openpyxl is imported only when a workbook is made: it is not needed at cold start.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, tzinfo

from ..deadlines import ServiceLevel, resolve_level
from ..model import Request
from ..storage import ListQuery, Store

COLUMNS = ("Номер", "Позиция", "Описание", "Уровень", "Статус", "Срок", "Обещано", "Комментарий", "Автор",
           "Создана", "Обновлена")
WIDTHS = (16, 28, 48, 14, 20, 17, 17, 48, 20, 17, 17)
TIME_COLUMNS = frozenset({"Срок", "Обещано", "Создана", "Обновлена"})
CSV_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
EXCEL_TIME_FORMAT = "DD.MM.YYYY HH:MM"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PAGE = 100
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv"

Cell = str | datetime | None
# Characters XML 1.0 cannot hold (the workbook is XML): C0 controls other than tab, LF, CR.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def all_requests(store: Store, query: ListQuery) -> Iterator[Request]:
    """Yield every request of the list under a query's filters, page after page (ValidationError: a bad filter)."""
    cursor = query.cursor
    while True:
        page = store.list_requests(ListQuery(status=query.status, q=query.q, limit=PAGE, cursor=cursor,
                                             archived=query.archived, sort=query.sort, breached=query.breached,
                                             waiting_on=query.waiting_on, level=query.level))
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _local(moment: datetime | None, tz: tzinfo) -> datetime | None:
    return moment.astimezone(tz).replace(tzinfo=None, microsecond=0) if moment is not None else None


def row_values(request: Request, levels: Mapping[str, ServiceLevel], default_level: str, tz: tzinfo) -> list[Cell]:
    """Return a request's cells in COLUMNS order (times as naive local date-times)."""
    level = resolve_level(levels, request.level or None, default_level)
    return [request.number, request.position, request.description, level.title, request.status,
            _local(request.due, tz), _local(request.promised, tz), request.comment, request.author,
            _local(request.created_at, tz), _local(request.updated_at, tz)]


def workbook_bytes(rows: Iterable[Sequence[Cell]]) -> bytes:
    """Write rows under the COLUMNS header into an .xlsx workbook; return its bytes."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Заявки")
    for index, width in enumerate(WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name in COLUMNS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    count = 0
    for values in rows:
        cells = []
        for value in values:
            if isinstance(value, datetime):
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = EXCEL_TIME_FORMAT
            elif isinstance(value, str):
                cell = WriteOnlyCell(sheet, value=_XML_ILLEGAL.sub("", value))
                cell.data_type = "s"      # text that starts with "=" stays text
            else:
                cell = WriteOnlyCell(sheet, value=value)
            cells.append(cell)
        sheet.append(cells)
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{count + 1}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _csv_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(CSV_TIME_FORMAT)
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_bytes(rows: Iterable[Sequence[Cell]]) -> bytes:
    """Write rows under the COLUMNS header as RFC 4180 CSV in UTF-8 with a byte order mark."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for values in rows:
        writer.writerow([_csv_text(v) for v in values])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8", "replace")


def export_rows(store: Store, query: ListQuery) -> Iterator[list[Cell]]:
    """Yield the cells of every request the list shows under a query."""
    settings = store.settings
    tz = settings.timezone
    for request in all_requests(store, query):
        yield row_values(request, settings.sla_levels, settings.sla_default, tz)
