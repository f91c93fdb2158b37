"""The JSON API (SPEC §5): requests, their status, edits and archive, unmatched mail, the health check."""
from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import azure.functions as func

from ..mail import unmatched
from ..mail.outbox import new_request_hook
from ..model import ValidationError, parse_instant, utcnow
from ..storage import (
    ConflictError,
    DuplicateRequestError,
    RequestNotFound,
    SimilarNumberError,
    StorageUnavailable,
    Store,
    UnmatchedGone,
    get_store,
)
from ..storage.changes import UNSET
from ..storage.mail import UnmatchedMail
from .http import (
    cursor_param,
    guarded_json,
    json_error,
    json_response,
    plain_int,
    request_author,
    route_tail,
    split_action,
)
from .present import iso, present, request_json

logger = logging.getLogger(__name__)

bp = func.Blueprint()

CREATE_FIELDS = frozenset({"number", "position", "description", "level", "due", "send", "to", "confirm_similar"})
EDIT_FIELDS = frozenset({"number", "position", "description", "level", "due", "confirm_similar"})
REQUEST_ACTIONS = ("status", "restore", "nudge")


def _json_body(req: func.HttpRequest, fields: frozenset[str], *, optional: bool = False
               ) -> dict[str, Any] | func.HttpResponse:
    """Return the JSON object of a request body, or the error response to give instead.

    `optional`: an empty body is an empty object (actions that take no fields).
    """
    body = req.get_body() or b""
    if optional and not body.strip():
        return {}
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return json_error("Ожидается тело с Content-Type: application/json.", 415)
    try:
        data = json.loads(body.decode("utf-8"))
        # "\ud800" parses into a str that is not text: it could be neither stored nor sent back as UTF-8.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        return json_error("Тело запроса — не JSON в UTF-8.", 400)
    if not isinstance(data, dict):
        return json_error("Ожидается JSON-объект.", 400)
    unknown = set(data) - fields
    if unknown:
        return json_error("Неизвестные поля: " + ", ".join(sorted(unknown)), 400,
                          dict.fromkeys(sorted(unknown), "Неизвестное поле."))
    return data


def _limit(req: func.HttpRequest) -> int:
    limit = plain_int(req.params.get("limit") or "50")
    if limit is None or not 1 <= limit <= 100:
        raise ValidationError({"limit": "limit: целое число от 1 до 100."})
    return limit


def _invalid(exc: ValidationError) -> func.HttpResponse:
    return json_error("Неверные данные: " + "; ".join(exc.fields.values()), 400, exc.fields)


def _flag(value: object, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    raise ValidationError({name: f"{name}: ожидается true или false."})


def _due(data: dict[str, Any], store: Store) -> Any:
    """Return the `due` of a body: absent → UNSET, null → cleared, text → the instant."""
    if "due" not in data:
        return UNSET
    if data["due"] is None:
        return None
    try:
        return parse_instant(data["due"], store.settings.timezone)
    except ValueError as exc:
        raise ValidationError({"due": str(exc)}) from None


def _request_response(store: Store, number: str, code: int = 200, headers: dict[str, str] | None = None
                      ) -> func.HttpResponse:
    found = store.get_request(number)
    if found is None:
        return json_error(f"Заявка «{number}» не найдена.", 404)
    return json_response(request_json(present(found, store.settings, utcnow()), with_history=True), code, headers)


def _store_errors(exc: Exception) -> func.HttpResponse:
    """Answer the storage layer's refusals: 400 with fields, 404, 409."""
    if isinstance(exc, ValidationError):
        return _invalid(exc)
    if isinstance(exc, RequestNotFound):
        return json_error(str(exc), 404)
    if isinstance(exc, (DuplicateRequestError, SimilarNumberError)):
        return json_error(str(exc), 409, {"number": str(exc)})
    if isinstance(exc, ConflictError):
        return json_error(str(exc), 409)
    raise exc


_REFUSALS = (ValidationError, RequestNotFound, DuplicateRequestError, SimilarNumberError, ConflictError)


@bp.route(route="healthz", methods=["GET"])
def healthz(req: func.HttpRequest) -> func.HttpResponse:
    """Answer 200 when storage answers and OMIS's tables are there (re-created if not), else 503."""
    try:
        get_store().ping()
    except StorageUnavailable as exc:
        return json_response({"status": "unavailable", "error": str(exc)}, 503)
    return json_response({"status": "ok"})


@bp.route(route="api/requests", methods=["GET", "POST"])
@guarded_json
def api_requests(req: func.HttpRequest) -> func.HttpResponse:
    """List requests (GET) or create one (POST)."""
    store = get_store()
    if req.method == "POST":
        return _create(req, store)
    params = req.params
    try:
        page = store.list_requests(
            status=params.get("status") or None, q=(params.get("q") or "").strip()[:200] or None,
            limit=_limit(req), cursor=cursor_param(req), archived=params.get("archived") == "1",
            sort=params.get("sort") or "updated", breached=params.get("breached") == "1",
            waiting_on=params.get("waiting_on") or None, level=params.get("level") or None)
    except ValidationError as exc:
        return _invalid(exc)
    now = utcnow()
    return json_response({"items": [request_json(present(r, store.settings, now)) for r in page.items],
                          "next": page.next_cursor})


def _create(req: func.HttpRequest, store: Store) -> func.HttpResponse:
    data = _json_body(req, CREATE_FIELDS)
    if isinstance(data, func.HttpResponse):
        return data
    try:
        due = _due(data, store)
        confirm = _flag(data.get("confirm_similar"), "confirm_similar")
        send = _flag(data.get("send"), "send")
        outbox = new_request_hook(store, send, data.get("to"), request_author(req))
        created = store.add_request(data.get("number"), data.get("position", ""), data.get("description", ""),
                                    author=request_author(req), source="api", level=data.get("level"),
                                    due=None if due is UNSET else due,
                                    confirm_similar=confirm, outbox=outbox)
    except _REFUSALS as exc:
        return _store_errors(exc)
    return _request_response(store, created.number, 201,
                             {"Location": "/api/requests/" + quote(created.number, safe="")})


@bp.route(route="api/requests/{*rest}", methods=["GET", "POST", "PATCH", "DELETE"])
@guarded_json
def api_request(req: func.HttpRequest) -> func.HttpResponse:
    """One request: GET shows it, PATCH edits it, DELETE archives it; POST …/status, …/restore, …/nudge."""
    store = get_store()
    number, action = split_action(route_tail(req), REQUEST_ACTIONS)
    if not number:   # DELETE/PATCH /api/requests: the list takes GET and POST only
        return json_response({"error": f"Метод {req.method} здесь не разрешён."}, 405, {"Allow": "GET, POST"})
    try:
        if req.method == "GET" and action is None:
            return _request_response(store, number)
        if req.method == "PATCH" and action is None:
            return _edit(req, store, number)
        if req.method == "DELETE" and action is None:
            changed = store.set_archived(number, True, author=request_author(req), source="api")
            return _request_response(store, changed.number)
        if req.method == "POST" and action == "status":
            return _change_status(req, store, number)
        if req.method == "POST" and action == "restore":
            body = _json_body(req, frozenset(), optional=True)
            if isinstance(body, func.HttpResponse):
                return body
            changed = store.set_archived(number, False, author=request_author(req), source="api")
            return _request_response(store, changed.number)
        if req.method == "POST" and action == "nudge":
            return _nudge(req, store, number)
    except _REFUSALS as exc:
        return _store_errors(exc)
    allowed = "GET, PATCH, DELETE" if action is None else "POST"
    return json_response({"error": f"Метод {req.method} здесь не разрешён."}, 405, {"Allow": allowed})


def _nudge(req: func.HttpRequest, store: Store, number: str) -> func.HttpResponse:
    from ..mail.outbox import SendingOff, queue_nudge

    body = _json_body(req, frozenset(), optional=True)
    if isinstance(body, func.HttpResponse):
        return body
    try:
        changed = queue_nudge(store, number, author=request_author(req), source="api")
    except SendingOff as exc:
        return json_error(str(exc), 400, {"send": str(exc)})
    return _request_response(store, changed.number if changed else number)


def _edit(req: func.HttpRequest, store: Store, number: str) -> func.HttpResponse:
    data = _json_body(req, EDIT_FIELDS)
    if isinstance(data, func.HttpResponse):
        return data
    changed = store.edit_request(number, new_number=data.get("number"), position=data.get("position"),
                                 description=data.get("description"), level=data.get("level"),
                                 due=_due(data, store), author=request_author(req), source="api",
                                 confirm_similar=_flag(data.get("confirm_similar"), "confirm_similar"))
    return _request_response(store, changed.number)


def _change_status(req: func.HttpRequest, store: Store, number: str) -> func.HttpResponse:
    data = _json_body(req, frozenset({"status", "comment"}))
    if isinstance(data, func.HttpResponse):
        return data
    changed = store.update_status(number, data.get("status"), data.get("comment", ""),
                                  author=request_author(req), source="api")
    return _request_response(store, changed.number)


def mail_json(mail: UnmatchedMail) -> dict[str, Any]:
    """Return the JSON form of an unmatched mail (SPEC §5)."""
    data: dict[str, Any] = {"id": mail.id, "subject": mail.subject, "from": mail.sender,
                            "received": iso(mail.received), "numbers": list(mail.numbers),
                            "message_id": mail.message_id, "reason": mail.reason, "state": mail.state}
    if mail.state != "open":
        data.update(handled_by=mail.handled_by, handled_at=iso(mail.handled_at),
                    request=mail.request_number or None)
    return data


@bp.route(route="api/mail/unmatched", methods=["GET"])
@guarded_json
def api_unmatched_mail(req: func.HttpRequest) -> func.HttpResponse:
    """List mail that named no known request (`dismissed=1`: the dismissed)."""
    try:
        items, cursor = get_store().mail.list_unmatched(limit=_limit(req), cursor=cursor_param(req),
                                                        dismissed=req.params.get("dismissed") == "1")
    except ValidationError as exc:
        return _invalid(exc)
    except ValueError:
        return json_error("Неверный курсор.", 400, {"cursor": "Неверный курсор."})
    return json_response({"items": [mail_json(m) for m in items], "next": cursor})


@bp.route(route="api/mail/unmatched/{item}/{action}", methods=["POST"])
@guarded_json
def api_unmatched_action(req: func.HttpRequest) -> func.HttpResponse:
    """Attach an unmatched mail to a request, make a request of it, or dismiss it."""
    store = get_store()
    item, action = req.route_params.get("item") or "", req.route_params.get("action") or ""
    fields = {"attach": frozenset({"number"}), "create": frozenset({"number", "position", "description",
                                                                    "confirm_similar"}),
              "dismiss": frozenset()}.get(action)
    if fields is None:
        return json_error("Действие: attach, create или dismiss.", 404)
    data = _json_body(req, fields, optional=action == "dismiss")
    if isinstance(data, func.HttpResponse):
        return data
    by = request_author(req)
    try:
        if action == "dismiss":
            return json_response(mail_json(unmatched.dismiss(store, item, by=by)))
        if action == "attach":
            if not isinstance(data.get("number"), str) or not data["number"].strip():
                raise ValidationError({"number": "Укажите номер заявки."})
            done = unmatched.attach(store, item, data["number"].strip(), by=by)
        else:
            done = unmatched.create_from(store, item, data.get("number"), data.get("position", ""),
                                         data.get("description", ""), by=by,
                                         confirm_similar=_flag(data.get("confirm_similar"), "confirm_similar"))
    except UnmatchedGone:
        return json_error("Такого неразобранного письма нет.", 404)
    except unmatched.AttachRefused as exc:
        return json_error(str(exc), 409)
    except _REFUSALS as exc:
        return _store_errors(exc)
    body = request_json(present(done.request, store.settings, utcnow()))
    body["mail"] = mail_json(done.mail)
    return json_response(body, 201)   # SPEC §5: attach and create answer 201 with the request
