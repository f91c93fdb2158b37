"""The JSON API (SPEC §5): requests, their status, unmatched mail and the health check."""
from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import azure.functions as func

from . import mailstore, store
from .delays import is_delayed
from .httputil import (
    cursor_param,
    guarded_json,
    iso,
    json_error,
    json_response,
    plain_int,
    request_author,
    request_json,
    route_tail,
)
from .model import ValidationError, utcnow
from .settings import get_settings
from .tables import StorageUnavailable

logger = logging.getLogger(__name__)

bp = func.Blueprint()


def _json_body(req: func.HttpRequest, fields: frozenset[str]) -> dict[str, Any] | func.HttpResponse:
    """Return the JSON object of a request body, or the error response to give instead."""
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return json_error("Ожидается тело с Content-Type: application/json.", 415)
    try:
        data = json.loads((req.get_body() or b"").decode("utf-8"))
        # "\ud800" parses into a str that is not text: it could be neither stored nor sent back as UTF-8.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        return json_error("Тело запроса — не JSON в UTF-8.", 400)
    if not isinstance(data, dict):
        return json_error("Ожидается JSON-объект.", 400)
    unknown = set(data) - fields
    if unknown:
        return json_error("Неизвестные поля: " + ", ".join(sorted(unknown)), 400,
                          {name: "Неизвестное поле." for name in sorted(unknown)})
    return data


def _limit(req: func.HttpRequest) -> int:
    limit = plain_int(req.params.get("limit") or "50")
    if limit is None or not 1 <= limit <= 100:
        raise ValidationError({"limit": "limit: целое число от 1 до 100."})
    return limit


def _invalid(exc: ValidationError) -> func.HttpResponse:
    return json_error("Неверные данные: " + "; ".join(exc.fields.values()), 400, exc.fields)


@bp.route(route="healthz", methods=["GET"])
def healthz(req: func.HttpRequest) -> func.HttpResponse:
    """Answer 200 when storage answers, else 503."""
    try:
        store.ping()
    except StorageUnavailable as exc:
        return json_response({"status": "unavailable", "error": str(exc)}, 503)
    return json_response({"status": "ok"})


@bp.route(route="api/requests", methods=["GET", "POST"])
@guarded_json
def api_requests(req: func.HttpRequest) -> func.HttpResponse:
    """List requests (GET) or create one (POST)."""
    if req.method == "POST":
        return _create(req)
    settings = get_settings()
    try:
        page = store.get_requests(status=req.params.get("status") or None, q=req.params.get("q") or None,
                                  limit=_limit(req), cursor=cursor_param(req))
    except ValidationError as exc:
        return _invalid(exc)
    now = utcnow()
    return json_response({"items": [request_json(r, now, is_delayed(r, now, settings)) for r in page.items],
                          "next": page.next_cursor})


def _create(req: func.HttpRequest) -> func.HttpResponse:
    data = _json_body(req, frozenset({"number", "position", "description"}))
    if isinstance(data, func.HttpResponse):
        return data
    try:
        created = store.add_request(data.get("number"), data.get("position", ""), data.get("description", ""),
                                    author=request_author(req), source="api")
    except ValidationError as exc:
        return _invalid(exc)
    except store.DuplicateRequestError as exc:
        return json_error(str(exc), 409, {"number": str(exc)})
    return json_response(request_json(created, utcnow(), False, with_history=True), 201,
                         {"Location": "/api/requests/" + quote(created.number, safe="")})


@bp.route(route="api/requests/{*rest}", methods=["GET", "POST"])
@guarded_json
def api_request(req: func.HttpRequest) -> func.HttpResponse:
    """Show one request (GET …/{number}) or change its status (POST …/{number}/status)."""
    tail = route_tail(req)
    if req.method == "POST":
        if not tail.endswith("/status"):
            return json_error("Изменение статуса: POST /api/requests/{номер}/status.", 404)
        return _change_status(req, tail[: -len("/status")])
    found = store.get_request(tail)
    if found is None:
        return json_error(f"Заявка «{tail}» не найдена.", 404)
    now = utcnow()
    return json_response(request_json(found, now, is_delayed(found, now, get_settings()), with_history=True))


def _change_status(req: func.HttpRequest, number: str) -> func.HttpResponse:
    data = _json_body(req, frozenset({"status", "comment"}))
    if isinstance(data, func.HttpResponse):
        return data
    try:
        changed = store.update_status(number, data.get("status"), data.get("comment", ""),
                                      author=request_author(req), source="api")
    except ValidationError as exc:
        return _invalid(exc)
    except store.RequestNotFound as exc:
        return json_error(str(exc), 404)
    full = store.get_request(changed.number)
    now = utcnow()
    return json_response(request_json(full, now, is_delayed(full, now, get_settings()), with_history=True))


@bp.route(route="api/mail/unmatched", methods=["GET"])
@guarded_json
def api_unmatched_mail(req: func.HttpRequest) -> func.HttpResponse:
    """List mail that named no known request."""
    try:
        items, cursor = mailstore.list_unmatched_mail(limit=_limit(req), cursor=cursor_param(req))
    except ValidationError as exc:
        return _invalid(exc)
    except ValueError:
        return json_error("Неверный курсор.", 400, {"cursor": "Неверный курсор."})
    return json_response({"items": [{"subject": m.subject, "from": m.sender, "received": iso(m.received),
                                     "numbers": list(m.numbers), "message_id": m.message_id,
                                     "reason": m.reason} for m in items], "next": cursor})
