"""An e-mail as OMIS reads it, and its conversion from a Graph message resource (pure)."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphMessage:
    """One e-mail as OMIS needs it."""

    graph_id: str
    internet_message_id: str | None
    conversation_id: str | None
    subject: str
    body: str
    unique_body: str | None
    sender_name: str
    sender_address: str
    received: datetime



class _HtmlText(HTMLParser):
    """Collect the text of an HTML body, one line per block."""

    BLOCKS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _body_text(body: Any) -> str | None:
    """Return the text of a Graph itemBody, converting HTML when Graph ignored our preference."""
    if not isinstance(body, dict) or body.get("content") is None:
        return None
    content = str(body["content"]).replace("\r\n", "\n")
    if str(body.get("contentType", "")).lower() == "html":
        parser = _HtmlText()
        parser.feed(content)
        content = re.sub(r"[ \t\xa0]+\n", "\n", "".join(parser.parts))
        content = re.sub(r"\n{3,}", "\n\n", content)
    return content.strip()


def parse_graph_time(value: Any) -> datetime | None:
    """Read a Graph DateTimeOffset (ISO 8601) as an aware UTC time; None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _clean(value: Any) -> str:
    """Return text that can be stored and shown: lone surrogates (JSON allows "\\ud800") become U+FFFD."""
    if not isinstance(value, str):
        return ""
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


# Control characters but LF and TAB (C0, DEL, C1), and the bidi controls (U+061C, U+200E/F,
# U+202A-U+202E, U+2066-U+2069): removed from what a mail says.
_MAIL_REMOVED = dict.fromkeys((*range(0x09), 0x0B, 0x0C, 0x0D, *range(0x0E, 0x20), *range(0x7F, 0xA0),
                               0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def clean_mail_text(value: Any) -> str:
    """Return mail text fit to store, show and log: no control characters but LF and TAB, no bidi controls.

    CRLF becomes LF, a lone CR goes, lone surrogates become U+FFFD. Apply it to any text that
    comes from a mail (Graph or the sample mailbox) before it is parsed or stored.
    """
    return _clean(value).replace("\r\n", "\n").translate(_MAIL_REMOVED)


def message_from_graph(item: dict[str, Any]) -> GraphMessage | None:
    """Turn one delta entry into a GraphMessage, or None when it carries no received time."""
    received = parse_graph_time(item.get("receivedDateTime"))
    if received is None or not item.get("id"):
        logger.warning("Skipping a Graph entry without id or receivedDateTime")
        return None
    sender = (item.get("from") or {}).get("emailAddress") or {}
    return GraphMessage(
        graph_id=_clean(item["id"]),
        internet_message_id=_clean(item.get("internetMessageId")) or None,
        conversation_id=_clean(item.get("conversationId")) or None,
        subject=clean_mail_text(item.get("subject")),
        body=clean_mail_text(_body_text(item.get("body"))),
        unique_body=clean_mail_text(_body_text(item.get("uniqueBody"))) or None,
        sender_name=clean_mail_text(sender.get("name")).strip(),
        sender_address=clean_mail_text(sender.get("address")).strip(),
        received=received,
    )
