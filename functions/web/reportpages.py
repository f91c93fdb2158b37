"""The contractor's record and the list as a file (SPEC §5, §10): /reports, /api/reports, /export/requests.*."""
from __future__ import annotations

import logging

import azure.functions as func

from ..model import ValidationError, utcnow
from ..reports.charts import format_minutes, format_share, month_label, period_text
from ..reports.export import CSV_TYPE, XLSX_TYPE, csv_bytes, export_rows, workbook_bytes
from ..reports.figures import Report
from ..reports.page import charts
from ..reports.record import load_report, report_json
from ..storage import ListQuery, get_store
from .http import SECURITY_HEADERS, guarded_json, json_error, json_response
from .present import KIND_TITLES
from .render import error, guarded_page, page

logger = logging.getLogger(__name__)

bp = func.Blueprint()

SEARCH_MAX = 200
PARAM_MAX = 40      # a month is 7 characters, a level id at most 32


def _load(req: func.HttpRequest) -> Report:
    """Build the report the query asks for (`from`, `to`: YYYY-MM; `level`); ValidationError if it is wrong."""
    params = {name: (req.params.get(name) or "").strip()[:PARAM_MAX] for name in ("from", "to", "level")}
    return load_report(get_store(), start=params["from"] or None, end=params["to"] or None,
                       level=params["level"] or None, now=utcnow())


@bp.route(route="reports", methods=["GET"])
@guarded_page
def page_reports(req: func.HttpRequest) -> func.HttpResponse:
    """Show the contractor's record: figures per month and level, charts and the longest waits."""
    try:
        report = _load(req)
    except ValidationError as exc:
        return error(req, 400, "Неверный период", "Отчёт не построен: " + "; ".join(exc.fields.values()))
    return page(req, "reports.html", nav="reports", report=report, charts=charts(report, KIND_TITLES),
                levels=get_store().settings.sla_levels,
                filters={"from": str(report.range.first), "to": str(report.range.last), "level": report.level or ""},
                month_label=month_label, period=period_text, minutes=format_minutes, share=format_share,
                kinds=KIND_TITLES)


@bp.route(route="api/reports", methods=["GET"])
@guarded_json
def api_reports(req: func.HttpRequest) -> func.HttpResponse:
    """Answer the contractor's record as JSON (`from`, `to`: YYYY-MM; `level`: a level id)."""
    try:
        report = _load(req)
    except ValidationError as exc:
        return json_error("Неверные данные: " + "; ".join(exc.fields.values()), 400, exc.fields)
    return json_response(report_json(report, get_store().settings.timezone_name))


def _export_query(req: func.HttpRequest) -> ListQuery:
    """Return the list query of an export: the list page's filters (status, q, archived, …)."""
    p = req.params
    return ListQuery(status=p.get("status") or None, q=(p.get("q") or "").strip()[:SEARCH_MAX] or None,
                     archived=p.get("archived") == "1", sort=p.get("sort") or "updated",
                     breached=p.get("breached") == "1", waiting_on=p.get("waiting_on") or None,
                     level=p.get("level") or None)


def _file(req: func.HttpRequest, suffix: str, mimetype: str) -> func.HttpResponse:
    store = get_store()
    try:
        rows = list(export_rows(store, _export_query(req)))
    except ValidationError as exc:
        return error(req, 400, "Неверная ссылка", "Выгрузка не сделана: " + "; ".join(exc.fields.values()))
    data = workbook_bytes(rows) if suffix == "xlsx" else csv_bytes(rows)
    day = utcnow().astimezone(store.settings.timezone).strftime("%Y-%m-%d")
    logger.info("export: %d requests as %s", len(rows), suffix)
    ctype = mimetype + ("; charset=utf-8; header=present" if suffix == "csv" else "")
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store", "Content-Type": ctype,
               "Content-Disposition": f'attachment; filename="omis-requests-{day}.{suffix}"'}
    return func.HttpResponse(data, status_code=200, mimetype=mimetype, headers=headers)


@bp.route(route="export/requests.xlsx", methods=["GET"])
@guarded_page
def export_xlsx(req: func.HttpRequest) -> func.HttpResponse:
    """Send the list under its filters as an Excel workbook."""
    return _file(req, "xlsx", XLSX_TYPE)


@bp.route(route="export/requests.csv", methods=["GET"])
@guarded_page
def export_csv(req: func.HttpRequest) -> func.HttpResponse:
    """Send the list under its filters as UTF-8 CSV."""
    return _file(req, "csv", CSV_TYPE)
