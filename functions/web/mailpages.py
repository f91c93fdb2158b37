"""The «Неразобранные письма» pages (SPEC §5): the list, a mail's full text, attach, create, dismiss.

An action answers 303 back to the list with a flash (and a link to the request it went to). A
refused action shows the page it came from again (the list, or the one mail's page: the form's
`view`), with the error at that mail and what was typed. An action on a mail that someone has
handled meanwhile (a double click, two people at once) says so instead of failing.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import azure.functions as func

from ..mail import unmatched
from ..model import FINAL_STATUSES, ValidationError
from ..storage import DuplicateRequestError, RequestNotFound, SimilarNumberError, UnmatchedGone, get_store
from ..storage.mail import UnmatchedMail
from .http import cursor_param, plain_int, request_author
from .pages import similar_confirmed
from .render import (
    csrf_token,
    error,
    guarded_form,
    guarded_page,
    not_found,
    page,
    redirect,
    request_url,
    resubmit,
    take_flash,
)
from .signing import CSRF_FIELD

bp = func.Blueprint()

PAGE_SIZE = 50
SUGGESTIONS = 30
LIST = "/mail/unmatched"


def _suggestions() -> list[str]:
    """Return numbers of open requests to suggest when attaching (last updated first)."""
    items = get_store().list_requests(limit=SUGGESTIONS).items
    return [r.number for r in items if r.status not in FINAL_STATUSES]


def _look_alike(number: str) -> str | None:
    """Return the number of a request that looks like `number` (other scripts' letters), or None."""
    return get_store().requests.look_alike(number)


def _list(req: func.HttpRequest, *, code: int = 200, **refused: Any) -> func.HttpResponse:
    dismissed = req.params.get("dismissed") == "1"
    try:
        cursor = cursor_param(req)
        items, next_cursor = get_store().mail.list_unmatched(limit=PAGE_SIZE, cursor=cursor, dismissed=dismissed)
    except (ValueError, ValidationError):
        return error(req, 400, "Неверная ссылка", "Ссылка на страницу писем устарела или испорчена.")
    number = (plain_int(req.params.get("page") or "1") or 1) if cursor else 1
    query = {"cursor": next_cursor, **({"dismissed": "1"} if dismissed else {}), "page": str(number + 1)}
    next_url = LIST + "?" + urlencode(query) if next_cursor else None
    flash, clear = take_flash(req)
    return page(req, "unmatched.html", code, cookie=clear, nav="mail", items=items, cursor=cursor,
                next_url=next_url, dismissed=dismissed, suggestions=_suggestions() if not dismissed else [],
                csrf_token=csrf_token(req), flash=flash, page_number=number, **_refusal(**refused))


def _refusal(errors: dict[str, dict[str, str]] | None = None, values: dict[str, dict[str, str]] | None = None,
             similar: dict[str, str] | None = None, suggested: dict[str, str] | None = None) -> dict[str, Any]:
    return {"errors": errors or {}, "values": values or {}, "similar": similar or {}, "suggested": suggested or {}}


def _item(req: func.HttpRequest, item_id: str, *, code: int = 200, **refused: Any) -> func.HttpResponse:
    mail = get_store().mail.get_unmatched(item_id)
    if mail is None:
        return not_found(req, "Такого неразобранного письма нет.")
    return page(req, "unmatched_item.html", code, nav="mail", m=mail, suggestions=_suggestions(),
                csrf_token=csrf_token(req), **_refusal(**refused))


@bp.route(route="mail/unmatched", methods=["GET"])
@guarded_page
def page_unmatched_mail(req: func.HttpRequest) -> func.HttpResponse:
    """Show the mail that named no known request, newest first (`dismissed=1`: the dismissed)."""
    return _list(req)


@bp.route(route="mail/unmatched/{item}", methods=["GET"])
@guarded_page
def page_unmatched_item(req: func.HttpRequest) -> func.HttpResponse:
    """Show one unmatched mail with its full text."""
    return _item(req, req.route_params.get("item") or "")


def _done_text(mail: UnmatchedMail) -> str:
    return f"«{mail.subject or '(без темы)'}»"


def _handled_meanwhile(req: func.HttpRequest, item_id: str, refusal: str) -> func.HttpResponse | None:
    """Answer an action on a mail that is no longer open: back to the list, saying what became of it."""
    mail = get_store().mail.get_unmatched(item_id)
    if mail is None or mail.state == "open":
        return None
    number = mail.request_number
    link = (request_url(number), f"Открыть заявку «{number}»") if number else None
    return redirect(req, LIST, refusal, link=link)


@bp.route(route="mail/unmatched/{item}/{action}", methods=["POST"])
@guarded_form(resubmit)
def page_unmatched_action(req: func.HttpRequest, form: dict[str, str]) -> func.HttpResponse:
    """Attach an unmatched mail to a request, make a request of it, or dismiss it; back to the list."""
    store = get_store()
    item, action = req.route_params.get("item") or "", req.route_params.get("action") or ""
    if action not in ("attach", "create", "dismiss"):
        return not_found(req)
    by = request_author(req)
    number = form.get("number", "").strip()
    typed = {k: v for k, v in form.items() if k not in (CSRF_FIELD, "view")}

    def refuse(message: dict[str, str], code: int, **extra: str | None) -> func.HttpResponse:
        refused: dict[str, Any] = {"errors": {item: message}, "values": {item: {**typed, "action": action}},
                                   **{k: {item: v} for k, v in extra.items() if v}}
        if form.get("view") == "item":
            return _item(req, item, code=code, **refused)
        return _list(req, code=code, **refused)

    try:
        if action == "dismiss":
            mail = unmatched.dismiss(store, item, by=by)
            return redirect(req, LIST, f"Письмо {_done_text(mail)} скрыто.")
        if action == "attach":
            if not number:
                return refuse({"number": "Укажите номер заявки."}, 400)
            done = unmatched.attach(store, item, number, by=by)
        else:
            done = unmatched.create_from(store, item, form.get("number", ""), form.get("position", ""),
                                         form.get("description", ""), by=by,
                                         confirm_similar=similar_confirmed(form, number))
    except UnmatchedGone:
        return not_found(req, "Такого неразобранного письма нет: его уже разобрали.")
    except unmatched.AttachRefused as exc:
        return _handled_meanwhile(req, item, str(exc)) or refuse({"number": str(exc)}, 409)
    except RequestNotFound as exc:
        return refuse({"number": str(exc)}, 404, suggested=_look_alike(number))
    except ValidationError as exc:
        return refuse(exc.fields, 400)
    except DuplicateRequestError as exc:
        return refuse({"number": str(exc)}, 409)
    except SimilarNumberError as exc:
        return refuse({"number": str(exc)}, 409, similar=exc.existing)
    verb = "привязано к заявке" if action == "attach" else "стало заявкой"
    number_now = done.request.number
    return redirect(req, LIST, f"Письмо {_done_text(done.mail)} {verb} «{number_now}».",
                    link=(request_url(number_now), f"Открыть заявку «{number_now}»"))
