"""The HTML pages (SPEC §5): the list, the new-request form, the request card, unmatched mail.

Every page goes through `guarded_page` (413, 503 and 500 as pages, never a stack trace) and
`_page` (security headers, no caching). Forms post with a CSRF token (see signing.py); a
successful post answers 303 with a flash message in a signed cookie.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import mimetypes
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import azure.functions as func
from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from . import mailstore, store
from .auth import SignInRequired
from .delays import is_delayed, quiet_minutes
from .httputil import SECURITY_HEADERS, body_too_large, cursor_param, iso, request_author, route_tail
from .model import STATUSES, Request, ValidationError, utcnow
from .settings import Settings, SettingsError, get_settings
from .signing import (
    CSRF_FIELD,
    FLASH_COOKIE,
    FLASH_MAX_AGE,
    check_csrf_token,
    cookie_value,
    make_csrf_token,
    make_flash,
    origin_allowed,
    origin_of,
    read_flash,
)
from .tables import StorageUnavailable

logger = logging.getLogger(__name__)

bp = func.Blueprint()

STATIC_ROOT = Path(__file__).resolve().parents[1] / "web_static"
PAGE_SIZE = 50
SEARCH_MAX = 200
SOURCE_LABELS = {"web": "веб", "api": "API", "mail": "почта"}
STATUS_CLASSES = dict(zip(STATUSES, ("sent", "accepted", "clarify", "done", "rejected")))
_CONTENT_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml",
                  ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2"}
Handler = Callable[[func.HttpRequest], func.HttpResponse]


# ----- formatting ------------------------------------------------------------------------

def format_ts(moment: datetime | None) -> Markup:
    """Show an instant as date and time on two lines, in OMIS_TIMEZONE."""
    if moment is None:
        return Markup("—")
    local = moment.astimezone(get_settings().timezone)
    return Markup('<time datetime="{}">{}<br>{}</time>').format(
        iso(moment), local.strftime("%d.%m.%Y"), local.strftime("%H:%M"))


def format_duration(minutes: float) -> str:
    """Say how long a number of minutes is: «45 мин», «3 ч 05 мин», «2 дн 4 ч»."""
    total = max(0, int(minutes))
    days, rest = divmod(total, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days >= 2:
        return f"{days} дн {hours} ч"
    if days or hours:
        return f"{days * 24 + hours} ч {mins:02d} мин"
    return f"{mins} мин"


def request_url(number: str) -> str:
    """Return the card URL of a request (the number percent-encoded, `/` included)."""
    return "/requests/" + quote(number, safe="")


def list_url(status: str | None = None, q: str | None = None, cursor: str | None = None) -> str:
    """Return the URL of the list with these filters."""
    query = {k: v for k, v in (("status", status), ("q", q), ("cursor", cursor)) if v}
    return "/?" + urlencode(query) if query else "/"


@functools.lru_cache(maxsize=64)
def _static_version(name: str, mtime_ns: int) -> str:
    return hashlib.sha256((STATIC_ROOT / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """Return the URL of a file in web_static/, versioned by its content."""
    try:
        return f"/static/{name}?v={_static_version(name, (STATIC_ROOT / name).stat().st_mtime_ns)}"
    except OSError:
        logger.warning("web_static/%s is missing", name)
        return f"/static/{name}"


_templates = Environment(loader=PackageLoader("functions", "templates"), autoescape=True,
                         trim_blocks=True, lstrip_blocks=True)
_templates.filters.update(format_ts=format_ts, duration=format_duration)
_templates.globals.update(request_url=request_url, list_url=list_url, static_url=static_url,
                          statuses=STATUSES, status_class=STATUS_CLASSES.get, source_label=SOURCE_LABELS.get,
                          csrf_field=CSRF_FIELD)


# ----- responses -------------------------------------------------------------------------

def _page(req: func.HttpRequest, template: str, code: int = 200, cookie: str | None = None,
          **context: Any) -> func.HttpResponse:
    try:
        author = request_author(req)
    except (SettingsError, SignInRequired):  # the error pages about these must still render
        author = ""
    html = _templates.get_template(template).render(author=author, **context)
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    if cookie:
        headers["Set-Cookie"] = cookie
    # "replace": a lone surrogate that reached storage some other way (mail) must not break every page.
    return func.HttpResponse(html.encode("utf-8", "replace"), status_code=code, mimetype="text/html",
                             charset="utf-8", headers=headers)


def _error(req: func.HttpRequest, code: int, title: str, message: str) -> func.HttpResponse:
    return _page(req, "error.html", code, title=title, message=message, error_code=code)


def _not_found(req: func.HttpRequest, message: str = "Такой страницы нет.") -> func.HttpResponse:
    return _error(req, 404, "Не найдено", message)


def _is_https(req: func.HttpRequest) -> bool:
    return req.url.lower().startswith("https:") or (req.headers.get("X-Forwarded-Proto") or "").lower() == "https"


def _flash_cookie(req: func.HttpRequest, value: str, max_age: int) -> str:
    # One cookie at most per response: the azure-functions response holds one value per header.
    parts = [f"{FLASH_COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if _is_https(req):
        parts.append("Secure")
    return "; ".join(parts)


def _take_flash(req: func.HttpRequest) -> tuple[str | None, str | None]:
    """Return the flash message the request carries and the Set-Cookie that clears it."""
    raw = cookie_value(req.headers.get("Cookie"), FLASH_COOKIE)
    if raw is None:
        return None, None
    return read_flash(get_settings().secret_key, raw), _flash_cookie(req, "", 0)


def _redirect(req: func.HttpRequest, location: str, flash: str | None = None) -> func.HttpResponse:
    headers = {**SECURITY_HEADERS, "Location": location, "Cache-Control": "no-store"}
    if flash:
        headers["Set-Cookie"] = _flash_cookie(req, make_flash(get_settings().secret_key, flash), FLASH_MAX_AGE)
    return func.HttpResponse(status_code=303, headers=headers)


def guarded_page(handler: Handler) -> Handler:
    """Refuse requests that did not sign in (401); answer 413, 503 and 500 as pages."""
    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            request_author(req)  # fails closed before anything is read or done (functions/auth.py)
            if body_too_large(req):
                return _error(req, 413, "Слишком большой запрос",
                              "Данные формы больше 64 КиБ. Сократите описание или комментарий и отправьте снова.")
            return handler(req)
        except SignInRequired as exc:
            return _sign_in_page(req, exc)
        except StorageUnavailable as exc:
            logger.warning("%s %s: %s", req.method, req.url, exc)
            return _error(req, 503, "Хранилище недоступно",
                          "Хранилище заявок сейчас не отвечает. Подождите немного и обновите страницу.")
        except SettingsError as exc:
            logger.error("settings: %s", exc)
            return _error(req, 500, "Ошибка настроек", f"OMIS настроен неверно: {exc}")
        except Exception:
            logger.exception("%s %s failed", req.method, req.url)
            return _error(req, 500, "Внутренняя ошибка", "Что-то пошло не так. Попробуйте ещё раз чуть позже.")
    return wrapper


def _sign_in_page(req: func.HttpRequest, exc: SignInRequired) -> func.HttpResponse:
    """Say that sign-in is needed (401) or could not be checked (503), with a link to sign in again."""
    back = urlsplit(req.url).path or "/"
    login = "/.auth/login/aad?" + urlencode({"post_login_redirect_uri": back})
    title = "Нужен вход" if exc.status == 401 else "Вход не проверен"
    resp = _error(req, exc.status, title, Markup('{} <a href="{}">Войти</a>').format(exc.message, login))
    resp.headers["WWW-Authenticate"] = 'Bearer realm="OMIS"'
    return resp


# ----- forms -----------------------------------------------------------------------------

def _form(req: func.HttpRequest) -> dict[str, str] | func.HttpResponse:
    """Return the fields of a posted form, or the error page to answer instead."""
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return _error(req, 415, "Неверный формат формы", "Форма отправляется как application/x-www-form-urlencoded.")
    try:
        # errors="strict": a percent-encoded byte that is not UTF-8 is refused, not stored as U+FFFD.
        parsed = parse_qs((req.get_body() or b"").decode("utf-8"), keep_blank_values=True, max_num_fields=20,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        return _error(req, 400, "Неверные данные формы", "Не удалось прочитать отправленную форму.")
    return {name: values[0].replace("\r\n", "\n") for name, values in parsed.items()}


def _csrf_token(req: func.HttpRequest) -> str:
    return make_csrf_token(get_settings().secret_key, request_author(req))


def _own_origins(req: func.HttpRequest) -> set[str]:
    """Return the origins this site is reached at: the request's own (https behind a proxy too), OMIS_PUBLIC_URL."""
    netloc = urlsplit(req.url).netloc
    candidates = [req.url, ("https://" if _is_https(req) else "http://") + netloc, get_settings().public_url or ""]
    return {origin for origin in map(origin_of, candidates) if origin}


def _csrf_ok(req: func.HttpRequest, form: dict[str, str]) -> bool:
    """Say whether a form post came from one of our pages, shown to this same user."""
    if (req.headers.get("Sec-Fetch-Site") or "").lower() == "cross-site":
        return False
    if not origin_allowed(req.headers.get("Origin"), req.headers.get("Referer"), _own_origins(req)):
        return False
    return check_csrf_token(get_settings().secret_key, request_author(req), form.get(CSRF_FIELD))


def _forbidden(req: func.HttpRequest) -> func.HttpResponse:
    return _error(req, 403, "Форма не принята",
                  "Форма устарела или отправлена не со страницы OMIS. Откройте страницу заново и повторите; "
                  "ничего не сохранено.")


# ----- the list --------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """A request as the list shows it."""

    request: Request
    delayed: bool
    quiet: float


def _row(request: Request, now: datetime, settings: Settings) -> Row:
    delayed = is_delayed(request, now, settings)
    return Row(request, delayed, quiet_minutes(request, now, settings) if delayed else 0.0)


def _list_page(req: func.HttpRequest) -> func.HttpResponse:
    status = req.params.get("status") or None
    q = (req.params.get("q") or "").strip()[:SEARCH_MAX]
    if status is not None and status not in STATUSES:
        return _error(req, 400, "Неизвестный статус", f"Статуса «{status}» нет. Выберите статус из списка.")
    try:
        cursor = cursor_param(req)
        page = store.get_requests(status=status, q=q or None, limit=PAGE_SIZE, cursor=cursor)
    except ValidationError:
        return _error(req, 400, "Неверная ссылка", "Ссылка на страницу списка устарела или испорчена. "
                                                   "Откройте список заново.")
    counts = store.status_counts()
    now, settings = utcnow(), get_settings()
    flash, clear = _take_flash(req)
    return _page(req, "list.html", cookie=clear, nav="list", flash=flash,
                 rows=[_row(r, now, settings) for r in page.items], counts=counts, total=sum(counts.values()),
                 selected_status=status, q=q, cursor=cursor, filtered=bool(status or q),
                 next_url=list_url(status, q, page.next_cursor) if page.next_cursor else None,
                 first_url=list_url(status, q))


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

def _new_form(req: func.HttpRequest, values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
              code: int = 200, existing: str | None = None) -> func.HttpResponse:
    return _page(req, "new.html", code, nav="new", values=values or {}, errors=errors or {},
                 csrf_token=_csrf_token(req), existing=existing)


@bp.route(route="new", methods=["GET"])
@guarded_page
def page_new(req: func.HttpRequest) -> func.HttpResponse:
    """Show the form for a new request."""
    return _new_form(req)


@bp.route(route="add_request", methods=["POST"])
@guarded_page
def page_add_request(req: func.HttpRequest) -> func.HttpResponse:
    """Create a request from the form; on bad input show the form again with the errors."""
    form = _form(req)
    if isinstance(form, func.HttpResponse):
        return form
    if not _csrf_ok(req, form):
        return _forbidden(req)
    values = {name: form.get(name, "") for name in ("number", "position", "description")}
    try:
        created = store.add_request(values["number"], values["position"], values["description"],
                                    author=request_author(req), source="web")
    except ValidationError as exc:
        return _new_form(req, values, exc.fields, 400)
    except store.DuplicateRequestError as exc:
        return _new_form(req, values, {"number": str(exc)}, 409, existing=exc.number)
    return _redirect(req, "/", f"Заявка «{created.number}» добавлена.")


# ----- the request card ------------------------------------------------------------------

def _card(req: func.HttpRequest, request: Request, values: dict[str, str] | None = None,
          errors: dict[str, str] | None = None, code: int = 200, flash: str | None = None,
          cookie: str | None = None) -> func.HttpResponse:
    row = _row(request, utcnow(), get_settings())
    return _page(req, "request.html", code, cookie=cookie, nav="card", flash=flash, r=request, row=row,
                 values=values or {"status": request.status, "comment": ""}, errors=errors or {},
                 csrf_token=_csrf_token(req))


def _change_status(req: func.HttpRequest, number: str) -> func.HttpResponse:
    form = _form(req)
    if isinstance(form, func.HttpResponse):
        return form
    if not _csrf_ok(req, form):
        return _forbidden(req)
    current = store.get_request(number)
    if current is None:
        return _not_found(req, f"Заявки «{number}» нет.")
    values = {"status": form.get("status", ""), "comment": form.get("comment", "")}
    if values["status"] == current.status and not values["comment"].strip():
        return _card(req, current, values, {"comment": "Ничего не изменилось: выберите другой статус "
                                                       "или напишите комментарий."}, 400)
    try:
        store.update_status(current.number, values["status"], values["comment"],
                            author=request_author(req), source="web")
    except ValidationError as exc:
        return _card(req, current, values, exc.fields, 400)
    except store.RequestNotFound:
        return _not_found(req, f"Заявки «{number}» нет.")
    if values["status"] != current.status:
        message = f"Заявка «{current.number}»: статус «{values['status']}»."
    else:
        message = f"Заявка «{current.number}»: комментарий сохранён."
    return _redirect(req, request_url(current.number), message)


@bp.route(route="requests/{*rest}", methods=["GET", "POST"])
@guarded_page
def page_request(req: func.HttpRequest) -> func.HttpResponse:
    """Show one request (GET …/{number}) or change its status (POST …/{number}/status)."""
    tail = route_tail(req)
    if req.method == "POST":
        if not tail:  # POST /requests: this catch-all route takes it, but only GET has a meaning there
            resp = _error(req, 405, "Метод не разрешён", "Список заявок можно только открыть.")
            resp.headers["Allow"] = "GET"
            return resp
        if not tail.endswith("/status"):
            return _not_found(req)
        return _change_status(req, tail[: -len("/status")])
    if not tail:
        return _list_page(req)
    found = store.get_request(tail)
    if found is None:
        return _not_found(req, f"Заявки «{tail}» нет. Проверьте номер или найдите заявку в списке.")
    flash, clear = _take_flash(req)
    return _card(req, found, flash=flash, cookie=clear)


# ----- unmatched mail --------------------------------------------------------------------

@bp.route(route="mail/unmatched", methods=["GET"])
@guarded_page
def page_unmatched_mail(req: func.HttpRequest) -> func.HttpResponse:
    """Show the mail that named no known request, newest first."""
    try:
        cursor = cursor_param(req)
        items, next_cursor = mailstore.list_unmatched_mail(limit=PAGE_SIZE, cursor=cursor)
    except ValueError:
        return _error(req, 400, "Неверная ссылка", "Ссылка на страницу писем устарела или испорчена.")
    next_url = "/mail/unmatched?" + urlencode({"cursor": next_cursor}) if next_cursor else None
    return _page(req, "unmatched.html", nav="mail", items=items, cursor=cursor, next_url=next_url)


# ----- static files ----------------------------------------------------------------------

def static_path(tail: str) -> Path | None:
    """Return the file of web_static/ a URL tail names, or None when it names none (or leaves the folder)."""
    if not tail or "\\" in tail or "\x00" in tail or ":" in tail or tail.startswith("/"):
        return None
    if any(part in ("", ".", "..") or part.startswith(".") for part in tail.split("/")):
        return None
    root = STATIC_ROOT.resolve()
    try:
        path = (root / tail).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
    except (OSError, ValueError):  # a name the file system refuses (too long, say) names no file of ours
        return None
    return path


def _content_type(path: Path) -> str:
    ctype = _CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    ctype = ctype or "application/octet-stream"
    return ctype + "; charset=utf-8" if ctype.startswith("text/") or ctype == "image/svg+xml" else ctype


@bp.route(route="static/{*path}", methods=["GET"])
@guarded_page
def page_static(req: func.HttpRequest) -> func.HttpResponse:
    """Serve a file from web_static/."""
    path = static_path(route_tail(req, "path"))
    if path is None:
        return _not_found(req, "Такого файла нет.")
    data = path.read_bytes()
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    # Pages link to /static/NAME?v=<content hash>, so such a URL never changes its content.
    cache = "public, max-age=31536000, immutable" if req.params.get("v") else "public, max-age=3600"
    ctype = _content_type(path)
    headers = {**SECURITY_HEADERS, "Cache-Control": cache, "ETag": etag, "Content-Type": ctype}
    if etag in (req.headers.get("If-None-Match") or ""):
        return func.HttpResponse(status_code=304, headers=headers)
    return func.HttpResponse(data, mimetype=ctype.split(";")[0], headers=headers)
