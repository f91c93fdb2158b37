"""What every page shares: templates and their filters, responses, flash, forms, CSRF, the page guard.

Every page goes through `guarded_page` (413, 503 and 500 as pages, never a stack trace); every
form post through `guarded_form`, which also re-shows the form with what was typed when it is
refused for its CSRF token, its size, others' changes that kept winning (409) or a storage
outage. A successful post answers 303 with a flash message in a signed cookie.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import azure.functions as func
from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from ..alerts.digest import format_quiet
from ..auth import SignInRequired
from ..model import STATUSES
from ..settings import SettingsError, get_settings
from ..storage import StorageBusy, StorageUnavailable
from .http import SECURITY_HEADERS, body_too_large, request_author
from .present import KIND_TITLES, WAITING_TITLES, iso, promised_text
from .signing import (
    CSRF_FIELD,
    FLASH_COOKIE,
    FLASH_MAX_AGE,
    Flash,
    check_csrf_token,
    cookie_value,
    make_csrf_token,
    make_flash,
    origin_allowed,
    origin_of,
    read_flash,
)
from .textfmt import isolate_plain, isolate_quoted, number_html

logger = logging.getLogger(__name__)

STATIC_ROOT = Path(__file__).resolve().parents[2] / "web_static"
MAX_FORM_BYTES = 8 * 1024 * 1024   # what the host lets through; a form over 64 KiB is re-shown, not stored
SOURCE_LABELS = {"web": "веб", "api": "API", "mail": "почта", "outbox": "письмо OMIS", "telegram": "Telegram",
                 "import": "импорт"}
FIELD_LABELS = {"number": "Номер", "position": "Позиция", "description": "Описание", "status": "Статус",
                "comment": "Комментарий", "level": "Уровень", "due": "Срок", "to": "Кому"}
STATUS_CLASSES = dict(zip(STATUSES, ("sent", "accepted", "clarify", "done", "rejected"), strict=True))
Handler = Callable[[func.HttpRequest], func.HttpResponse]
FormHandler = Callable[[func.HttpRequest, dict[str, str]], func.HttpResponse]
Reshow = Callable[[func.HttpRequest, dict[str, str], str, int], func.HttpResponse]


def format_ts(moment: datetime | None) -> Markup:
    """Show an instant as date and time on two lines, in OMIS_TIMEZONE."""
    if moment is None:
        return Markup("—")
    local = moment.astimezone(get_settings().timezone)
    return Markup('<time datetime="{}">{}<br>{}</time>').format(
        iso(moment), local.strftime("%d.%m.%Y"), local.strftime("%H:%M"))


def format_local(moment: datetime | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
    """Show an instant on one line in OMIS_TIMEZONE."""
    return moment.astimezone(get_settings().timezone).strftime(fmt) if moment is not None else "—"


def request_url(number: str) -> str:
    """Return the card URL of a request (the number percent-encoded, `/` included)."""
    return "/requests/" + quote(number, safe="")


def list_url(**query: Any) -> str:
    """Return the URL of the list with these filters (empty ones left out)."""
    kept = {k: v for k, v in query.items() if v}
    return "/?" + urlencode(kept) if kept else "/"


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


def _promised(moment: datetime | None) -> str:
    return promised_text(moment, get_settings().timezone)


templates = Environment(loader=PackageLoader("functions", "templates"), autoescape=True,
                        trim_blocks=True, lstrip_blocks=True)
templates.filters.update(format_ts=format_ts, local=format_local, duration=format_quiet, promised=_promised,
                         num=number_html, isolate=isolate_quoted, fsi=isolate_plain)
templates.globals.update(request_url=request_url, list_url=list_url, static_url=static_url, statuses=STATUSES,
                         status_class=STATUS_CLASSES.get, source_label=SOURCE_LABELS.get, csrf_field=CSRF_FIELD,
                         kind_titles=KIND_TITLES, waiting_titles=WAITING_TITLES, field_labels=FIELD_LABELS)


# ----- responses -------------------------------------------------------------------------

def page(req: func.HttpRequest, template: str, code: int = 200, cookie: str | None = None,
         **context: Any) -> func.HttpResponse:
    """Render a template into an HTML response (security headers, no caching)."""
    try:
        author = request_author(req)
    except (SettingsError, SignInRequired):  # the error pages about these must still render
        author = ""
    context.setdefault("unmatched_count", _unmatched_count())
    html = templates.get_template(template).render(author=author, **context)
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    if cookie:
        headers["Set-Cookie"] = cookie
    # "replace": a lone surrogate that reached storage some other way (mail) must not break every page.
    return func.HttpResponse(html.encode("utf-8", "replace"), status_code=code, mimetype="text/html",
                             charset="utf-8", headers=headers)


def _unmatched_count() -> int | None:
    """Return the number of open unmatched mail for the menu (None when storage does not answer)."""
    from ..storage import get_store

    try:
        return get_store().mail.count_unmatched()
    except Exception:  # noqa: BLE001 - the menu's count must never break a page (503, settings, …)
        return None


def error(req: func.HttpRequest, code: int, title: str, message: str) -> func.HttpResponse:
    """Answer with the error page."""
    return page(req, "error.html", code, title=title, message=message, error_code=code, unmatched_count=None)


def not_found(req: func.HttpRequest, message: str = "Такой страницы нет.") -> func.HttpResponse:
    return error(req, 404, "Не найдено", message)


def _is_https(req: func.HttpRequest) -> bool:
    return req.url.lower().startswith("https:") or (req.headers.get("X-Forwarded-Proto") or "").lower() == "https"


def _flash_cookie(req: func.HttpRequest, value: str, max_age: int) -> str:
    # One cookie at most per response: the azure-functions response holds one value per header.
    parts = [f"{FLASH_COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if _is_https(req):
        parts.append("Secure")
    return "; ".join(parts)


def take_flash(req: func.HttpRequest) -> tuple[Flash | None, str | None]:
    """Return the flash message the request carries and the Set-Cookie that clears it."""
    raw = cookie_value(req.headers.get("Cookie"), FLASH_COOKIE)
    if raw is None:
        return None, None
    return read_flash(get_settings().secret_key, raw), _flash_cookie(req, "", 0)


def redirect(req: func.HttpRequest, location: str, flash: str | None = None, code: int = 303,
             link: tuple[str, str] | None = None) -> func.HttpResponse:
    """Answer 303 (or another redirect) to a page, with a flash message (and a link: path, text)."""
    headers = {**SECURITY_HEADERS, "Location": location, "Cache-Control": "no-store"}
    if flash:
        value = make_flash(get_settings().secret_key, flash, link=link)
        headers["Set-Cookie"] = _flash_cookie(req, value, FLASH_MAX_AGE)
    return func.HttpResponse(status_code=code, headers=headers)


def guarded_page(handler: Handler) -> Handler:
    """Refuse requests that did not sign in (401); answer 413, 503 and 500 as pages."""
    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            request_author(req)  # fails closed before anything is read or done (functions/auth.py)
            if req.method == "GET" and body_too_large(req):
                return error(req, 413, "Слишком большой запрос", "Запрос больше 64 КиБ.")
            return handler(req)
        except SignInRequired as exc:
            return _sign_in_page(req, exc)
        except StorageUnavailable as exc:
            logger.warning("%s %s: %s", req.method, req.url, exc)
            return error(req, 503, "Хранилище недоступно",
                         "Хранилище заявок сейчас не отвечает. Подождите немного и обновите страницу.")
        except SettingsError as exc:
            logger.error("settings: %s", exc)
            return error(req, 500, "Ошибка настроек", f"OMIS настроен неверно: {exc}")
        except Exception:
            logger.exception("%s %s failed", req.method, req.url)
            return error(req, 500, "Внутренняя ошибка", "Что-то пошло не так. Попробуйте ещё раз чуть позже.")
    return wrapper


def _sign_in_page(req: func.HttpRequest, exc: SignInRequired) -> func.HttpResponse:
    """Say that sign-in is needed (401) or could not be checked (503), with a link to sign in again."""
    back = urlsplit(req.url).path or "/"
    login = "/.auth/login/aad?" + urlencode({"post_login_redirect_uri": back})
    title = "Нужен вход" if exc.status == 401 else "Вход не проверен"
    resp = error(req, exc.status, title, Markup('{} <a href="{}">Войти</a>').format(exc.message, login))
    resp.headers["WWW-Authenticate"] = 'Bearer realm="OMIS"'
    return resp


# ----- forms -----------------------------------------------------------------------------

def read_form(req: func.HttpRequest) -> dict[str, str] | func.HttpResponse:
    """Return the fields of a posted form, or the error page to answer instead."""
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return error(req, 415, "Неверный формат формы", "Форма отправляется как application/x-www-form-urlencoded.")
    body = req.get_body() or b""
    if len(body) > MAX_FORM_BYTES:
        return error(req, 413, "Слишком большой запрос", "Данные формы больше 64 КиБ: ничего не сохранено.")
    try:
        # errors="strict": a percent-encoded byte that is not UTF-8 is refused, not stored as U+FFFD.
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return error(req, 400, "Неверные данные формы", "Не удалось прочитать отправленную форму.")
    return {name: values[0].replace("\r\n", "\n") for name, values in parsed.items()}


def csrf_token(req: func.HttpRequest) -> str:
    return make_csrf_token(get_settings().secret_key, request_author(req))


def _own_origins(req: func.HttpRequest) -> set[str]:
    """Return the origins this site is reached at: the request's own (https behind a proxy too), OMIS_PUBLIC_URL."""
    netloc = urlsplit(req.url).netloc
    candidates = [req.url, ("https://" if _is_https(req) else "http://") + netloc, get_settings().public_url or ""]
    return {origin for origin in map(origin_of, candidates) if origin}


def csrf_ok(req: func.HttpRequest, form: dict[str, str]) -> bool:
    """Say whether a form post came from one of our pages, shown to this same user."""
    if (req.headers.get("Sec-Fetch-Site") or "").lower() == "cross-site":
        return False
    if not origin_allowed(req.headers.get("Origin"), req.headers.get("Referer"), _own_origins(req)):
        return False
    return check_csrf_token(get_settings().secret_key, request_author(req), form.get(CSRF_FIELD))


def resubmit(req: func.HttpRequest, values: dict[str, str], message: str, code: int) -> func.HttpResponse:
    """Show a refused form again, with what was typed and why, to send again (works without storage)."""
    fields = {k: v for k, v in values.items() if k != CSRF_FIELD}
    path = req.url.split("://", 1)[-1]
    action = "/" + path.split("/", 1)[1] if "/" in path else "/"
    return page(req, "resubmit.html", code, title="Форма не сохранена", message=message, fields=fields,
                action=action.split("?", 1)[0], csrf_token=csrf_token(req), unmatched_count=None)


TOO_LARGE = "Данные формы больше 64 КиБ — ничего не сохранено. Сократите текст и отправьте снова."
STALE = ("Форма устарела или отправлена не со страницы OMIS — ничего не сохранено. Проверьте введённое "
         "и отправьте снова.")
BUSY = "Ничего не сохранено. Введённое ниже сохранено на этой странице: отправьте снова."
OUTAGE = ("Хранилище заявок сейчас не отвечает — ничего не сохранено. Введённое ниже сохранено на этой "
          "странице: отправьте снова через минуту.")


def guarded_form(reshow: Reshow = resubmit) -> Callable[[FormHandler], Handler]:
    """Guard a form post: read it; re-show it with what was typed on a bad size, token, conflict or outage."""
    def decorate(handler: FormHandler) -> Handler:
        @functools.wraps(handler)
        def wrapper(req: func.HttpRequest) -> func.HttpResponse:
            form = read_form(req)
            if isinstance(form, func.HttpResponse):
                return form
            if body_too_large(req):
                return reshow(req, form, TOO_LARGE, 413)
            if not csrf_ok(req, form):
                return reshow(req, form, STALE, 403)
            try:
                return handler(req, form)
            except StorageUnavailable as exc:
                logger.warning("%s %s: %s", req.method, req.url, exc)
                if isinstance(exc, StorageBusy):   # others changed the same request all along: nothing written
                    return reshow(req, form, f"{exc} {BUSY}", 409)
                return reshow(req, form, OUTAGE, 503)
        return guarded_page(wrapper)
    return decorate
