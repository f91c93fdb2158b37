"""Send mail from the shared mailbox with Graph's `Mail.Send` alone, and find what was sent.

- A new mail goes by `POST /users/{mailbox}/sendMail`, a reply by
  `POST /users/{mailbox}/messages/{id}/reply` (never createReply: drafts need Mail.ReadWrite).
- Both send MIME (a base64 `text/plain` body), not JSON: in MIME the `Message-ID` header is
  ours, so the sent copy's internetMessageId is the one the caller fixed when it queued the
  mail. Graph documents internetMessageId as writable only on drafts; whether sendMail keeps
  one given in the JSON message is not documented.
- Sending is not idempotent: after a 5xx or a broken connection the mail may have gone, so
  nothing is retried in place (GraphError with `uncertain=True`); the caller looks the mail
  up with `find_sent` (Exchange files the sent copy a little later) before sending again.
  A 429 is retried after its Retry-After like any call (graph_http.py).
"""
from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .compose import build_mime
from .graph_http import GraphError, GraphTransport
from .message import parse_graph_time

logger = logging.getLogger(__name__)

SENT_FIELDS = ("id", "conversationId", "internetMessageId", "sentDateTime")
RECIPIENT_CODES = frozenset({"errorinvalidrecipients", "errorinvalidrecipientsinvalidaddress",
                             "errorrecipientnotfound", "errorinvalidemailaddress"})


class SendRejected(GraphError):
    """Graph refused this mail for good (bad recipient, no permission): do not send it again.

    reason: what went wrong in a few Russian words, for «не отправлено: {reason}».
    """

    def __init__(self, message: str, *, reason: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reason = reason or message


class ReplyTargetGone(SendRejected):
    """The message to reply to is no longer in the mailbox (404): send a new mail instead."""


@dataclass(frozen=True)
class SentMail:
    """A mail found among the mailbox's sent items."""

    graph_id: str
    conversation_id: str | None
    internet_message_id: str
    sent_at: datetime | None


def odata_string(value: str) -> str:
    """Quote a value as an OData string literal (a quote inside is doubled)."""
    return "'" + value.replace("'", "''") + "'"


class GraphSender(GraphTransport):
    """Send mail as the shared mailbox OMIS_OUTLOOK_EMAIL and look it up in its Sent Items.

    Keyword arguments are GraphTransport's; pass the reader's session and the saved
    "not before" so that one pass shares connections and throttling.
    """

    RETRY_LATER = "письмо будет отправлено в следующий раз"

    def send_new(self, *, to: Sequence[str], subject: str, text: str, html: str, message_id: str,
                 in_reply_to: str | None = None, references: Sequence[str] = ()) -> None:
        """Send a new mail whose Message-ID is `message_id`; raise SendRejected or GraphError."""
        mime = self._mime(to, subject, text, html, message_id, in_reply_to, references)
        self._send(f"{self._mailbox_url}/sendMail", mime, message_id, to)

    def send_reply(self, graph_message_id: str, *, to: Sequence[str], subject: str, text: str, html: str,
                   message_id: str, in_reply_to: str | None, references: Sequence[str] = ()) -> None:
        """Reply in the conversation of a mail of the mailbox; raise ReplyTargetGone when it is gone."""
        chain = list(references) or ([in_reply_to] if in_reply_to else [])
        mime = self._mime(to, subject, text, html, message_id, in_reply_to, chain)
        url = f"{self._mailbox_url}/messages/{quote(graph_message_id, safe='')}/reply"
        self._send(url, mime, message_id, to, reply=True)

    def find_sent(self, message_id: str, *, attempts: int = 1, interval: float = 5.0) -> SentMail | None:
        """Look a mail up among the sent items by its Message-ID; None when it is not (yet) there.

        Exchange files the sent copy a little after sendMail answers: with attempts > 1 the
        lookup is repeated `interval` seconds apart (the client's sleep) before giving up.
        """
        url = f"{self._mailbox_url}/mailFolders/sentitems/messages"
        params = {"$filter": f"internetMessageId eq {odata_string(message_id)}",
                  "$select": ",".join(SENT_FIELDS), "$top": "5"}
        for attempt in range(max(1, attempts)):
            if attempt:
                self._sleep(interval)
            for item in self._get(url, params=params).get("value", []):
                if str(item.get("internetMessageId") or "").strip() == message_id and item.get("id"):
                    return SentMail(graph_id=str(item["id"]), conversation_id=item.get("conversationId") or None,
                                    internet_message_id=message_id,
                                    sent_at=parse_graph_time(item.get("sentDateTime")))
        return None

    # -- internals -------------------------------------------------------------------------

    def _mime(self, to: Sequence[str], subject: str, text: str, html: str, message_id: str,
              in_reply_to: str | None, references: Sequence[str]) -> bytes:
        if not to:
            raise SendRejected("Письмо не отправлено: не указан ни один получатель", code="NoRecipients",
                               reason="не указан ни один получатель")
        mailbox = self._settings.outlook_email or ""
        if any(address.strip().casefold() == mailbox.casefold() for address in to):
            raise SendRejected(f"Письмо не отправлено: среди получателей сам общий ящик {mailbox}",
                               code="SelfRecipient", reason=f"среди получателей сам общий ящик {mailbox}")
        # An object id instead of an address: Exchange fills From with the mailbox itself.
        sender = mailbox if "@" in mailbox else None
        try:
            return build_mime(sender=sender, to=to, subject=subject, text=text, html=html, message_id=message_id,
                              in_reply_to=in_reply_to, references=references, date=self._clock())
        except ValueError as exc:
            raise SendRejected(f"Письмо не отправлено: {exc}", code="InvalidMessage", reason=str(exc)) from None

    def _send(self, url: str, mime: bytes, message_id: str, to: Sequence[str], *, reply: bool = False) -> None:
        try:
            self._request("POST", url, data=base64.b64encode(mime), content_type="text/plain", safe=False)
        except GraphError as exc:
            raise self._classify(exc, to, reply) from None
        logger.info("Graph accepted mail %s to %d recipient(s)%s", message_id, len(to), " as a reply" if reply else "")

    def _classify(self, exc: GraphError, to: Sequence[str], reply: bool) -> GraphError:
        """Turn a refusal into SendRejected (permanent) and keep the rest temporary."""
        status, code = exc.status, (exc.code or "")
        if isinstance(exc, SendRejected) or status is None or status >= 500 or status in (401, 429):
            return exc
        detail = f"HTTP {status} {code}: {exc.detail}".rstrip(": ")
        mailbox = self._settings.outlook_email
        if status == 404 and reply and code.lower() not in ("errorinvaliduser", "mailboxnotenabledforrestapi"):
            return ReplyTargetGone(f"Письмо, на которое нужен ответ, больше не найдено в ящике {mailbox} "
                                   f"({detail}); можно отправить новое письмо", status=status, code=code,
                                   detail=exc.detail, reason="письма для ответа больше нет в ящике")
        if code.lower() in RECIPIENT_CODES:
            reason = f"адрес получателя не принят ({', '.join(to)})"
        elif status == 403:
            reason = (f"нет права отправлять письма от имени {mailbox}: приложению нужно разрешение Mail.Send "
                      "(Application) и доступ к этому ящику в Exchange (RBAC для приложений)")
        elif status == 404:
            reason = f"ящик {mailbox} не найден или недоступен (OMIS_OUTLOOK_EMAIL)"
        elif status == 413:
            reason = "письмо слишком большое"
        else:
            reason = "Graph не принял письмо"
        return SendRejected(f"Письмо не отправлено: {reason} — {detail}", status=status, code=code,
                            detail=exc.detail, reason=reason)

