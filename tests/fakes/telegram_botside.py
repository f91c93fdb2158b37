"""The side of the fake Bot API a two-way bot uses: updates, edits, callback answers, the webhook.

FakeTelegram (telegram_server.py) mixes this in; the methods work on its state under its lock.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from .telegram_checks import MESSAGE_LIMIT, HtmlError, html_visible_text, markup_error, utf16_length


@dataclass(frozen=True)
class Edit:
    """An editMessageText the fake accepted."""

    chat_id: str
    message_id: int
    text: str
    reply_markup: dict[str, Any] | None


@dataclass(frozen=True)
class CallbackAnswer:
    """An answerCallbackQuery the fake accepted."""

    callback_query_id: str
    text: str


@dataclass(frozen=True)
class Webhook:
    """The webhook as setWebhook left it."""

    url: str
    secret_token: str | None
    allowed_updates: tuple[str, ...] | None


class BotSide:
    """getUpdates (long polling), editMessageText, answerCallbackQuery, setWebhook, deleteWebhook, getWebhookInfo."""

    def _get_updates(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.webhook is not None:
            return 409, {"ok": False, "error_code": 409, "description": "Conflict: can't use getUpdates method "
                         "while webhook is active; use deleteWebhook to delete the webhook first"}
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), self.max_poll_seconds)
        limit = int(params.get("limit") or 100)
        allowed = params.get("allowed_updates")
        with self._changed:
            if offset:
                # As Telegram does: an offset confirms every update before it, which is then forgotten.
                self.updates[:] = [u for u in self.updates if u["update_id"] >= offset]

            def pending() -> list[dict[str, Any]]:
                return [u for u in self.updates if u["update_id"] >= offset
                        and (not allowed or any(kind in u for kind in allowed))][:limit]
            self._changed.wait_for(lambda: bool(pending()) or self._stopping.is_set(), timeout=wait)
            return 200, {"ok": True, "result": pending()}

    def _edit_message_text(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        def bad(description: str) -> tuple[int, dict[str, Any]]:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}

        chat_id, text = str(params.get("chat_id", "")), params.get("text")
        markup = params.get("reply_markup")
        if not isinstance(text, str) or not text.strip():
            return bad("message text is empty")
        try:
            visible = html_visible_text(text) if str(params.get("parse_mode", "")).lower() == "html" else text
        except HtmlError as exc:
            return bad(str(exc))
        if utf16_length(visible.strip()) > MESSAGE_LIMIT:
            return bad("MESSAGE_TOO_LONG")
        if markup is not None and (error := markup_error(markup)):
            return bad(error)
        with self._changed:
            found = [i for i, m in enumerate(self._messages)
                     if m.chat_id == chat_id and m.message_id == params.get("message_id")]
            if not found:
                return bad("message to edit not found")
            current = self._messages[found[0]]
            if current.text == text and current.reply_markup == markup:
                return bad("message is not modified: specified new message content and reply markup are exactly "
                           "the same as a current content and reply markup of the message")
            self._messages[found[0]] = replace(current, text=text, reply_markup=markup)
            self._edits.append(Edit(chat_id, current.message_id, text, markup))
            self._changed.notify_all()
        return 200, {"ok": True, "result": {"message_id": current.message_id, "text": visible}}

    def _answer_callback(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        callback_id, text = params.get("callback_query_id"), params.get("text") or ""
        if not isinstance(callback_id, str) or not callback_id:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: query is too old and response "
                         "timeout expired or query ID is invalid"}
        if len(str(text)) > 200:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: text is too long"}
        with self._changed:
            self._answers.append(CallbackAnswer(callback_id, str(text)))
            self._changed.notify_all()
        return 200, {"ok": True, "result": True}

    def _set_webhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        url, secret = str(params.get("url") or ""), params.get("secret_token")
        if not url:
            return self._delete_webhook(params)
        if not url.startswith("https://"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: bad webhook: An HTTPS URL "
                         "must be provided for webhook"}
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: secret token contains "
                         "unallowed characters"}
        allowed = params.get("allowed_updates")
        with self._lock:
            self.webhook = Webhook(url, secret, tuple(allowed) if isinstance(allowed, list) else None)
        return 200, {"ok": True, "result": True, "description": "Webhook was set"}

    def _delete_webhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            was = self.webhook
            self.webhook = None
            if params.get("drop_pending_updates") in (True, "true", "True"):
                self.updates.clear()
        return 200, {"ok": True, "result": True,
                     "description": "Webhook was deleted" if was else "Webhook is already deleted"}

    def _get_webhook_info(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            hook = self.webhook
            info: dict[str, Any] = {"url": hook.url if hook else "", "has_custom_certificate": False,
                                    "pending_update_count": len(self.updates)}
            if hook is not None:
                info["max_connections"] = 40
                if hook.allowed_updates is not None:
                    info["allowed_updates"] = list(hook.allowed_updates)
                if self.webhook_last_error is not None:
                    info["last_error_date"], info["last_error_message"] = self.webhook_last_error
        return 200, {"ok": True, "result": info}
