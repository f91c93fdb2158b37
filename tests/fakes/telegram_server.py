"""A fake Telegram Bot API on 127.0.0.1 that speaks the real HTTP protocol, with scriptable failures.

Besides sending it keeps what a two-way bot uses: updates for getUpdates (long polling with
offset and timeout; 409 while a webhook is set), button presses, editMessageText (with the
real «message is not modified» refusal), answerCallbackQuery and the webhook methods.
"""
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

from .telegram_botside import BotSide, CallbackAnswer, Edit, Webhook
from .telegram_checks import MESSAGE_LIMIT, HtmlError, html_visible_text, markup_error, utf16_length
from .telegram_payloads import DEFAULT_CHAT_ID, message_payload, press_payload, update

__all__ = ["DEFAULT_CHAT_ID", "DEFAULT_TOKEN", "CallbackAnswer", "Edit", "FakeTelegram", "SentMessage", "Webhook", "html_visible_text", "message_payload",
           "press_payload", "update"]

DEFAULT_TOKEN = "123456789:AAF-fake_token_for_tests-0123456789ab"

_PATH_RE = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)/?$")


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
    reply_markup: dict[str, Any] | None = None   # as it is now (editMessageText may have changed it)
    reply_to: int | None = None                  # reply_parameters.message_id


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


@dataclass
class FakeTelegram(BotSide):
    """The fake Bot API: use as a context manager; `.url` and `.token` go into the settings."""

    token: str = DEFAULT_TOKEN
    chat_id: str = DEFAULT_CHAT_ID
    accept_chats: set[str] | None = None   # None: any chat id is accepted
    updates: list[dict[str, Any]] = field(default_factory=list)
    webhook: Webhook | None = None
    webhook_last_error: tuple[int, str] | None = None    # (unix time, message) getWebhookInfo reports
    max_poll_seconds: float = 30.0                       # a long poll waits at most this long, whatever it asks
    _messages: list[SentMessage] = field(default_factory=list, init=False)
    _edits: list[Edit] = field(default_factory=list, init=False)
    _answers: list[CallbackAnswer] = field(default_factory=list, init=False)
    _next_update_id: int = field(default=100_000, init=False)
    _calls: list[Call] = field(default_factory=list, init=False)
    _script: list[_Scripted] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _changed: threading.Condition = field(init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _server: ThreadingHTTPServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

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
        """Stop serving and wake any delayed or waiting answer."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
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
    def edits(self) -> list[Edit]:
        """Return the accepted message edits, oldest first."""
        with self._lock:
            return list(self._edits)

    @property
    def answers(self) -> list[CallbackAnswer]:
        """Return the accepted callback answers, oldest first."""
        with self._lock:
            return list(self._answers)

    def wait_for_messages(self, count: int, timeout: float = 15.0) -> list[SentMessage]:
        """Wait until at least `count` messages were accepted (another process sends them); return them all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._messages) >= count, timeout=timeout)
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

    def add_update(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue an update (`message`, `my_chat_member`, …) for getUpdates; return its update_id."""
        with self._changed:
            update_id = self._next_update_id
            self._next_update_id += 1
            self.updates.append({"update_id": update_id, kind: payload})
            self._changed.notify_all()
            return update_id

    def add_message(self, text: str, **kwargs: Any) -> int:
        """Queue a message in the chat (see message_payload); return its update_id."""
        return self.add_update("message", message_payload(text, chat_id=kwargs.pop("chat_id", self.chat_id), **kwargs))

    def add_press(self, message: SentMessage, data: str, **kwargs: Any) -> int:
        """Queue a press of a button under a message the bot sent (see press_payload); return its update_id."""
        return self.add_update("callback_query", press_payload(message, data, **kwargs))

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
        handler = {"sendmessage": self._send_message, "getupdates": self._get_updates, "getme": self._get_me,
                   "editmessagetext": self._edit_message_text, "answercallbackquery": self._answer_callback,
                   "setwebhook": self._set_webhook, "deletewebhook": self._delete_webhook,
                   "getwebhookinfo": self._get_webhook_info}.get(method.lower())
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
        if utf16_length(visible.strip()) > MESSAGE_LIMIT:
            return bad("message is too long")
        thread = params.get("message_thread_id")
        if thread not in (None, "") and not (isinstance(thread, int) or str(thread).isdigit()):
            return bad("message thread not found")
        preview = params.get("link_preview_options")
        if preview is not None and not isinstance(preview, dict):
            return bad("can't parse link preview options")
        disabled = (bool(preview.get("is_disabled")) if isinstance(preview, dict)
                    else params.get("disable_web_page_preview") in (True, "true", "True", "1"))
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        if markup is not None and (error := markup_error(markup)):
            return bad(error)
        reply = params.get("reply_parameters")
        reply_to = reply.get("message_id") if isinstance(reply, dict) else None
        with self._changed:
            message = SentMessage(
                message_id=len(self._messages) + 1, chat_id=chat_id, text=text,
                parse_mode=parse_mode if isinstance(parse_mode, str) else None,
                message_thread_id=None if thread in (None, "") else str(thread),
                link_preview_disabled=disabled,
                deprecated_fields=tuple(name for name in DEPRECATED_SEND_FIELDS if name in params),
                reply_markup=markup, reply_to=reply_to if isinstance(reply_to, int) else None,
            )
            self._messages.append(message)
            self._changed.notify_all()
        chat: dict[str, Any] = {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else 0,
                                "type": "supergroup", "title": "OMIS test chat"}
        result = {"message_id": message.message_id, "date": int(time.time()), "chat": chat, "text": visible}
        if message.message_thread_id:
            result["message_thread_id"] = int(message.message_thread_id)
        return 200, {"ok": True, "result": result}

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
