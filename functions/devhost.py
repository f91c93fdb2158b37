"""The local host behind `python -m functions serve`: the app's HTTP routes and timers.

It reads the Function App's own function objects (route templates, methods, timer
schedules), so the routes it serves are exactly the ones Azure serves.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func
from azure.functions.timer import TimerRequest
from croniter import croniter

from .settings import DEFAULT_SCHEDULE

logger = logging.getLogger(__name__)

MAX_READ = 8 * 1024 * 1024  # bodies above this are refused unread; the app itself limits to 64 KiB
REQUEST_TIMEOUT = 30.0  # seconds a client may stall (a body shorter than its Content-Length) before it is dropped
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_PARAM_RE = re.compile(r"^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)((?::[^}?:]+)*)(\?)?\}$")


def _segment_pattern(constraints: str) -> str:
    """Return the regex of one route segment under its constraints (`:int`, `:maxlength(n)`, ...)."""
    pattern, low, high = "[^/]", 1, None
    for constraint in filter(None, constraints.split(":")):
        name, _, arg = constraint.partition("(")
        arg = arg.rstrip(")")
        if name == "int":
            pattern = "-?[0-9]"
        elif name == "alpha":
            pattern = "[A-Za-z]"
        elif name == "maxlength":
            high = int(arg)
        elif name == "minlength":
            low = int(arg)
        elif name == "length":
            low = high = int(arg)
    return f"{pattern}{{{low},{'' if high is None else high}}}" if high != 0 else "(?!)"


@dataclass
class Route:
    """One HTTP function: its route template as a regex, its methods and the function to call."""

    name: str
    template: str
    methods: frozenset[str]
    arg_name: str
    function: Callable[..., Any]
    regex: re.Pattern = field(init=False)
    literal_segments: int = field(init=False)
    catch_all: bool = field(init=False)

    def __post_init__(self) -> None:
        parts, literals, catch_all = [], 0, False
        segments = [s for s in self.template.strip("/").split("/") if s] if self.template.strip("/") else []
        for seg in segments:
            m = _PARAM_RE.match(seg)
            if m is None:
                parts.append("/" + re.escape(seg))
                literals += 1
            elif m.group(1):
                parts.append(f"(?:/(?P<{m.group(2)}>.*))?")
                catch_all = True
            elif m.group(4):
                parts.append(f"(?:/(?P<{m.group(2)}>{_segment_pattern(m.group(3))}))?")
            else:
                parts.append(f"/(?P<{m.group(2)}>{_segment_pattern(m.group(3))})")
        self.regex = re.compile("^" + "".join(parts) + "/?$" if parts else "^/?$")
        self.literal_segments, self.catch_all = literals, catch_all

    def match(self, raw_path: str) -> dict[str, str] | None:
        m = self.regex.match(raw_path)
        if m is None:
            return None
        return {k: unquote(v) for k, v in m.groupdict().items() if v is not None}


@dataclass
class Timer:
    """One timer function with its NCRONTAB schedule (setting names resolved)."""

    name: str
    schedule: str
    arg_name: str
    function: Callable[..., Any]


def resolve_setting_refs(text: str, env: dict[str, str] | os._Environ = os.environ) -> str:
    """Replace %NAME% with the setting's value, as the Functions host does for schedules.

    OMIS's own schedule settings fall back to their documented default (SPEC §7).
    """
    defaults = {"OMIS_MAIL_SCHEDULE": DEFAULT_SCHEDULE, "OMIS_ALERT_SCHEDULE": DEFAULT_SCHEDULE}

    def sub(m: re.Match) -> str:
        value = env.get(m.group(1)) or defaults.get(m.group(1))
        if value is None:
            raise KeyError(f"настройка {m.group(1)} не задана (нужна для {text})")
        return value
    return re.sub(r"%([A-Za-z0-9_]+)%", sub, text)


_collected: dict[int, tuple[func.FunctionApp, list[Route], list[Timer]]] = {}
_collect_lock = threading.Lock()


def collect(app: func.FunctionApp) -> tuple[list[Route], list[Timer]]:
    """Return the app's HTTP routes and timers, read once from its function objects.

    `app.get_functions()` may be called only once per app (a second call raises), hence the cache.
    """
    with _collect_lock:
        cached = _collected.get(id(app))
        if cached is None or cached[0] is not app:
            cached = (app, *_read_functions(app))
            _collected[id(app)] = cached
    return list(cached[1]), list(cached[2])


def _read_functions(app: func.FunctionApp) -> tuple[list[Route], list[Timer]]:
    routes: list[Route] = []
    timers: list[Timer] = []
    for function in app.get_functions():
        trigger = function.get_trigger()
        kind = type(trigger).__name__
        if kind == "HttpTrigger":
            methods = frozenset((m.value if hasattr(m, "value") else str(m)).upper()
                                for m in (trigger.methods or ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]))
            # As the real host does: an empty route means the function's name, not the root.
            template = trigger.route or function.get_function_name()
            routes.append(Route(function.get_function_name(), template, methods, trigger.name,
                                function.get_user_function()))
        elif kind == "TimerTrigger":
            timers.append(Timer(function.get_function_name(), resolve_setting_refs(trigger.schedule),
                                trigger.name, function.get_user_function()))
    # Literal routes before parameterised ones, catch-alls last (as ASP.NET routing ranks them).
    routes.sort(key=lambda r: (r.catch_all, -r.literal_segments))
    return routes, timers


def dispatch(routes: list[Route], method: str, url: str, headers: dict[str, str], body: bytes) -> func.HttpResponse:
    """Find the function for a request and call it; 404 or 405 when none fits."""
    parts = urlsplit(url)
    allowed: set[str] = set()
    for route in routes:
        params = route.match(parts.path)
        if params is None:
            continue
        if method not in route.methods and not (method == "HEAD" and "GET" in route.methods):
            allowed |= route.methods
            continue
        request = func.HttpRequest(method, url, headers=headers, params=dict(parse_qsl(parts.query)),
                                   route_params=params, body=body)
        return route.function(**{route.arg_name: request})
    if allowed:
        return func.HttpResponse("Метод не разрешён.", status_code=405, mimetype="text/plain", charset="utf-8",
                                 headers={"Allow": ", ".join(sorted(allowed))})
    return func.HttpResponse("Страница не найдена.", status_code=404, mimetype="text/plain", charset="utf-8")


class TimerRunner:
    """Runs timer functions on their schedules in a background thread."""

    def __init__(self, timers: list[Timer], clock: Callable[[], datetime] | None = None) -> None:
        self.timers = timers
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        start = self.clock()
        self.next_run = {t.name: croniter(t.schedule, start, second_at_beginning=True).get_next(datetime)
                         for t in timers}

    def run_due(self, now: datetime) -> list[str]:
        """Run every timer whose time has come; return their names."""
        ran = []
        for timer in self.timers:
            due = self.next_run[timer.name]
            if due > now:
                continue
            past_due = (now - due).total_seconds() > 60
            self.next_run[timer.name] = croniter(timer.schedule, now, second_at_beginning=True).get_next(datetime)
            logger.info("timer %s: running (next at %s)", timer.name, self.next_run[timer.name].isoformat())
            try:
                timer.function(**{timer.arg_name: TimerRequest(past_due=past_due)})
            except Exception:
                logger.exception("timer %s failed", timer.name)
            ran.append(timer.name)
        return ran

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="omis-timers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = self.clock()
            self.run_due(now)
            wait = min((t - self.clock()).total_seconds() for t in self.next_run.values()) if self.next_run else 3600
            self._stop.wait(max(0.05, min(wait, 60)))


def make_handler(routes: list[Route]) -> type[BaseHTTPRequestHandler]:
    """Build the request handler class for a set of routes."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "OMIS-devhost"
        protocol_version = "HTTP/1.1"
        timeout = REQUEST_TIMEOUT  # applied to the socket by StreamRequestHandler.setup
        # Not HTTP/0.9: the answer to a garbled request line must still carry its status line (400, 505).
        default_request_version = "HTTP/1.0"

        def _refuse(self, status: int, message: str, started: float) -> None:
            """Answer a request that cannot be read safely, and drop the connection (its bytes are unknown)."""
            self._send(func.HttpResponse(message, status_code=status, mimetype="text/plain", charset="utf-8"),
                       started, close=True)

        def _content_length(self) -> int | None:
            """Return the declared body length (0 when none), or None when it is malformed or ambiguous."""
            values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
            if not values:
                return 0
            value = values.pop()
            if values or not (value.isascii() and value.isdigit()):
                return None
            return int(value) if len(value) <= 18 else MAX_READ + 1

        def _handle(self) -> None:
            started = time.perf_counter()
            if self.headers.get("Transfer-Encoding"):
                self._refuse(411, "Нужен заголовок Content-Length (Transfer-Encoding не поддерживается).", started)
                return
            length = self._content_length()
            if length is None:
                self._refuse(400, "Неверный заголовок Content-Length.", started)
                return
            if length > MAX_READ:
                self._refuse(413, "Тело запроса слишком велико.", started)
                return
            host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
            if not _HOST_RE.match(host) or not self.path.startswith("/"):
                self._refuse(400, "Неверный заголовок Host или путь запроса.", started)
                return
            try:
                body = self.rfile.read(length) if length else b""
            except TimeoutError:
                self._refuse(408, "Тело запроса не пришло целиком.", started)
                return
            if len(body) != length:  # the client closed before sending the whole body: act on none of it
                self.close_connection = True
                return
            headers = {k: v for k, v in self.headers.items()}
            try:
                response = dispatch(routes, self.command, f"http://{host}{self.path}", headers, body)
            except Exception:
                logger.exception("%s %s failed", self.command, self.path)
                response = func.HttpResponse("Внутренняя ошибка сервера.", status_code=500,
                                             mimetype="text/plain", charset="utf-8")
            self._send(response, started)

        def _send(self, response: func.HttpResponse, started: float, close: bool = False) -> None:
            payload = response.get_body() or b""
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "content-type"):
                    self.send_header(name, value)
            ctype = response.mimetype or "text/plain"
            if response.charset and (ctype.startswith("text/") or ctype in ("application/json",
                                                                             "application/javascript")):
                ctype += f"; charset={response.charset}"
            self.send_header("Content-Type", response.headers.get("Content-Type") or ctype)
            self.send_header("Content-Length", str(len(payload)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            logger.info("%s %s %d %.1f ms", self.command, self.path, response.status_code,
                        (time.perf_counter() - started) * 1000)
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass  # one line per request is logged by _send

    return Handler


def make_server(app: func.FunctionApp, host: str = "127.0.0.1", port: int = 7071) -> ThreadingHTTPServer:
    """Bind an HTTP server for the app's routes (not yet serving)."""
    routes, _ = collect(app)
    server = ThreadingHTTPServer((host, port), make_handler(routes))
    server.daemon_threads = True
    return server


def serve(app: func.FunctionApp, host: str = "127.0.0.1", port: int = 7071, run_timers: bool = True) -> None:
    """Serve the app until Ctrl-C."""
    routes, timers = collect(app)
    server = make_server(app, host, port)
    runner = TimerRunner(timers) if run_timers else None
    if runner:
        runner.start()
        for timer in timers:
            logger.info("timer %s: %s, next at %s", timer.name, timer.schedule, runner.next_run[timer.name].isoformat())
    for route in routes:
        logger.info("route /%s [%s] -> %s", route.template, ",".join(sorted(route.methods)), route.name)
    logger.info("OMIS is serving on http://%s:%d (Ctrl-C to stop)", host, port)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        server.server_close()
        if runner:
            runner.stop()
