"""The «Неразобранные письма» pages (SPEC §5): the list, a mail's full text, attach, create, dismiss."""
from __future__ import annotations

from urllib.parse import urlencode

import azure.functions as func

from ..mail import unmatched
from ..model import FINAL_STATUSES, ValidationError
from ..storage import DuplicateRequestError, RequestNotFound, SimilarNumberError, UnmatchedGone, get_store
from ..storage.mail import UnmatchedMail
from .http import cursor_param, request_author
from .render import csrf_token, error, guarded_form, guarded_page, not_found, page, redirect, request_url, take_flash

bp = func.Blueprint()

PAGE_SIZE = 50
SUGGESTIONS = 30


def _suggestions() -> list[str]:
    """Return numbers of open requests to suggest when attaching (last updated first)."""
    items = get_store().list_requests(limit=SUGGESTIONS).items
    return [r.number for r in items if r.status not in FINAL_STATUSES]


def _list(req: func.HttpRequest, *, errors: dict[str, dict[str, str]] | None = None,
          values: dict[str, dict[str, str]] | None = None, code: int = 200,
          similar: dict[str, str] | None = None) -> func.HttpResponse:
    dismissed = req.params.get("dismissed") == "1"
    try:
        cursor = cursor_param(req)
        items, next_cursor = get_store().mail.list_unmatched(limit=PAGE_SIZE, cursor=cursor, dismissed=dismissed)
    except (ValueError, ValidationError):
        return error(req, 400, "Неверная ссылка", "Ссылка на страницу писем устарела или испорчена.")
    query = {"cursor": next_cursor, **({"dismissed": "1"} if dismissed else {})}
    next_url = "/mail/unmatched?" + urlencode(query) if next_cursor else None
    flash, clear = take_flash(req)
    return page(req, "unmatched.html", code, cookie=clear, nav="mail", items=items, cursor=cursor,
                next_url=next_url, dismissed=dismissed, suggestions=_suggestions() if not dismissed else [],
                csrf_token=csrf_token(req), errors=errors or {}, values=values or {}, similar=similar or {},
                flash=flash)


@bp.route(route="mail/unmatched", methods=["GET"])
@guarded_page
def page_unmatched_mail(req: func.HttpRequest) -> func.HttpResponse:
    """Show the mail that named no known request, newest first (`dismissed=1`: the dismissed)."""
    return _list(req)


@bp.route(route="mail/unmatched/{item}", methods=["GET"])
@guarded_page
def page_unmatched_item(req: func.HttpRequest) -> func.HttpResponse:
    """Show one unmatched mail with its full text."""
    mail = get_store().mail.get_unmatched(req.route_params.get("item") or "")
    if mail is None:
        return not_found(req, "Такого неразобранного письма нет.")
    return page(req, "unmatched_item.html", nav="mail", m=mail, suggestions=_suggestions(),
                csrf_token=csrf_token(req), errors={}, values={})


def _reshow(req: func.HttpRequest, form: dict[str, str], message: str, code: int) -> func.HttpResponse:
    from .render import resubmit

    return resubmit(req, form, message, code)


def _done_text(mail: UnmatchedMail) -> str:
    return f"«{mail.subject or '(без темы)'}»"


@bp.route(route="mail/unmatched/{item}/{action}", methods=["POST"])
@guarded_form(_reshow)
def page_unmatched_action(req: func.HttpRequest, form: dict[str, str]) -> func.HttpResponse:
    """Attach an unmatched mail to a request, make a request of it, or dismiss it; back to the list."""
    store = get_store()
    item, action = req.route_params.get("item") or "", req.route_params.get("action") or ""
    by = request_author(req)
    values = {item: {k: v for k, v in form.items() if k != "csrf_token"}}
    try:
        if action == "dismiss":
            mail = unmatched.dismiss(store, item, by=by)
            return redirect(req, "/mail/unmatched", f"Письмо {_done_text(mail)} скрыто.")
        if action == "attach":
            number = form.get("number", "").strip()
            if not number:
                return _list(req, errors={item: {"number": "Укажите номер заявки."}}, values=values, code=400)
            done = unmatched.attach(store, item, number, by=by)
        elif action == "create":
            done = unmatched.create_from(store, item, form.get("number", ""), form.get("position", ""),
                                         form.get("description", ""), by=by,
                                         confirm_similar=form.get("confirm_similar") == "1")
        else:
            return not_found(req)
    except UnmatchedGone:
        return not_found(req, "Такого неразобранного письма нет: его уже разобрали.")
    except unmatched.AttachRefused as exc:
        return _list(req, errors={item: {"number": str(exc)}}, values=values, code=409)
    except RequestNotFound as exc:
        return _list(req, errors={item: {"number": str(exc)}}, values=values, code=404)
    except ValidationError as exc:
        return _list(req, errors={item: exc.fields}, values=values, code=400)
    except DuplicateRequestError as exc:
        return _list(req, errors={item: {"number": str(exc)}}, values=values, code=409)
    except SimilarNumberError as exc:
        return _list(req, errors={item: {"number": str(exc)}}, values=values, code=409,
                     similar={item: exc.existing})
    verb = "привязано к заявке" if action == "attach" else "превращено в заявку"
    return redirect(req, request_url(done.request.number),
                    f"Письмо {_done_text(done.mail)} {verb} «{done.request.number}».")
