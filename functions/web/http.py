"""Helpers shared by the HTTP blueprints: JSON bodies, errors, the author, request guards."""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import azure.functions as func

from ..auth import SignInRequired, identify
from ..model import ValidationError
from ..settings import SettingsError, get_settings
from ..storage import StorageBusy, StorageUnavailable

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
CURSOR_MAX = 1024
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
}
Handler = Callable[[func.HttpRequest], func.HttpResponse]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """Return a JSON response (UTF-8, not ASCII-escaped; a lone surrogate from storage becomes «?»)."""
    return func.HttpResponse(json.dumps(data, ensure_ascii=False).encode("utf-8", "replace"), status_code=status,
                             mimetype="application/json", charset="utf-8",
                             headers={**SECURITY_HEADERS, "Cache-Control": "no-store", **(headers or {})})


def json_error(message: str, status: int, fields: dict[str, str] | None = None) -> func.HttpResponse:
    """Return `{"error": message}` (and `fields`) with a status code."""
    body: dict[str, Any] = {"error": message}
    if fields:
        body["fields"] = fields
    return json_response(body, status)


def request_author(req: func.HttpRequest) -> str:
    """Return the signed-in user or OMIS_DEV_USER; SignInRequired when in Azure sign-in did not happen."""
    return identify(urlsplit(req.url).path, req.headers, get_settings()).name


def route_tail(req: func.HttpRequest, name: str = "rest") -> str:
    """Return a catch-all route value percent-decoded (hosts differ in whether %2F arrives decoded)."""
    raw = req.route_params.get(name) or ""
    return unquote(raw) if "%" in raw else raw


def split_action(tail: str, actions: tuple[str, ...]) -> tuple[str, str | None]:
    """Split `{number}/{action}` into the number and the action (None: the number alone).

    Numbers may contain `/`, so only a last segment that is one of `actions` is an action.
    """
    number, sep, last = tail.rpartition("/")
    if sep and last in actions:
        return number, last
    return tail, None


def body_too_large(req: func.HttpRequest) -> bool:
    """Say whether a request body is over the 64 KiB limit."""
    declared = (req.headers.get("Content-Length") or "").strip()
    # ASCII digits only: str.isdigit() also takes «²» and «١», which int() refuses or misreads.
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > MAX_BODY):
        return True
    return len(req.get_body() or b"") > MAX_BODY


def plain_int(text: str, max_digits: int = 6) -> int | None:
    """Return a short run of ASCII digits as an int, or None for anything else («²», «1e3», «-1», «»)."""
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def cursor_param(req: func.HttpRequest) -> str | None:
    """Return the `cursor` query value; ValidationError when it is too long to be one of ours."""
    cursor = req.params.get("cursor") or None
    # A cursor is a RowKey (≤ 512 chars) in base64; a longer one would only make storage refuse the query.
    if cursor is not None and len(cursor) > CURSOR_MAX:
        raise ValidationError({"cursor": "Неверный курсор."})
    return cursor


def guarded_json(handler: Handler) -> Handler:
    """Refuse requests that did not sign in (401); answer storage outages with 503, surprises with 500, as JSON."""
    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            request_author(req)  # fails closed before anything is read or done (functions/auth.py)
            if body_too_large(req):
                return json_error("Тело запроса больше 64 КиБ.", 413)
            return handler(req)
        except SignInRequired as exc:
            return json_response({"error": exc.message}, exc.status, {"WWW-Authenticate": 'Bearer realm="OMIS"'})
        except StorageUnavailable as exc:
            logger.warning("%s %s: %s", req.method, req.url, exc)
            if isinstance(exc, StorageBusy):   # others changed the same request all along: a conflict, not an outage
                return json_error(str(exc), 409)
            return json_error("Хранилище временно недоступно, повторите позже.", 503)
        except SettingsError as exc:
            logger.error("settings: %s", exc)
            return json_error(f"Ошибка настроек: {exc}", 500)
        except Exception:
            logger.exception("%s %s failed", req.method, req.url)
            return json_error("Внутренняя ошибка сервера.", 500)
    return wrapper
