"""What a person does with mail OMIS could not place: attach it, make a request of it, dismiss it (SPEC §5).

Attaching applies the mail as if it had named the request — status, promise, comment, a history
entry with source `mail` — and, a person having decided it now, its status takes effect even if
the mail is older than the request's last status change. Exactly once: the mail is first claimed
for the request on its unmatched row (ETag), then applied with the request's processed-message
marker (a second apply is a no-op), then taken off the list; a double click or two people at
once apply it once, and an attach cut off half-way is finished by the next try.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..model import ROBOT_AUTHOR, Request, normalize_number, utcnow
from ..storage import RequestNotFound, Store, UnmatchedBusy, UnmatchedGone, UnmatchedMail
from ..storage.layout import PARTITION, marker_key
from .parse import parse_mail


class AttachRefused(Exception):
    """The mail cannot be attached as asked; the message says why, in Russian."""


@dataclass(frozen=True)
class Attached:
    """The outcome of attaching: the mail as it now is, and the request it went to."""

    mail: UnmatchedMail
    request: Request


def _applied(store: Store, mail: UnmatchedMail, request_id: str) -> bool:
    return store.requests.table.get(PARTITION, marker_key(mail.message_key, request_id), select=["RowKey"]) is not None


def attach(store: Store, item_id: str, number: str, *, by: str, state: str = "attached") -> Attached:
    """Apply an unmatched mail to the request `number` and take it off the list."""
    mail = store.mail.get_unmatched(item_id)
    if mail is None:
        raise UnmatchedGone(item_id)
    request_id = store.requests.resolve(number)
    if request_id is None:
        raise RequestNotFound(number)
    if mail.state != "open":
        raise AttachRefused(_closed_text(mail))
    try:
        store.mail.claim(item_id, request_id, by=by)
    except UnmatchedBusy as exc:
        other = store.requests.row(str(exc))
        if other is not None and _applied(store, mail, str(exc)):
            store.mail.close(item_id, "attached", by=by, request_number=other["Number"])
        name = other["Number"] if other is not None else str(exc)
        raise AttachRefused(f"Это письмо уже привязывают к заявке «{name}».") from None
    settings = store.settings
    parsed = parse_mail(mail.subject, mail.text, mail.unique_text or None, received=mail.received,
                        tz=settings.timezone, calendar=settings.calendar)
    key = normalize_number(number)
    if key not in parsed.statuses and len(parsed.numbers) == 1:
        # A person says the mail's one number (a typo, an old number) meant this request: what it says counts.
        key = normalize_number(parsed.numbers[0])
    status = parsed.statuses.get(key, parsed.general_status) if parsed.numbers else parsed.general_status
    promised = parsed.promises.get(key, parsed.general_promise) if parsed.numbers else parsed.general_promise
    result = store.apply_mail(request_id, message=mail.message_key, status=status, comment=parsed.comment,
                              received=mail.received, message_id=mail.message_id, subject=mail.subject,
                              position=parsed.positions.get(key), promised=promised, sender=mail.sender_address,
                              graph_id=mail.graph_id or None, author=ROBOT_AUTHOR, force=True)
    if mail.conversation_id:
        store.mail.link_conversation(mail.conversation_id, request_id)
    request = result.request or store.requests.get_by_id(request_id, with_history=False)
    if request is None:
        raise RequestNotFound(number)
    try:
        closed = store.mail.close(item_id, state, by=by, request_number=request.number, now=utcnow())
    except UnmatchedGone:
        closed = store.mail.get_unmatched(item_id) or mail
    return Attached(closed, request)


def create_from(store: Store, item_id: str, number: object, position: object, description: object, *,
                by: str, confirm_similar: bool = False) -> Attached:
    """Register a request from an unmatched mail and apply the mail to it."""
    mail = store.mail.get_unmatched(item_id)
    if mail is None:
        raise UnmatchedGone(item_id)
    if mail.state != "open":
        raise AttachRefused(_closed_text(mail))
    created = store.add_request(number, position, description, author=by, source="mail",
                                confirm_similar=confirm_similar)
    return attach(store, item_id, created.number, by=by, state="created")


def dismiss(store: Store, item_id: str, *, by: str) -> UnmatchedMail:
    """Take an unmatched mail off the list, noting who and when (it stays, shown with dismissed=1)."""
    mail = store.mail.get_unmatched(item_id)
    if mail is None:
        raise UnmatchedGone(item_id)
    if mail.state == "dismissed":
        return mail
    if mail.state != "open":
        raise AttachRefused(_closed_text(mail))
    return store.mail.close(item_id, "dismissed", by=by)


def _closed_text(mail: UnmatchedMail) -> str:
    if mail.state == "dismissed":
        return f"Письмо скрыто ({mail.handled_by})."
    return f"Письмо уже привязано к заявке «{mail.request_number}» ({mail.handled_by})."
