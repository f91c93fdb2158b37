"""Export of the list (.xlsx, .csv) and `import` (the export's shape, the Flask OMIS's SQLite) on Azurite."""
from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook, load_workbook

from functions.reports.export import COLUMNS

MSK = ZoneInfo("Europe/Moscow")
LEVELS = json.dumps({"normal": {"title": "Обычная", "accept": "4h", "resolve": "5d"},
                     "urgent": {"title": "Срочная", "accept": "1h", "resolve": "1d", "clock": "24x7"}})
UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def wall(*parts: int) -> datetime:
    """A naive wall-clock time, as Excel keeps date cells."""
    return datetime(*parts, tzinfo=MSK).replace(tzinfo=None)


@pytest.fixture
def store(configure, call):
    configure(OMIS_SLA_LEVELS=LEVELS)
    from functions.storage import get_store

    found = get_store()
    found.init()
    return found


def put(store, number, created, status="заявка отправлена", **fields):
    updated = fields.pop("updated_at", created)
    return store.import_request(number, status=status, created_at=created, status_updated_at=updated,
                                updated_at=updated, **fields)


@pytest.fixture
def three(store):
    put(store, "ТО-2026/77", at("2026-03-02T06:30:15"), "выполнена", position="Котельная №3",
        description="Заменить манометр", level="urgent", comment="Работы завершены", author="anna@example.org",
        updated_at=at("2026-03-03T10:00:00"), due=at("2026-03-05T15:00:00"), promised=at("2026-03-04T20:59:59"))
    put(store, "A-2", at("2026-03-01T21:30:00"), position="=HYPERLINK(\"http://x\")", comment="-плохо")
    put(store, "A-3", at("2026-02-01T09:00:00"), "принята в работу", updated_at=at("2026-02-02T09:00:00"))
    store.set_archived("A-3", True, now=at("2026-02-03T09:00:00"))
    return store


def sheet_rows(data: bytes):
    book = load_workbook(io.BytesIO(data))
    sheet = book.active
    return sheet, [[c.value for c in row] for row in sheet.iter_rows()]


# ----- export ---------------------------------------------------------------------------

def test_xlsx_has_the_columns_and_local_times_as_date_cells(three, call):
    resp = call("GET", "/export/requests.xlsx")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="omis-requests-')
    sheet, rows = sheet_rows(resp.get_body())
    assert tuple(rows[0]) == COLUMNS
    assert [r[0] for r in rows[1:]] == ["ТО-2026/77", "A-2"]          # archived ones are not in the list
    first = dict(zip(COLUMNS, rows[1], strict=True))
    assert first == {"Номер": "ТО-2026/77", "Позиция": "Котельная №3", "Описание": "Заменить манометр",
                     "Уровень": "Срочная", "Статус": "выполнена", "Срок": wall(2026, 3, 5, 18, 0),
                     "Обещано": wall(2026, 3, 4, 23, 59, 59), "Комментарий": "Работы завершены",
                     "Автор": "anna@example.org", "Создана": wall(2026, 3, 2, 9, 30, 15),
                     "Обновлена": wall(2026, 3, 3, 13, 0)}
    created_cell = sheet.cell(row=2, column=COLUMNS.index("Создана") + 1)
    assert created_cell.is_date and created_cell.number_format == "DD.MM.YYYY HH:MM"
    formula_like = sheet.cell(row=3, column=2)
    assert formula_like.value == '=HYPERLINK("http://x")' and formula_like.data_type == "s"


@pytest.mark.parametrize(("query", "numbers"), [
    ("status=%D0%B2%D1%8B%D0%BF%D0%BE%D0%BB%D0%BD%D0%B5%D0%BD%D0%B0", ["ТО-2026/77"]),   # выполнена
    ("q=%D0%BA%D0%BE%D1%82%D0%B5%D0%BB%D1%8C%D0%BD%D0%B0%D1%8F", ["ТО-2026/77"]),         # котельная
    ("archived=1", ["A-3"]),
])
def test_export_keeps_the_list_filters(three, call, query, numbers):
    _, rows = sheet_rows(call("GET", "/export/requests.xlsx?" + query).get_body())
    assert [r[0] for r in rows[1:]] == numbers


def test_export_refuses_a_bad_filter_with_400(store, call):
    assert call("GET", "/export/requests.csv?status=nope").status_code == 400


def test_export_pages_through_the_whole_list(store, call):
    start = at("2026-01-01T00:00:00")
    for i in range(130):
        put(store, f"P-{i:03d}", start + timedelta(hours=i))
    _, rows = sheet_rows(call("GET", "/export/requests.xlsx").get_body())
    assert len(rows) == 131 and {r[0] for r in rows[1:]} == {f"P-{i:03d}" for i in range(130)}


def test_csv_is_utf8_with_bom_rfc4180_and_guards_formulas(three, call):
    resp = call("GET", "/export/requests.csv")
    assert resp.headers["Content-Type"].startswith("text/csv; charset=utf-8")
    data = resp.get_body()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    assert text.split("\r\n")[0] == ",".join(COLUMNS)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1][COLUMNS.index("Создана")] == "2026-03-02 09:30:15"
    assert rows[2][1] == "'=HYPERLINK(\"http://x\")" and rows[2][COLUMNS.index("Комментарий")] == "'-плохо"
    assert rows[2][COLUMNS.index("Срок")] == ""


def test_the_list_links_the_export_with_its_filters(three, call):
    html = call("GET", "/?status=%D0%B2%D1%8B%D0%BF%D0%BE%D0%BB%D0%BD%D0%B5%D0%BD%D0%B0").get_body().decode()
    assert '<a class="page-link" href="/export/requests.xlsx?status=%D0%B2%D1%8B%D0%BF' in html
    assert "Выгрузить в Excel" in html


# ----- export → import -------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["xlsx", "csv"])
def test_export_then_import_into_other_tables_keeps_every_column(three, call, configure, cli_main, tmp_path,
                                                                  suffix, capsys):
    from functions.storage import get_store

    exported = {r.number: r for r in (three.get_request(n) for n in ("ТО-2026/77", "A-2"))}
    path = tmp_path / f"requests.{suffix}"
    path.write_bytes(call("GET", f"/export/requests.{suffix}").get_body())
    configure(OMIS_TABLE_PREFIX=three.settings.table_prefix + "copy")
    assert cli_main(["import", str(path)]) == 0
    assert "Импортировано: 2, уже были: 0, отказано: 0." in capsys.readouterr().out
    copy = get_store()
    for number, before in exported.items():
        after = copy.get_request(number)
        for name in ("number", "position", "description", "level", "status", "comment", "author", "due", "promised"):
            assert getattr(after, name) == getattr(before, name), name
        assert after.created_at == before.created_at.replace(microsecond=0)
        assert after.updated_at == before.updated_at.replace(microsecond=0)
        assert [h.source for h in after.history] == ["import"]
    assert cli_main(["import", str(path)]) == 0
    assert "Импортировано: 0, уже были: 2, отказано: 0." in capsys.readouterr().out


def test_a_workbook_in_any_column_order_with_unknown_columns_and_level_titles(store, cli_main, tmp_path, capsys):
    book = Workbook()
    sheet = book.active
    sheet.append(["Лишний", "Статус", "номер ", "Уровень", "Создана"])
    sheet.append(["x", "Принята в работу", "W-1", "срочная", wall(2026, 2, 1, 12, 0)])
    sheet.append(["x", "", 1017, "VIP", "01.02.2026 12:30"])
    sheet.append(["x", "в работе", "W-3", "", None])
    path = tmp_path / "book.xlsx"
    book.save(path)
    assert cli_main(["import", str(path)]) == 1
    out = capsys.readouterr().out
    assert "Не используются столбцы: «Лишний»." in out
    assert "строка 3: уровень «VIP» неизвестен — взят уровень по умолчанию «normal»" in out
    assert "строка 4: отказ — неизвестный статус «в работе»" in out
    assert "Импортировано: 2, уже были: 0, отказано: 1." in out
    w1 = store.get_request("W-1")
    assert (w1.status, w1.level, w1.created_at) == ("принята в работу", "urgent", at("2026-02-01T09:00:00"))
    number = store.get_request("1017")
    assert (number.status, number.created_at) == ("заявка отправлена", at("2026-02-01T09:30:00"))


# ----- the Flask OMIS's SQLite ----------------------------------------------------------

def flask_db(path, rows, columns="id, number, position, author, status, comment, created_at, status_updated_at"):
    connection = sqlite3.connect(path)
    typed = ", ".join(f"{c} INTEGER PRIMARY KEY" if c == "id" else f"{c} TEXT" for c in columns.split(", "))
    connection.execute(f"CREATE TABLE requests ({typed}, delayed_notified INTEGER)")
    connection.execute("CREATE TABLE processed_emails (id INTEGER PRIMARY KEY, message_id TEXT)")
    marks = ", ".join("?" for _ in columns.split(", "))
    connection.executemany(f"INSERT INTO requests ({columns}) VALUES ({marks})", rows)  # noqa: S608 - the test's own names
    connection.commit()
    connection.close()


FLASK_ROWS = [
    (1, "10231", "Котельная", "Иванов", "принята в работу", "Взяли в работу", "2026-01-10 08:00:00",
     "2026-01-10 09:15:00"),
    (2, "10232", "", "Петров", "выполнена", None, "2026-01-11 08:00:00", "2026-01-12 10:00:00.123456"),
    (5, "bad#number", "", "Петров", "выполнена", "", "2026-01-11 08:00:00", None),
    (7, "10235", "", "Петров", "в работе", "", "2026-01-11 08:00:00", None),
    (8, "10236", "", "", "", "", "2026-13-01 08:00:00", None),
    (9, "10231", "повтор", "", "выполнена", "", "2026-01-12 08:00:00", None),
]


def test_sqlite_of_the_flask_omis_is_imported_with_its_times_and_refusals(store, cli_main, tmp_path, capsys):
    path = tmp_path / "omis.db"
    flask_db(path, FLASK_ROWS)
    assert cli_main(["import", str(path)]) == 1
    out = capsys.readouterr().out
    assert "база SQLite прежнего OMIS, таблица «requests»" in out
    assert "Нет столбцов (взяты значения по умолчанию)" not in out
    assert "Не перенесены столбцы: delayed_notified." in out
    assert "Не перенесены таблицы: processed_emails" in out
    assert "строка id=5: отказ — номер «bad#number»: Номер может содержать только буквы" in out
    assert "строка id=7: отказ — неизвестный статус «в работе»" in out
    assert "строка id=8: отказ — Создана: «2026-13-01 08:00:00» — не дата и время" in out
    assert "строка id=9: номер «10231» уже был в файле (строка id=1) — строка пропущена." in out
    assert "Импортировано: 2, уже были: 1, отказано: 3." in out
    first = store.get_request("10231")
    assert (first.status, first.position, first.author, first.comment, first.comment_author) == (
        "принята в работу", "Котельная", "Иванов", "Взяли в работу", "Иванов")
    assert (first.created_at, first.status_updated_at) == (at("2026-01-10T08:00:00"), at("2026-01-10T09:15:00"))
    assert first.first_news_at == at("2026-01-10T09:15:00")
    assert [(h.source, h.status, h.at) for h in first.history] == [("import", "принята в работу",
                                                                    at("2026-01-10T08:00:00"))]
    second = store.get_request("10232")
    assert second.status_updated_at == at("2026-01-12T10:00:00.123456") and second.comment == ""
    assert cli_main(["import", str(path)]) == 1
    assert "Импортировано: 0, уже были: 3, отказано: 3." in capsys.readouterr().out


def test_sqlite_without_optional_columns_and_a_dry_run_that_writes_nothing(store, cli_main, tmp_path, capsys):
    path = tmp_path / "old.sqlite"
    flask_db(path, [("Z-1", "выполнена", "2026-01-05 10:00:00")], columns="number, status, created_at")
    assert cli_main(["import", "--dry-run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Нет столбцов (взяты значения по умолчанию): position, author, comment, status_updated_at." in out
    assert "Пробный запуск (--dry-run): ничего не записано." in out
    assert "Было бы импортировано: 1, уже есть: 0, отказано: 0." in out
    assert store.get_request("Z-1") is None
    assert cli_main(["import", str(path)]) == 0
    found = store.get_request("Z-1")
    assert (found.author, found.status_updated_at) == ("Импорт", at("2026-01-05T10:00:00"))
    assert "строка 1" not in capsys.readouterr().out


def test_a_file_that_is_no_table_fails_and_a_missing_one_is_bad_usage(store, cli_main, tmp_path, capsys):
    png = tmp_path / "picture.xlsx"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert cli_main(["import", str(png)]) == 1
    assert "это не книга Excel" in capsys.readouterr().err
    text = tmp_path / "notes.csv"
    text.write_text("Что-то,другое\n1,2\n", encoding="utf-8")
    assert cli_main(["import", str(text)]) == 1
    assert "нет столбца «Номер»" in capsys.readouterr().err
    assert cli_main(["import", str(tmp_path / "none.db")]) == 2
    assert "не найден" in capsys.readouterr().err


def test_mail_read_again_after_an_import_keeps_the_imported_status_and_comment(store):
    imported = put(store, "M-1", at("2026-01-10T08:00:00"), "выполнена", comment="Сделано, акт подписан",
                   updated_at=at("2026-01-12T08:00:00"))
    done = store.apply_mail(imported.id, message="old-mail", status="принята в работу", comment="Взяли в работу",
                            received=at("2026-01-11T08:00:00"), message_id="<old@x>", subject="Заявка M-1")
    assert done.outcome == "recorded"
    found = store.get_request("M-1")
    assert (found.status, found.comment) == ("выполнена", "Сделано, акт подписан")
    assert [h.source for h in found.history] == ["import", "mail"]
