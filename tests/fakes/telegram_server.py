"""A fake Telegram Bot API on 127.0.0.1 that speaks the real HTTP protocol, with scriptable failures."""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

MESSAGE_LIMIT = 4096
DEFAULT_TOKEN = "123456789:AAF-fake_token_for_tests-0123456789ab"
DEFAULT_CHAT_ID = "-1001234567890"

_PATH_RE = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)/?$")
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                 "span", "tg-spoiler", "tg-emoji", "blockquote"}
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ENTITY_RE = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


# sendMessage fields Bot API 7.0 replaced (disable_web_page_preview -> link_preview_options).
DEPRECATED_SEND_FIELDS = ("disable_web_page_preview", "reply_to_message_id", "allow_sending_without_reply")


@dataclass(frozen=True)
class SentMessage:
    """A message the fake accepted."""

    message_id: int
    chat_id: str
    text: str
    parse_mode: str | None
    message_thread_id: str | None
    link_preview_disabled: bool         # link_preview_options.is_disabled, or the deprecated flag
    deprecated_fields: tuple[str, ...]  # Bot API fields the request still used although deprecated


@dataclass(frozen=True)
class Call:
    """One HTTP call the fake answered (the token is not kept)."""

    method: str
    params: dict[str, Any]
    status: int


@dataclass
class _Scripted:
    method: str | None
    status: int
    body: dict[str, Any] | None
    delay: float = 0.0
    hold: tuple[threading.Event, threading.Event] | None = None   # (arrived, release)


class HtmlError(ValueError):
    """Text that Telegram's HTML parse mode would reject."""


def html_visible_text(text: str) -> str:
    """Check Telegram HTML the way the Bot API does and return the text a user would see."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "<":
            m = _TAG_RE.match(text, i)
            if not m or m.group(2).lower() not in _ALLOWED_TAGS:
                raise HtmlError(f"can't parse entities: Unsupported start tag at byte offset {i}")
            name = m.group(2).lower()
            if m.group(1):
                if not stack or stack[-1] != name:
                    raise HtmlError(f"can't parse entities: Unexpected end tag at byte offset {i}")
                stack.pop()
            else:
                stack.append(name)
            i = m.end()
        elif char == ">":
            raise HtmlError(f"can't parse entities: Character '>' is reserved at byte offset {i}")
        elif char == "&":
            m = _ENTITY_RE.match(text, i)
            if not m:
                raise HtmlError(f"can't parse entities: Character '&' is reserved at byte offset {i}")
            ref = m.group(1)
            out.append({"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(ref) or chr(
                int(ref[2:], 16) if ref.startswith("#x") else int(ref[1:])))
            i = m.end()
        else:
            out.append(char)
            i += 1
    if stack:
        raise HtmlError(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(out)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class FakeTelegram:
    """The fake Bot API: use as a context manager; `.url` and `.token` go into the settings."""

    token: str = DEFAULT_TOKEN
    chat_id: str = DEFAULT_CHAT_ID
    accept_chats: set[str] | None = None   # None: any chat id is accepted
    updates: list[dict[str, Any]] = field(default_factory=list)
    _messages: list[SentMessage] = field(default_factory=list, init=False)
    _calls: list[Call] = field(default_factory=list, init=False)
    _script: list[_Scripted] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _server: ThreadingHTTPServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    # Lifecycle

    def start(self) -> FakeTelegram:
        """Start serving on a free loopback port."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-telegram", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wake any delayed answer."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Return the base URL to put in OMIS_TELEGRAM_API_URL."""
        assert self._server is not None, "FakeTelegram is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def settings_env(self, **extra: str) -> dict[str, str]:
        """Return settings that point OMIS at this fake (extra names override)."""
        env = {"OMIS_TELEGRAM_API_URL": self.url, "OMIS_TELEGRAM_TOKEN": self.token,
               "OMIS_TELEGRAM_CHAT_ID": self.chat_id, "OMIS_TIMEZONE": "Europe/Moscow"}
        env.update(extra)
        return env

    # What happened

    @property
    def messages(self) -> list[SentMessage]:
        """Return the accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def calls(self) -> list[Call]:
        """Return every answered call, oldest first."""
        with self._lock:
            return list(self._calls)

    # Scripting

    def respond_next(self, status: int, body: dict[str, Any] | None = None, *, delay: float = 0.0,
                     method: str | None = "sendMessage", times: int = 1) -> None:
        """Answer the next `times` calls of `method` (None: any) with a canned response, after `delay` s.

        body None with a delay means: wait, then answer normally (to provoke client timeouts).
        """
        with self._lock:
            self._script.extend(_Scripted(method, status, body, delay) for _ in range(times))

    def fail_next(self, error_code: int, description: str, *, parameters: dict[str, Any] | None = None,
                  method: str | None = "sendMessage", times: int = 1) -> None:
        """Answer the next calls with a Bot API error."""
        body: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
        if parameters:
            body["parameters"] = parameters
        self.respond_next(error_code, body, method=method, times=times)

    def too_many_requests(self, retry_after: int = 1, *, times: int = 1) -> None:
        """Answer the next sendMessage calls with 429 and a retry_after."""
        self.fail_next(429, f"Too Many Requests: retry after {retry_after}",
                       parameters={"retry_after": retry_after}, times=times)

    def server_error(self, status: int = 500, *, times: int = 1) -> None:
        """Answer the next sendMessage calls with a 5xx."""
        self.fail_next(status, "Internal Server Error", times=times)

    def chat_not_found(self) -> None:
        """Answer the next sendMessage with 400 chat not found."""
        self.fail_next(400, "Bad Request: chat not found")

    def bot_kicked(self) -> None:
        """Answer the next sendMessage with 403, as when the bot was removed from the group."""
        self.fail_next(403, "Forbidden: bot was kicked from the supergroup chat")

    def migrate(self, new_chat_id: int) -> None:
        """Answer the next sendMessage as Telegram does for a group upgraded to a supergroup."""
        self.fail_next(400, "Bad Request: group chat was upgraded to a supergroup chat",
                       parameters={"migrate_to_chat_id": new_chat_id})

    def delay_next(self, seconds: float, *, method: str | None = "sendMessage") -> None:
        """Answer the next call only after `seconds` (then normally)."""
        self.respond_next(200, None, delay=seconds, method=method)

    def hold_next(self, *, method: str | None = "sendMessage") -> tuple[threading.Event, threading.Event]:
        """Hold the next call of `method` until released (then answer normally); return (arrived, release)."""
        arrived, release = threading.Event(), threading.Event()
        with self._lock:
            self._script.append(_Scripted(method, 200, None, hold=(arrived, release)))
        return arrived, release

    def add_update(self, kind: str, payload: dict[str, Any]) -> None:
        """Queue an update (`message`, `my_chat_member`, …) for getUpdates."""
        with self._lock:
            self.updates.append({"update_id": 100_000 + len(self.updates), kind: payload})

    # Serving (called from the handler threads)

    def _take_script(self, method: str) -> _Scripted | None:
        with self._lock:
            for index, entry in enumerate(self._script):
                if entry.method is None or entry.method.lower() == method.lower():
                    return self._script.pop(index)
        return None

    def _answer(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        scripted = self._take_script(method)
        if scripted is not None:
            if scripted.hold is not None:
                arrived, release = scripted.hold
                arrived.set()
                release.wait(timeout=30)   # bounded, whatever the test does
            if scripted.delay and self._stopping.wait(scripted.delay):
                return 503, {"ok": False, "error_code": 503, "description": "Service Unavailable"}
            if scripted.body is not None:
                return scripted.status, scripted.body
        handler = {"sendmessage": self._send_message, "getupdates": self._get_updates,
                   "getme": self._get_me}.get(method.lower())
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        return handler(params)

    def _send_message(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        def bad(description: str) -> tuple[int, dict[str, Any]]:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}

        chat_id = str(params.get("chat_id", "")).strip()
        text = params.get("text")
        if not chat_id:
            return bad("chat_id is empty")
        if self.accept_chats is not None and chat_id not in self.accept_chats:
            return bad("chat not found")
        if not isinstance(text, str) or not text.strip():
            return bad("message text is empty")
        parse_mode = params.get("parse_mode")
        visible = text
        if isinstance(parse_mode, str) and parse_mode.lower() == "html":
            try:
                visible = html_visible_text(text)
            except HtmlError as exc:
                return bad(str(exc))
        if _utf16_length(visible.strip()) > MESSAGE_LIMIT:
            return bad("message is too long")
        thread = params.get("message_thread_id")
        if thread not in (None, "") and not (isinstance(thread, int) or str(thread).isdigit()):
            return bad("message thread not found")
        preview = params.get("link_preview_options")
        if preview is not None and not isinstance(preview, dict):
            return bad("can't parse link preview options")
        disabled = (bool(preview.get("is_disabled")) if isinstance(preview, dict)
                    else params.get("disable_web_page_preview") in (True, "true", "True", "1"))
        with self._lock:
            message = SentMessage(
                message_id=len(self._messages) + 1, chat_id=chat_id, text=text,
                parse_mode=parse_mode if isinstance(parse_mode, str) else None,
                message_thread_id=None if thread in (None, "") else str(thread),
                link_preview_disabled=disabled,
                deprecated_fields=tuple(name for name in DEPRECATED_SEND_FIELDS if name in params),
            )
            self._messages.append(message)
        chat: dict[str, Any] = {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else 0,
                                "type": "supergroup", "title": "OMIS test chat"}
        result = {"message_id": message.message_id, "date": int(time.time()), "chat": chat, "text": visible}
        if message.message_thread_id:
            result["message_thread_id"] = int(message.message_thread_id)
        return 200, {"ok": True, "result": result}

    def _get_updates(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            return 200, {"ok": True, "result": list(self.updates)}

    def _get_me(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        bot_id = int(self.token.split(":", 1)[0]) if self.token.split(":", 1)[0].isdigit() else 1
        return 200, {"ok": True, "result": {"id": bot_id, "is_bot": True, "first_name": "OMIS test bot",
                                            "username": "omis_test_bot", "can_join_groups": True}}

    def _record(self, method: str, params: dict[str, Any], status: int) -> None:
        with self._lock:
            self._calls.append(Call(method, dict(params), status))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTelegram

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that gave up (timeouts) instead of printing tracebacks."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Stay quiet: the path holds the token."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _params(self) -> dict[str, Any]:
        parts = urlsplit(self.path)
        params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if raw and content_type == "application/json":
            body = json.loads(raw.decode("utf-8"))
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            params.update(body)
        elif raw:
            params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        return params

    def _handle(self) -> None:
        match = _PATH_RE.match(urlsplit(self.path).path)
        if match is None:
            self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        try:
            params = self._params()
        except (ValueError, UnicodeDecodeError):
            self._reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: invalid request body"})
            return
        fake = self.server.fake
        status, body = fake._answer(match["token"], match["method"], params)
        fake._record(match["method"], params, status)
        self._reply(status, body)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    """Yield a running FakeTelegram; import it into a test module or conftest.py to use it."""
    with FakeTelegram() as fake:
        yield fake
