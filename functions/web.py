"""The HTML pages (SPEC §5)."""
from __future__ import annotations

import azure.functions as func
from jinja2 import Environment, PackageLoader, select_autoescape

from . import store
from .httputil import SECURITY_HEADERS

bp = func.Blueprint()
_templates = Environment(loader=PackageLoader("functions", "templates"), autoescape=select_autoescape())


@bp.route(route="", methods=["GET"])
def index(req: func.HttpRequest) -> func.HttpResponse:
    """Show the requests, last updated first."""
    page = store.get_requests(limit=50)
    html = _templates.get_template("list.html").render(requests=page.items)
    return func.HttpResponse(html, mimetype="text/html", charset="utf-8", headers=SECURITY_HEADERS)
