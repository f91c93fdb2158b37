"""Static files from web_static/ (GET /static/{*path}) and the HTML 404 page for unknown addresses."""
from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

import azure.functions as func

from .http import SECURITY_HEADERS, json_error, route_tail
from .render import STATIC_ROOT, guarded_page, not_found

bp = func.Blueprint()

_CONTENT_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml",
                  ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2"}


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
        return not_found(req, "Такого файла нет.")
    data = path.read_bytes()
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    # Pages link to /static/NAME?v=<content hash>, so such a URL never changes its content.
    cache = "public, max-age=31536000, immutable" if req.params.get("v") else "public, max-age=3600"
    ctype = _content_type(path)
    headers = {**SECURITY_HEADERS, "Cache-Control": cache, "ETag": etag, "Content-Type": ctype}
    if etag in (req.headers.get("If-None-Match") or ""):
        return func.HttpResponse(status_code=304, headers=headers)
    return func.HttpResponse(data, mimetype=ctype.split(";")[0], headers=headers)


@bp.route(route="{*path}", methods=["GET"])
@guarded_page
def page_not_found(req: func.HttpRequest) -> func.HttpResponse:
    """Answer an address no other function serves: the HTML 404 page (JSON under /api/)."""
    if route_tail(req, "path").startswith("api/"):
        return json_error("Такого адреса в API нет.", 404)
    return not_found(req, "Такой страницы нет. Проверьте адрес или откройте список заявок.")
