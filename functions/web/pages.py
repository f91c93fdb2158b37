"""The request pages (SPEC §5): the list, the new-request form, the card and what can be done on it."""
from __future__ import annotations

import logging
from typing import Any

import azure.functions as func

from ..mail.outbox import new_request_hook
from ..model import FINAL_STATUSES, ValidationError, parse_instant, utcnow
from ..storage import (
    ConflictError,
    DuplicateRequestError,
    ListQuery,
    RequestNotFound,
    SimilarNumberError,
    Store,
    get_store,
)
from ..storage.changes import UNSET
from .http import cursor_param, plain_int, request_author, route_tail, split_action
from .present import present
from .render import (
    csrf_token,
    error,
    guarded_form,
    guarded_page,
    list_url,
    not_found,
    page,
    redirect,
    request_url,
    take_flash,
)
from .signing import Flash

logger = logging.getLogger(__name__)

bp = func.Blueprint()

PAGE_SIZE = 50
SEARCH_MAX = 200
CARD_ACTIONS = ("status", "edit", "archive", "restore", "nudge")
NEW_FIELDS = ("number", "position", "description", "level", "due")
SEND_FIELDS = ("send", "to")


# ----- the list --------------------------------------------------------------------------

def _list_query(req: func.HttpRequest) -> tuple[ListQuery, dict[str, str]]:
    p = req.params
    filters = {"status": p.get("status") or "", "q": (p.get("q") or "").strip()[:SEARCH_MAX],
               "archived": "1" if p.get("archived") == "1" else "", "sort": p.get("sort") or "",
               "breached": "1" if p.get("breached") == "1" else "", "waiting_on": p.get("waiting_on") or "",
               "level": p.get("level") or ""}
    query = ListQuery(status=filters["status"] or None, q=filters["q"] or None, limit=PAGE_SIZE,
                      cursor=cursor_param(req), archived=bool(filters["archived"]),
                      sort=filters["sort"] or "updated", breached=bool(filters["breached"]),
                      waiting_on=filters["waiting_on"] or None, level=filters["level"] or None)
    return query, filters


def _list_page(req: func.HttpRequest) -> func.HttpResponse:
    store = get_store()
    try:
        query, filters = _list_query(req)
        page_data = store.list_requests(query)
    except ValidationError as exc:
        return error(req, 400, "Неверная ссылка", "Ссылка на страницу списка устарела или испорчена ("
                     + "; ".join(exc.fields.values()) + "). Откройте список заново.")
    counts = store.counts()
    now = utcnow()
    flash, clear = take_flash(req)
    number = plain_int(req.params.get("page") or "1") or 1
    next_cursor = page_data.next_cursor
    next_url = list_url(**filters, cursor=next_cursor, page=str(number + 1)) if next_cursor else None
    return page(req, "list.html", cookie=clear, nav="archive" if query.archived else "list", flash=flash,
                rows=[present(r, store.settings, now) for r in page_data.items], counts=counts,
                total=sum(v for k, v in counts.items() if k != "archived"), filters=filters,
                filtered=any(v for k, v in filters.items() if k != "sort"), page_number=number,
                next_url=next_url, first_url=list_url(**filters) if query.cursor else None,
                levels=store.settings.sla_levels)


@bp.route(route="{empty:maxlength(0)?}", methods=["GET"])
@guarded_page
def page_index(req: func.HttpRequest) -> func.HttpResponse:
    """Show the requests, last updated first (the site root)."""
    # An empty route would mean "/page_index" to the real host; the constraint keeps this to "/".
    return _list_page(req)


@bp.route(route="requests", methods=["GET"])
@guarded_page
def page_requests(req: func.HttpRequest) -> func.HttpResponse:
    """Show the requests, last updated first."""
    return _list_page(req)


# ----- the new-request form --------------------------------------------------------------

def new_form(req: func.HttpRequest, values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
             code: int = 200, existing: str | None = None, similar: str | None = None,
             message: str | None = None) -> func.HttpResponse:
    """Show the new-request form (again, with what was typed and the errors)."""
    settings = get_store().settings
    values = {"level": settings.sla_default, "to": ", ".join(settings.contractor_emails), **(values or {})}
    return page(req, "new.html", code, nav="new", values=values, errors=errors or {}, csrf_token=csrf_token(req),
                existing=existing, similar=similar, message=message, levels=settings.sla_levels,
                mail_send=settings.mail_send)


def _reshow_new(req: func.HttpRequest, form: dict[str, str], message: str, code: int) -> func.HttpResponse:
    values = {name: form.get(name, "") for name in NEW_FIELDS + SEND_FIELDS}
    return new_form(req, values, {}, code, message=message)


@bp.route(route="new", methods=["GET"])
@guarded_page
def page_new(req: func.HttpRequest) -> func.HttpResponse:
    """Show the form for a new request."""
    return new_form(req)


def similar_confirmed(form: dict[str, str], number: str) -> bool:
    """Say whether the form confirms a look-alike number, and for the very number it now carries.

    The page's checkbox names the number it was shown for: a number changed after the refusal
    needs its own confirmation.
    """
    return form.get("confirm_similar") == "1" and form.get("similar_number", "").strip() == number.strip()


def _due_field(text: str, store: Store) -> Any:
    """Return the due of a form field: empty → none, else the instant (ValidationError if unreadable)."""
    if not text.strip():
        return None
    try:
        return parse_instant(text, store.settings.timezone)
    except ValueError as exc:
        raise ValidationError({"due": str(exc)}) from None


@bp.route(route="add_request", methods=["POST"])
@guarded_form(_reshow_new)
def page_add_request(req: func.HttpRequest, form: dict[str, str]) -> func.HttpResponse:
    """Create a request from the form; on bad input show the form again with the errors."""
    store = get_store()
    values = {name: form.get(name, "") for name in NEW_FIELDS + SEND_FIELDS}
    author = request_author(req)
    try:
        outbox = new_request_hook(store, values["send"] == "1", values["to"] if values["send"] == "1" else None,
                                  author)
        created = store.add_request(values["number"], values["position"], values["description"],
                                    author=author, source="web", level=values["level"] or None,
                                    due=_due_field(values["due"], store),
                                    confirm_similar=similar_confirmed(form, values["number"]), outbox=outbox)
    except ValidationError as exc:
        return new_form(req, values, exc.fields, 400)
    except DuplicateRequestError as exc:
        return new_form(req, values, {"number": str(exc)}, 409, existing=exc.existing)
    except SimilarNumberError as exc:
        return new_form(req, values, {"number": str(exc)}, 409, existing=exc.existing, similar=exc.existing)
    sent = " Письмо подрядчику поставлено в очередь." if values["send"] == "1" else ""
    return redirect(req, "/", f"Заявка «{created.number}» добавлена.{sent}")


# ----- the request card ------------------------------------------------------------------

def card(req: func.HttpRequest, number: str, *, values: dict[str, str] | None = None,
         errors: dict[str, str] | None = None, edit_values: dict[str, str] | None = None,
         edit_errors: dict[str, str] | None = None, code: int = 200, flash: Flash | None = None,
         cookie: str | None = None, confirm: str | None = None, similar: str | None = None,
         existing: str | None = None, message: str | None = None) -> func.HttpResponse:
    """Show a request's card (again, with a form's values and errors)."""
    store = get_store()
    found = store.get_request(number)
    if found is None:
        return not_found(req, f"Заявки «{number}» нет. Проверьте номер или найдите заявку в списке.")
    settings = store.settings
    view = present(found, settings, utcnow())
    tz = settings.timezone
    due = found.due.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if found.due else ""
    default_edit = {"number": found.number, "position": found.position, "description": found.description,
                    "level": view.level.id, "due": due}
    return page(req, "request.html", code, cookie=cookie, nav="card", flash=flash, r=found, view=view,
                values=values or {"status": found.status, "comment": ""}, errors=errors or {},
                edit_values=edit_values or default_edit, edit_errors=edit_errors or {}, csrf_token=csrf_token(req),
                confirm=confirm, similar=similar, existing=existing, message=message, levels=settings.sla_levels,
                mail_send=settings.mail_send, final_statuses=FINAL_STATUSES)


def _reshow_card(req: func.HttpRequest, form: dict[str, str], message: str, code: int) -> func.HttpResponse:
    from .render import resubmit

    return resubmit(req, form, message, code)


@bp.route(route="requests/{*rest}", methods=["GET", "POST"])
@guarded_page
def page_request(req: func.HttpRequest) -> func.HttpResponse:
    """Show one request (GET …/{number}); POST …/status, …/edit, …/archive, …/restore, …/nudge."""
    tail = route_tail(req)
    if req.method == "POST":
        number, action = split_action(tail, CARD_ACTIONS)
        if not number:  # POST /requests: this catch-all route takes it, but only GET has a meaning there
            resp = error(req, 405, "Метод не разрешён", "Список заявок можно только открыть.")
            resp.headers["Allow"] = "GET"
            return resp
        if action is None:
            return not_found(req)
        return _card_action(req)
    number = tail
    if not number:
        return _list_page(req)
    store = get_store()
    found = store.get_request(number, with_history=False)
    if found is None:
        return not_found(req, f"Заявки «{number}» нет. Проверьте номер или найдите заявку в списке.")
    if found.number != number:   # an old number (or another letter case): show the card under its number
        return redirect(req, request_url(found.number), code=302)
    flash, clear = take_flash(req)
    return card(req, number, flash=flash, cookie=clear)


@guarded_form(_reshow_card)
def _card_action(req: func.HttpRequest, form: dict[str, str]) -> func.HttpResponse:
    number, action = split_action(route_tail(req), CARD_ACTIONS)
    store = get_store()
    current = store.get_request(number, with_history=False)
    if current is None:
        return not_found(req, f"Заявки «{number}» нет.")
    try:
        if action == "status":
            return _change_status(req, store, current.number, current.status, form)
        if action == "edit":
            return _edit(req, store, current.number, form)
        if action in ("archive", "restore"):
            changed = store.set_archived(current.number, action == "archive", author=request_author(req))
            text = ("перенесена в архив: её нет в списке и напоминаниях" if changed.archived
                    else "возвращена из архива")
            return redirect(req, request_url(changed.number), f"Заявка «{changed.number}» {text}.")
        return _nudge(req, store, current.number)
    except ConflictError as exc:
        if action == "nudge":
            return card(req, current.number, errors={"nudge": str(exc)}, code=409)
        return card(req, current.number, message=str(exc), code=409)
    except RequestNotFound:
        return not_found(req, f"Заявки «{number}» нет.")


def _nudge(req: func.HttpRequest, store: Store, number: str) -> func.HttpResponse:
    from ..mail.outbox import SendingOff, queue_nudge

    try:
        queue_nudge(store, number, author=request_author(req), source="web")
    except SendingOff as exc:
        return card(req, number, errors={"nudge": str(exc)}, code=400)
    return redirect(req, request_url(number), f"Заявка «{number}»: напоминание подрядчику поставлено в очередь.")


def _change_status(req: func.HttpRequest, store: Store, number: str, status_now: str,
                   form: dict[str, str]) -> func.HttpResponse:
    values = {"status": form.get("status", ""), "comment": form.get("comment", "")}
    if values["status"] == status_now and not values["comment"].strip():
        return card(req, number, values=values, code=400,
                    errors={"comment": "Ничего не изменилось: выберите другой статус или напишите комментарий."})
    reopening = status_now in FINAL_STATUSES and values["status"] not in FINAL_STATUSES
    if reopening and form.get("confirm_reopen") != "1":
        return card(req, number, values=values, code=409, confirm="reopen")
    try:
        store.update_status(number, values["status"], values["comment"], author=request_author(req), source="web")
    except ValidationError as exc:
        return card(req, number, values=values, errors=exc.fields, code=400)
    if values["status"] != status_now:
        message = f"Заявка «{number}»: статус «{values['status']}»."
    else:
        message = f"Заявка «{number}»: комментарий сохранён."
    return redirect(req, request_url(number), message)


def _edit(req: func.HttpRequest, store: Store, number: str, form: dict[str, str]) -> func.HttpResponse:
    values = {name: form.get(name, "") for name in NEW_FIELDS}
    try:
        changed = store.edit_request(number, new_number=values["number"], position=values["position"],
                                     description=values["description"], level=values["level"] or None,
                                     due=_due_field(values["due"], store) if "due" in form else UNSET,
                                     author=request_author(req), source="web",
                                     confirm_similar=similar_confirmed(form, values["number"]))
    except ValidationError as exc:
        return card(req, number, edit_values=values, edit_errors=exc.fields, code=400)
    except DuplicateRequestError as exc:
        return card(req, number, edit_values=values, edit_errors={"number": str(exc)}, code=409,
                    existing=exc.existing)
    except SimilarNumberError as exc:
        return card(req, number, edit_values=values, edit_errors={"number": str(exc)}, code=409,
                    similar=exc.existing)
    return redirect(req, request_url(changed.number), f"Заявка «{changed.number}»: изменения сохранены.")
