"""The fake Graph's message listings, sendMail and reply (a mixin of graph_server.FakeGraph).

- `GET .../mailFolders/{id}/messages` with `$filter` (receivedDateTime ge|gt|le|lt, and
  internetMessageId eq '…' with '' for a quote), `$orderby=receivedDateTime [asc|desc]` (an
  `$orderby` whose property does not lead `$filter` is InefficientFilter, as in Graph),
  `$top`, `$skip`, `$select` and paging by `@odata.nextLink`.
- `POST /users/{id}/sendMail` and `POST /users/{id}/messages/{id}/reply`, in JSON or in MIME
  (a base64 `text/plain` body): 202 with no body; the sent copy goes to Sent Items, with the
  MIME's own Message-ID as internetMessageId (a JSON internetMessageId is kept only when
  `json_keeps_internet_message_id`: Graph does not document it).

Knobs: `refuse_recipient` (400 ErrorInvalidRecipients for good), `file_sent_after_lookups`
(the sent copy shows up only after that many Sent Items listings), `cut_after_accepting`
(the mail is sent, then the connection breaks before the answer). `sent` records every mail
sent, with its recipients, so a test can count copies.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import email
import itertools
import json
import re
from dataclasses import dataclass, field
from email import policy
from email.utils import getaddresses
from typing import Any
from urllib.parse import quote, urlencode

_CLAUSE = re.compile(r"\s*(\w+)\s+(eq|ne|ge|gt|le|lt)\s+('(?:[^']|'')*'|[^\s']+)\s*", re.IGNORECASE)
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_MESSAGE_ID = re.compile(r"^<[^<>\s]+@[^<>\s]+>$")
_COMPARE = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "ge": lambda a, b: a >= b,
            "gt": lambda a, b: a > b, "le": lambda a, b: a <= b, "lt": lambda a, b: a < b}
Answer = tuple[int, "dict[str, Any] | None", dict[str, str]]


def _server() -> Any:
    from . import graph_server  # the module that imports this one

    return graph_server


@dataclass
class SentRecord:
    """One mail the fake accepted for sending."""

    kind: str                       # "sendMail" or "reply"
    format: str                     # "mime" or "json"
    to: list[str]
    cc: list[str]
    subject: str
    text: str
    html: str | None
    internet_message_id: str
    conversation_id: str
    sender: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    reply_to: str | None = None     # the Graph id replied to
    graph_id: str | None = None     # of the sent copy, once filed


def _parse_filter(text: str | None) -> list[tuple[str, str, str]] | str:
    """Split `$filter` into (property, operator, value) clauses joined by `and`; a string is an error."""
    if not text:
        return []
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.fullmatch(part)
        if not match:
            return f"Invalid filter clause: '{part}'."
        name, op, raw = match[1], match[2].lower(), match[3]
        value = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw
        if name.lower() not in ("receiveddatetime", "internetmessageid"):
            return f"The property '{name}' is not supported in this fake's $filter."
        clauses.append((name.lower(), op, value))
    return clauses


def _matches(message: Any, clauses: list[tuple[str, str, str]]) -> bool:
    for name, op, value in clauses:
        if name == "internetmessageid":
            if not _COMPARE[op](message.internet_message_id, value):
                return False
        else:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if not _COMPARE[op](message.received, moment):
                return False
    return True


def _addresses(recipients: Any) -> list[str]:
    return [str((r.get("emailAddress") or {}).get("address") or "") for r in recipients or []]


class MailActions:
    """Listings, sending and Sent Items for FakeGraph; its lock is held around every method here."""

    def _init_mail(self) -> None:
        self.sent: list[SentRecord] = []
        self.file_sent_after_lookups = 0
        self.json_keeps_internet_message_id = False
        self._refused: dict[str, str] = {}
        self._cuts = 0
        self._pending_sent: list[list[Any]] = []    # [lookups still to miss, FakeMessage, SentRecord]
        self._sent_ids = itertools.count(1)

    # -- knobs -----------------------------------------------------------------------------

    def refuse_recipient(self, address: str, code: str = "ErrorInvalidRecipients") -> None:
        """Refuse every mail to this address for good."""
        with self._lock:
            self._refused[address.lower()] = code

    def cut_after_accepting(self, count: int = 1) -> None:
        """Send the next `count` mails, then break the connection instead of answering."""
        with self._lock:
            self._cuts += count

    def copies(self, internet_message_id: str) -> int:
        """Return how many mails went out with this Message-ID."""
        with self._lock:
            return sum(1 for record in self.sent if record.internet_message_id == internet_message_id)

    def sent_items(self) -> list[Any]:
        """Return the messages filed in Sent Items so far."""
        sent_folder = self.folder_id("sentitems")
        with self._lock:
            return [m for m in self._messages.values() if m.folder_id == sent_folder]

    # -- listings --------------------------------------------------------------------------

    def _list_messages(self, folder: Any, call: Any, prefer: dict[str, str]) -> Answer:
        gs = _server()
        clauses = _parse_filter(call.query.get("$filter"))
        if isinstance(clauses, str):
            return gs._graph_error(400, "BadRequest", clauses)
        order = (call.query.get("$orderby") or "").split()
        if order:
            if order[0].lower() != "receiveddatetime" or len(order) > 2:
                return gs._graph_error(400, "BadRequest", f"$orderby '{call.query['$orderby']}' is not supported.")
            if clauses and clauses[0][0] != "receiveddatetime":
                return gs._graph_error(400, "InefficientFilter",
                                       "The restriction or sort order is too complex for this operation.")
        sent_lookup = folder.well_known == "sentitems"
        if sent_lookup:
            self._file_ready_sent()
        found = [m for m in self._messages.values() if m.folder_id == folder.id and _matches(m, clauses)]
        ascending = (len(order) == 2 and order[1].lower() == "asc") or len(order) == 1
        found.sort(key=lambda m: (m.received, m.id), reverse=not ascending)
        top = int(call.query.get("$top") or prefer.get("odata.maxpagesize") or gs.DEFAULT_PAGE_SIZE)
        top = min(top, self.page_cap or 1000, 1000)
        skip = int(call.query.get("$skip") or 0)
        page = found[skip:skip + top]
        text_body = prefer.get("outlook.body-content-type", "").strip('"').lower() == "text"
        select = gs._select_param(call.query)
        body: dict[str, Any] = {"value": [self._message_json(m, select, text_body) for m in page]}
        if skip + len(page) < len(found):
            query = {k: v for k, v in call.query.items() if k != "$skip"} | {"$top": str(top),
                                                                             "$skip": str(skip + len(page))}
            body["@odata.nextLink"] = (f"{self.graph_url}/v1.0/users/{self.mailbox}/mailFolders('{folder.id}')"
                                       f"/messages?{urlencode(query, quote_via=quote)}")
        if sent_lookup:
            for pending in self._pending_sent:
                pending[0] -= 1
        return 200, body, {}

    def _file_ready_sent(self) -> None:
        for pending in [p for p in self._pending_sent if p[0] <= 0]:
            self._pending_sent.remove(pending)
            self._messages[pending[1].id] = pending[1]
            pending[2].graph_id = pending[1].id

    # -- sending ---------------------------------------------------------------------------

    def _send_mail(self, call: Any) -> Answer:
        parsed = self._read_mail(call)
        if not isinstance(parsed, dict):
            return parsed
        return self._accept(call, "sendMail", parsed, conversation=f"AAQkConv-sent-{next(self._sent_ids):04d}=")

    def _reply(self, call: Any, message_id: str) -> Answer:
        gs = _server()
        original = self._messages.get(message_id)
        if original is None:
            return gs._graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        parsed = self._read_mail(call, reply=True)
        if not isinstance(parsed, dict):
            return parsed
        if not parsed["to"]:  # the reply goes to the original's sender
            parsed["to"] = [original.sender_address]
        parsed["subject"] = parsed["subject"] or f"RE: {original.subject}"
        if parsed["format"] == "json":
            parsed["in_reply_to"] = original.internet_message_id
            parsed["references"] = [original.internet_message_id]
        return self._accept(call, "reply", parsed, conversation=original.conversation_id, reply_to=message_id)

    def _read_mail(self, call: Any, reply: bool = False) -> dict[str, Any] | Answer:
        gs = _server()
        content_type = call.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "text/plain":
            try:
                raw = base64.b64decode(re.sub(rb"\s+", b"", call.body), validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if not raw:
                return gs._graph_error(400, "ErrorMimeContentInvalidBase64String",
                                       "Invalid base64 string for MIME content.")
            mime = email.message_from_bytes(raw, policy=policy.default)
            plain, html = mime.get_body(("plain",)), mime.get_body(("html",))
            message_id = str(mime.get("Message-ID") or "").strip()
            return {"format": "mime", "to": [a for _, a in getaddresses(mime.get_all("To", []))],
                    "cc": [a for _, a in getaddresses(mime.get_all("Cc", []))],
                    "subject": str(mime.get("Subject") or ""), "sender": str(mime.get("From") or "") or None,
                    "text": plain.get_content() if plain else "", "html": html.get_content() if html else None,
                    "internet_message_id": message_id if _MESSAGE_ID.match(message_id) else None,
                    "in_reply_to": str(mime.get("In-Reply-To") or "").strip() or None,
                    "references": str(mime.get("References") or "").split()}
        if content_type != "application/json":
            return gs._graph_error(415, "UnsupportedMediaType", f"Content-Type '{content_type}' is not supported.")
        try:
            data = json.loads(call.body or b"{}")
        except ValueError:
            return gs._graph_error(400, "BadRequest", "Unable to read JSON request payload.")
        message = data.get("message") or {}
        if reply and data.get("comment") is not None and (message.get("body") or {}).get("content"):
            return gs._graph_error(400, "ErrorInvalidRequest",
                                   "Specify either a comment or the message body, not both.")
        body = message.get("body") or {"contentType": "text", "content": data.get("comment") or ""}
        is_html = str(body.get("contentType", "")).lower() == "html"
        given_id = str(message.get("internetMessageId") or "")
        return {"format": "json", "to": _addresses(message.get("toRecipients")),
                "cc": _addresses(message.get("ccRecipients")), "sender": None,
                "subject": str(message.get("subject") or ""),
                "text": "" if is_html else str(body.get("content") or ""),
                "html": str(body.get("content") or "") if is_html else None,
                "internet_message_id": given_id if self.json_keeps_internet_message_id and given_id else None,
                "in_reply_to": None, "references": []}

    def _accept(self, call: Any, kind: str, mail: dict[str, Any], *, conversation: str,
                reply_to: str | None = None) -> Answer:
        gs = _server()
        recipients = mail["to"] + mail["cc"]
        if not recipients:
            return gs._graph_error(400, "ErrorInvalidRecipients", "At least one recipient is required.")
        for address in recipients:
            code = self._refused.get(address.lower()) or (None if _ADDRESS.match(address) else "ErrorInvalidRecipients")
            if code:
                return gs._graph_error(400, code, f"At least one recipient is not valid., Recipient '{address}' is "
                                                  "not resolved. All recipients must be resolved before a message "
                                                  "can be submitted.")
        domain = self.mailbox.rpartition("@")[2]
        internet_id = mail["internet_message_id"] or f"<fake-sent-{next(self._sent_ids):04d}@{domain}>"
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        record = SentRecord(kind, mail["format"], mail["to"], mail["cc"], mail["subject"], mail["text"],
                            mail["html"], internet_id, conversation, mail["sender"], mail["in_reply_to"],
                            mail["references"], reply_to)
        self.sent.append(record)
        copy = gs.FakeMessage(
            id=self._new_id("SNT"), folder_id=self._folder_by_ref("sentitems").id, subject=record.subject,
            body=record.text, unique_body=None, sender_name="OMIS", sender_address=self.mailbox, received=now,
            internet_message_id=internet_id, conversation_id=conversation)
        self._pending_sent.append([self.file_sent_after_lookups, copy, record])
        if self.file_sent_after_lookups <= 0:
            self._file_ready_sent()
        if self._cuts > 0:
            self._cuts -= 1
            return 0, None, {}
        return 202, None, {}
