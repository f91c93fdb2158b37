"""Mail OMIS writes to the contractor: the request and the nudge, as text, HTML and MIME (pure).

The words of the templates stay clear of every status and promise phrase of SPEC §3 (no
«принята», «выполн…», «уточн…», «просим сообщить», dates of our own): a contractor whose
reply quotes our mail without a reply header must not change the request by quoting it.
The deadlines and the passed deadline come from the caller as ready lines.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).with_name("templates")
SIGNATURE = "OMIS — учёт заявок подрядчику"
FALLBACK_DOMAIN = "omis.invalid"
_MESSAGE_ID_RE = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")
_REPLY_PREFIX_RE = re.compile(r"^\s*(?:re|ответ|отв|aw|sv)\s*:", re.IGNORECASE)


def _nl2br(text: str) -> Markup:
    return Markup("<br>\n").join(escape(line) for line in str(text).splitlines())


_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(("html",)),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_env.filters["nl2br"] = _nl2br


@dataclass(frozen=True)
class ComposedMail:
    """A mail ready to send: subject, plain text and HTML."""

    subject: str
    text: str
    html: str


def _clean(value: str | None) -> str:
    return " ".join(str(value or "").split())


def request_subject(number: str, position: str | None = None) -> str:
    """Return «Заявка №{number}», with « — {position}» when there is one."""
    position = _clean(position)
    return f"Заявка №{_clean(number)}" + (f" — {position}" if position else "")


def reply_subject(subject: str) -> str:
    """Return the subject of a reply: «RE: …» unless it already is one."""
    subject = _clean(subject)
    return subject if _REPLY_PREFIX_RE.match(subject) else f"RE: {subject}"


def _render(name: str, subject: str, **values: object) -> ComposedMail:
    values = {"subject": subject, "signature": SIGNATURE, **values}
    return ComposedMail(subject, _env.get_template(f"{name}.txt").render(values),
                        _env.get_template(f"{name}.html").render(values))


def compose_request(*, number: str, position: str | None, description: str | None, level_title: str,
                    deadlines: Sequence[str], author: str) -> ComposedMail:
    """Write the mail that hands a request to the contractor."""
    return _render("request", request_subject(number, position), number=_clean(number),
                   position=_clean(position), description=(description or "").strip(),
                   level_title=_clean(level_title), deadlines=[_clean(line) for line in deadlines if _clean(line)],
                   author=_clean(author))


def compose_nudge(*, number: str, position: str | None, passed: str | None = None,
                  subject: str | None = None) -> ComposedMail:
    """Write a short polite request for news; `subject` is the conversation's, for a reply."""
    position = _clean(position)
    subject = reply_subject(subject) if subject else (
        f"Напоминание по заявке №{_clean(number)}" + (f" — {position}" if position else ""))
    return _render("nudge", subject, number=_clean(number), position=position,
                   passed=_clean(passed).rstrip("."))


def message_id_domain(mailbox: str | None) -> str:
    """Return the domain for our Message-IDs: the shared mailbox's, in ASCII (IDNA)."""
    _, at, domain = (mailbox or "").rpartition("@")
    domain = domain.strip().strip(".").lower()
    if not at or not domain:
        return FALLBACK_DOMAIN
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return FALLBACK_DOMAIN


def new_message_id(domain: str) -> str:
    """Return a new RFC 5322 Message-ID `<…@domain>` for a mail about to be queued."""
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?", domain or ""):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    return f"<omis.{uuid.uuid4().hex}@{domain.lower()}>"


def _address(text: str) -> Address:
    local, _, domain = text.strip().rpartition("@")
    if not local or not domain:
        raise ValueError(f"«{text}» — не адрес электронной почты")
    if not local.isascii():  # would need SMTPUTF8 headers, which Graph's MIME intake does not promise
        raise ValueError(f"«{text}»: до @ только латинские буквы, цифры и знаки")
    try:
        return Address(addr_spec=f"{local}@{domain.encode('idna').decode('ascii')}")
    except (ValueError, UnicodeError):
        raise ValueError(f"«{text}» — не адрес электронной почты") from None


def build_mime(*, sender: str | None, to: Sequence[str], subject: str, text: str, html: str, message_id: str,
               date: datetime, in_reply_to: str | None = None, references: Sequence[str] = ()) -> bytes:
    """Build the MIME message (text and HTML alternatives, UTF-8) with our Message-ID and threading headers."""
    for value in (message_id, in_reply_to, *references):
        if value is not None and not _MESSAGE_ID_RE.match(value):
            raise ValueError(f"«{value}» — не Message-ID вида <…@…>")
    if date.tzinfo is None:
        raise ValueError("date must be timezone-aware")
    message = EmailMessage(policy=SMTP)
    if sender:
        message["From"] = _address(sender)
    message["To"] = [_address(address) for address in to]
    message["Subject"] = _clean(subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    chain = list(dict.fromkeys(references))
    if chain:
        message["References"] = " ".join(chain)
    message["Content-Language"] = "ru"
    message.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    return message.as_bytes(policy=SMTP)
