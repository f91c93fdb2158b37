"""`import`: requests from an export (.xlsx/.csv) or from the Flask OMIS's SQLite database (SPEC §10).

Each row becomes a request with its own times and status, and a history of one `import`
entry; a row is refused, with its reference and reason, for a bad number, an unknown status, a
time that cannot be read or a text the model refuses; the other rows go in. A number that
exists already (now or as an old number) is "already there", so running the import again
brings in nothing twice; a number repeated further down the same file is skipped the same way.

Times: a SQLite time without a zone is UTC (SQLite's `YYYY-MM-DD HH:MM:SS`); a workbook's date
cell or a CSV time without a zone is in OMIS_TIMEZONE. A date alone is the start of that day,
for «Срок» and «Обещано» its end (23:59:59), as on the pages. When the file has no time of the
last status change (the export has none), it is «Обновлена» for a request past its first
status, else «Создана». An unknown level (by id or title) falls back to the default level,
with a note.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone, tzinfo
from pathlib import Path
from typing import Any

from ..model import (
    DEFAULT_STATUS,
    STATUSES,
    ValidationError,
    normalize_number,
    number_error,
    utcnow,
    validate_new_request,
    validate_status_change,
)
from ..storage import DuplicateRequestError, Store
from .sources import Source, SourceRow, read_source

_LOCAL_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")
_END_OF_DAY = time(23, 59, 59)


class RowRefused(ValueError):
    """A row that cannot become a request; the message says why, in Russian."""


def _key(text: str) -> str:
    return " ".join(text.split()).casefold().replace("ё", "е")


_STATUS_KEYS = {_key(s): s for s in STATUSES}


@dataclass(frozen=True)
class Prepared:
    """A row read into the values of a request."""

    ref: str
    number: str
    values: dict[str, Any]
    notes: tuple[str, ...] = ()


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    source: Source
    dry_run: bool
    imported: list[tuple[str, str]] = field(default_factory=list)          # (ref, number)
    already: list[tuple[str, str, str | None]] = field(default_factory=list)  # (ref, number, earlier row in the file)
    refused: list[tuple[str, str]] = field(default_factory=list)           # (ref, reason)
    notes: list[tuple[str, str]] = field(default_factory=list)             # (ref, note)

    def lines(self) -> list[str]:
        """Describe the import in Russian: the file, what could not be mapped, each refusal, the totals."""
        out = [f"Файл: {self.source.description}, строк с данными: {len(self.source.rows)}."]
        out += self.source.notes
        out += [f"{ref}: {note}" for ref, note in self.notes]
        out += [f"{ref}: номер «{number}» уже был в файле ({earlier}) — строка пропущена."
                for ref, number, earlier in self.already if earlier]
        out += [f"{ref}: отказ — {reason}" for ref, reason in self.refused]
        if self.dry_run:
            out.append("Пробный запуск (--dry-run): ничего не записано.")
            out.append(f"Было бы импортировано: {len(self.imported)}, уже есть: {len(self.already)}, "
                       f"отказано: {len(self.refused)}.")
        else:
            out.append(f"Импортировано: {len(self.imported)}, уже были: {len(self.already)}, "
                       f"отказано: {len(self.refused)}.")
        return out


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: object) -> str:
    number = _text(value).strip()
    problem = number_error(number)
    if problem is not None:
        raise RowRefused(f"номер «{number}»: {problem}" if number else problem)
    return number


def _status(value: object) -> str:
    text = _text(value).strip()
    if not text:
        return DEFAULT_STATUS
    found = _STATUS_KEYS.get(_key(text))
    if found is None:
        raise RowRefused(f"неизвестный статус «{text}» (допустимы: {', '.join(STATUSES)})")
    return found


def read_time(value: object, *, tz: tzinfo, utc: bool, end_of_day: bool = False) -> datetime | None:
    """Return an instant of a cell (None when empty); RowRefused when it is not a time."""
    zone = timezone.utc if utc else tz
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, _END_OF_DAY if end_of_day else time.min)
    elif isinstance(value, (int, float)) and utc and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, timezone.utc)      # SQLite may keep Unix seconds
    else:
        moment = _parse_time_text(_text(value).strip(), end_of_day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(timezone.utc)


def _parse_time_text(text: str, end_of_day: bool) -> datetime:
    for fmt in _LOCAL_FORMATS:
        try:
            moment = datetime.strptime(text, fmt)  # noqa: DTZ007 - the zone is added by the caller
        except ValueError:
            continue
        return datetime.combine(moment.date(), _END_OF_DAY) if fmt == "%d.%m.%Y" and end_of_day else moment
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), _END_OF_DAY if end_of_day else time.min)
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise RowRefused(f"«{text}» — не дата и время (ожидается ДД.ММ.ГГГГ ЧЧ:ММ или ГГГГ-ММ-ДД ЧЧ:ММ:СС)") from None


def prepare(row: SourceRow, store: Store, *, utc: bool, now: datetime) -> Prepared:
    """Read one row into a request's values; RowRefused names what is wrong."""
    settings = store.settings
    fields = row.fields
    number = _number(fields.get("number"))
    status = _status(fields.get("status"))
    notes: list[str] = []
    times: dict[str, datetime | None] = {}
    names = {"created_at": "Создана", "updated_at": "Обновлена", "status_updated_at": "время статуса",
             "due": "Срок", "promised": "Обещано"}
    for key, title in names.items():
        try:
            times[key] = read_time(fields.get(key), tz=settings.timezone, utc=utc,
                                   end_of_day=key in ("due", "promised"))
        except RowRefused as exc:
            raise RowRefused(f"{title}: {exc}") from None
    created = times["created_at"] or now
    if created > now:
        raise RowRefused(f"Создана: {created:%Y-%m-%d %H:%M} UTC — позже, чем сейчас")
    updated = times["updated_at"] or times["status_updated_at"] or created
    status_at = times["status_updated_at"] or (updated if status != DEFAULT_STATUS else created)
    level_text = _text(fields.get("level")).strip()
    level = None
    if level_text:
        level = next((level_id for level_id, found in settings.sla_levels.items()
                      if _key(level_text) in (_key(level_id), _key(found.title))), None)
        if level is None:
            notes.append(f"уровень «{level_text}» неизвестен — взят уровень по умолчанию «{settings.sla_default}»")
    values = {"position": _text(fields.get("position")), "description": _text(fields.get("description")),
              "status": status, "comment": _text(fields.get("comment")), "author": _text(fields.get("author")),
              "comment_author": _text(fields.get("comment_author")), "level": level, "created_at": created,
              "status_updated_at": status_at, "updated_at": updated, "due": times["due"],
              "promised": times["promised"]}
    return Prepared(row.ref, number, values, tuple(notes))


def _reasons(exc: ValidationError) -> str:
    return "; ".join(exc.fields.values())


def run_import(store: Store, path: Path, *, dry_run: bool = False, now: datetime | None = None) -> ImportReport:
    """Import the requests of a file (SourceError when it cannot be read at all); in a dry run write nothing."""
    moment = now or utcnow()
    source = read_source(path)
    report = ImportReport(source, dry_run)
    seen: dict[str, str] = {}      # case-folded number → the row of this file that brought it
    for row in source.rows:
        try:
            item = prepare(row, store, utc=source.times_utc, now=moment)
        except RowRefused as exc:
            report.refused.append((row.ref, str(exc)))
            continue
        key = normalize_number(item.number)
        if key in seen:
            report.already.append((row.ref, item.number, seen[key]))
            continue
        if store.requests.resolve(item.number) is not None:
            report.already.append((row.ref, item.number, None))
            continue
        try:
            if dry_run:
                _check(item)
            else:
                store.import_request(item.number, now=moment, **item.values)
        except ValidationError as exc:
            report.refused.append((row.ref, _reasons(exc)))
            continue
        except DuplicateRequestError:     # it came in meanwhile (another import running)
            report.already.append((row.ref, item.number, None))
            continue
        seen[key] = row.ref
        report.imported.append((row.ref, item.number))
        report.notes += [(row.ref, note) for note in item.notes]
    return report


def _check(item: Prepared) -> None:
    """Run the model's checks of an import without writing (a dry run)."""
    values = item.values
    validate_new_request(item.number, values["position"], values["description"])
    validate_status_change(values["status"], values["comment"])
