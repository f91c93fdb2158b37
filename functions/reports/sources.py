"""Reading the files `import` takes: a workbook or CSV in the export's shape, or the Flask OMIS's SQLite database.

Each reader yields SourceRow values — a row's reference as a person finds it (the sheet's row
number; a SQLite row's `id`, else its place) and its fields under OMIS's names (FIELDS) — and
says what it found in a Source. Values come as the file holds them (text, numbers, date-times);
importer.py turns them into a request. The kind of file is told by its first bytes, not its name.
"""
from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .export import COLUMNS, FORMULA_STARTS

FIELDS = ("number", "position", "description", "level", "status", "due", "promised", "comment", "author",
          "created_at", "updated_at", "status_updated_at", "comment_author")
HEADERS = dict(zip(COLUMNS, ("number", "position", "description", "level", "status", "due", "promised",
                             "comment", "author", "created_at", "updated_at"), strict=True))
SQLITE_REQUIRED = ("number",)
SQLITE_EXPECTED = ("number", "position", "author", "status", "comment", "created_at", "status_updated_at")
SQLITE_MAGIC = b"SQLite format 3\x00"
ZIP_MAGIC = b"PK\x03\x04"
CSV_DELIMITERS = (",", ";", "\t")


class SourceError(Exception):
    """The file cannot be read as any kind `import` takes (the message says why, in Russian)."""


@dataclass(frozen=True)
class SourceRow:
    """One row of the file: where it is and its fields under OMIS's names."""

    ref: str
    fields: dict[str, Any]


@dataclass
class Source:
    """What a file is and what of it could not be mapped."""

    kind: str                       # "xlsx", "csv" or "sqlite"
    description: str                # in Russian, for the report
    times_utc: bool                 # naive times are UTC (SQLite) rather than OMIS_TIMEZONE
    notes: list[str] = field(default_factory=list)
    rows: list[SourceRow] = field(default_factory=list)


def _header_key(name: object) -> str:
    return " ".join(str(name or "").replace("\ufeff", "").split()).casefold().replace("ё", "е")


_HEADER_KEYS = {_header_key(name): key for name, key in HEADERS.items()}


def _map_header(names: list[object], source: Source) -> dict[int, str]:
    """Return column index → field for a header row; note the columns not used."""
    mapping: dict[int, str] = {}
    unknown = []
    for index, name in enumerate(names):
        key = _HEADER_KEYS.get(_header_key(name))
        if key is not None and key not in mapping.values():
            mapping[index] = key
        elif str(name or "").strip():
            unknown.append(str(name).strip())
    if "number" not in mapping.values():
        raise SourceError("в первой строке нет столбца «Номер» (ожидаются столбцы выгрузки: "
                          + ", ".join(COLUMNS) + ")")
    if unknown:
        source.notes.append("Не используются столбцы: " + ", ".join(f"«{n}»" for n in unknown) + ".")
    return mapping


def _rows_of(table: Iterator[list[object]], source: Source) -> None:
    mapping: dict[int, str] | None = None
    for line, values in enumerate(table, start=1):
        if mapping is None:
            if not any(str(v or "").strip() for v in values):
                continue
            mapping = _map_header(values, source)
            continue
        if not any(v is not None and str(v).strip() for v in values):
            continue
        fields = {key: values[index] for index, key in mapping.items() if index < len(values)}
        source.rows.append(SourceRow(f"строка {line}", fields))
    if mapping is None:
        raise SourceError("файл пуст: нет строки с названиями столбцов")


def read_xlsx(path: Path) -> Source:
    """Read the first sheet of a workbook in the export's shape."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises anything from zipfile, XML and its own checks
        raise SourceError(f"не удалось прочитать книгу Excel: {exc}") from None
    try:
        sheet = book.worksheets[0]
        source = Source("xlsx", f"книга Excel, лист «{sheet.title}»", times_utc=False)
        _rows_of((list(row) for row in sheet.iter_rows(values_only=True)), source)
    finally:
        book.close()
    return source


def _unguard(value: str) -> str:
    """Take off the apostrophe the export puts before a field that looks like a formula."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def read_csv(data: bytes) -> Source:
    """Read CSV in the export's shape: UTF-8 (with or without BOM), else Windows-1251; comma, semicolon or tab."""
    try:
        text, encoding = data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        text, encoding = data.decode("cp1251"), "Windows-1251"
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(CSV_DELIMITERS, key=lambda d: sum(_header_key(c) in _HEADER_KEYS for c in first.split(d)))
    source = Source("csv", f"CSV ({encoding}, разделитель «{'TAB' if delimiter == chr(9) else delimiter}»)",
                    times_utc=False)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    _rows_of(([_unguard(v) for v in row] for row in reader), source)
    return source


def _pick_table(tables: dict[str, list[str]]) -> str:
    with_number = [name for name, columns in tables.items() if "number" in columns]
    if not with_number:
        raise SourceError("в базе нет таблицы заявок: ни в одной таблице нет столбца number (таблицы: "
                          + (", ".join(tables) or "нет") + ")")
    for name in with_number:
        if name.casefold() == "requests":
            return name
    named = [name for name in with_number if "request" in name.casefold()]
    return (named or with_number)[0]


def read_sqlite(path: Path) -> Source:
    """Read the requests table of the Flask OMIS's SQLite database (times there are UTC)."""
    try:
        connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise SourceError(f"не удалось открыть базу SQLite: {exc}") from None
    try:
        names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                   "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        tables = {name: [str(c[1]).casefold() for c in connection.execute(f'PRAGMA table_info("{_quoted(name)}")')]
                  for name in names}
        table = _pick_table(tables)
        columns = [str(c[1]) for c in connection.execute(f'PRAGMA table_info("{_quoted(table)}")')]
        by_key = {name.casefold(): name for name in columns}
        source = Source("sqlite", f"база SQLite прежнего OMIS, таблица «{table}»", times_utc=True)
        used = [key for key in FIELDS if key in by_key]
        missing = [key for key in SQLITE_EXPECTED if key not in by_key]
        extra = [name for name in columns if name.casefold() not in (*FIELDS, "id")]
        if missing:
            source.notes.append("Нет столбцов (взяты значения по умолчанию): " + ", ".join(missing) + ".")
        if extra:
            source.notes.append("Не перенесены столбцы: " + ", ".join(extra) + ".")
        others = [name for name in names if name != table]
        if others:
            source.notes.append("Не перенесены таблицы: " + ", ".join(others) + " (история начинается с импорта).")
        has_id = "id" in by_key
        selected = [by_key[key] for key in used] + ([by_key["id"]] if has_id else [])
        # Names come from the file's own schema, quoted as identifiers; values are never put in the text.
        query = "SELECT " + ", ".join(f'"{_quoted(c)}"' for c in selected) + f' FROM "{_quoted(table)}"'  # noqa: S608
        if has_id:
            query += f' ORDER BY "{_quoted(by_key["id"])}"'
        for place, values in enumerate(connection.execute(query), start=1):
            fields = dict(zip(used, values, strict=False))
            ref = f"строка id={values[-1]}" if has_id else f"строка {place}"
            source.rows.append(SourceRow(ref, fields))
    except sqlite3.Error as exc:
        raise SourceError(f"не удалось прочитать базу SQLite: {exc}") from None
    finally:
        connection.close()
    return source


def _quoted(name: str) -> str:
    return name.replace('"', '""')


def read_source(path: Path) -> Source:
    """Read a file `import` takes, told by its first bytes: SQLite, a workbook (zip) or CSV."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"не удалось прочитать файл: {exc.strerror or exc}") from None
    if data.startswith(SQLITE_MAGIC):
        return read_sqlite(path)
    if data.startswith(ZIP_MAGIC):
        return read_xlsx(path)
    if b"\x00" in data[:4096]:
        raise SourceError("это не книга Excel (.xlsx), не CSV и не база SQLite")
    return read_csv(data)
