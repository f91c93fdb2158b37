"""Mail OMIS sends to the contractor (SPEC §8): queue it with the change, send it exactly once.

Queueing: the mail is composed when it is asked for — the request itself («Отправить
подрядчику»), a nudge («Напомнить подрядчику», the automatic one) — and written to the outbox in
the same transaction as that change, with a Message-ID fixed there and then.

Sending (the mail timer, `send-mail`): for each queued mail, oldest first —
1. a mail tried before (a pass cut off between sending and recording, a timeout) is first looked
   for among the mailbox's sent items by its Message-ID; found, it is recorded as sent and not
   sent again. Exchange files the sent copy a little later, so a mail tried less than
   RESEND_AFTER ago and not found yet is left for a later pass rather than sent again;
2. otherwise the attempt is claimed on the mail's row (ETag: of two passes, one sends);
3. sent by `reply` to the last contractor mail about the request (a new mail when there is
   none or it is gone), or by `sendMail`;
4. recorded with its history entry (`source: outbox`) and the queue row gone in one
   transaction; its conversation is tied to the request, so a reply without a number finds it.
A mail Graph refuses for good is marked failed (history «не отправлено: …»), never retried; a
temporary failure (429, 5xx, network) leaves it queued for the next pass.
"""
from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..deadlines import deadline_state, facts_of
from ..model import FINAL_STATUSES, HistoryEntry, Request, ValidationError, utcnow
from ..settings import Settings, SettingsError, parse_addresses
from ..storage import ConflictError, RequestNotFound, Store, layout
from ..storage import outbox as rows
from ..storage.requests import Change
from ..storage.tables import as_utc
from .compose import compose_nudge, compose_request, message_id_domain, new_message_id, reply_subject

logger = logging.getLogger(__name__)

RESEND_AFTER = timedelta(minutes=10)    # a mail tried this long ago and not in sent items was not sent
PER_PASS = 50
DEADLINE_WORDS = {"accept": "Ответ подрядчика", "update": "Новости от подрядчика", "resolve": "Выполнение",
                  "promise": "Обещано подрядчиком", "clarify": "Наше уточнение"}
PASSED_WORDS = {"accept": "прошло время, отведённое на ответ", "update": "давно не было новостей",
                "resolve": "прошло время, отведённое на выполнение", "promise": "прошло обещанное время"}


class SendingOff(Exception):
    """Sending mail is off or not set up; the message names the settings (SPEC §8)."""


def sending_ready(settings: Settings, *, addresses_given: bool = False) -> None:
    """Raise SendingOff naming what sending still needs (OMIS_MAIL_SEND first)."""
    if not settings.mail_send:
        raise SendingOff("Отправка писем выключена (OMIS_MAIL_SEND=off): включите OMIS_MAIL_SEND=on.")
    missing = settings.missing_send_settings(addresses_given=addresses_given)
    if missing:
        raise SendingOff("Для отправки писем не заданы: " + ", ".join(missing) + ".")


def recipients(value: object) -> tuple[str, ...]:
    """Read the `to` of a form or the API (a list of addresses, or one string with commas); ValidationError."""
    if value is None or value == "" or value == []:
        return ()
    if isinstance(value, str):
        raw = value
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        raw = ",".join(value)
    else:
        raise ValidationError({"to": "Адресаты: список адресов или строка с адресами через запятую."})
    try:
        found = parse_addresses(raw, "to")
    except SettingsError as exc:
        raise ValidationError({"to": str(exc).removeprefix("to: ")}) from None
    if len(found) > 20:
        raise ValidationError({"to": "Не больше 20 адресатов."})
    return found


def deadline_lines(request: Request, settings: Settings) -> list[str]:
    """Say a request's level and running deadlines in words for the request mail (no status words)."""
    level = settings.level(request.level)
    state = deadline_state(facts_of(request), level, settings.calendar)
    tz = settings.timezone
    return [f"{DEADLINE_WORDS[d.kind]}: {d.at.astimezone(tz):%d.%m.%Y %H:%M}" for d in state.running]


def _domain(settings: Settings) -> str:
    return message_id_domain(settings.outlook_email)


def request_mail(request: Request, settings: Settings, to: Sequence[str], *, requested_by: str) -> rows.OutgoingMail:
    """Compose the mail that hands a request to the contractor."""
    level = settings.level(request.level)
    composed = compose_request(number=request.number, position=request.position, description=request.description,
                               level_title=level.title, deadlines=deadline_lines(request, settings),
                               author=request.author)
    return rows.OutgoingMail(kind="request", to=tuple(to), subject=composed.subject, text=composed.text,
                             html=composed.html, message_id=new_message_id(_domain(settings)),
                             requested_by=requested_by)


def queue_for_new_request(store: Store, to: object, *, requested_by: str
                          ) -> Callable[[Request], list[tuple]]:
    """Return the outbox hook of a request created with «Отправить подрядчику» (checks the settings first)."""
    settings = store.settings
    addresses = recipients(to)
    sending_ready(settings, addresses_given=bool(addresses))
    final_to = addresses or settings.contractor_emails

    def hook(request: Request) -> list[tuple]:
        mail = request_mail(request, settings, final_to, requested_by=requested_by)
        return rows.queue_ops(request.id, 1, mail, request.updated_at)
    return hook


def new_request_hook(store: Store, send: bool, to: object, author: str
                     ) -> Callable[[Request], list[tuple]] | None:
    """Return the outbox hook of a new request (None when it is not to be sent); ValidationError (send, to)."""
    if not send:
        if to not in (None, "", []):
            raise ValidationError({"to": "Адресаты нужны только вместе с «Отправить подрядчику» (send: true)."})
        return None
    try:
        return queue_for_new_request(store, to, requested_by=author)
    except SendingOff as exc:
        raise ValidationError({"send": str(exc)}) from None


def _nudge_mail(row: dict[str, Any], settings: Settings, *, requested_by: str, passed: str | None,
                nudge_for: str | None) -> rows.OutgoingMail:
    last_from = (row.get("LastMailFrom") or "").strip()
    mailbox = (settings.outlook_email or "").casefold()
    to = settings.contractor_emails or ((last_from,) if last_from and last_from.casefold() != mailbox else ())
    if not to:
        raise SendingOff("Некому писать: задайте OMIS_CONTRACTOR_EMAIL (от подрядчика по этой заявке писем не было).")
    reply_to = row.get("LastMailId")
    in_reply_to = row.get("LastMailMessageId") if reply_to else row.get("LastSentId")
    composed = compose_nudge(number=row["Number"], position=row.get("Position"), passed=passed,
                             subject=row.get("LastMailSubject") if reply_to else None)
    references = (in_reply_to,) if in_reply_to and in_reply_to.startswith("<") else ()
    return rows.OutgoingMail(kind="nudge", to=tuple(to), subject=composed.subject, text=composed.text,
                             html=composed.html, message_id=new_message_id(_domain(settings)), reply_to=reply_to,
                             in_reply_to=references[0] if references else None, references=references,
                             requested_by=requested_by, nudge_for=nudge_for)


def queue_nudge(store: Store, number: str, *, author: str, source: str, now: datetime | None = None,
                nudge_for: str | None = None, passed_kind: str | None = None) -> Request | None:
    """Queue «Напомнить подрядчику» for a request; return it (None: this deadline was nudged already).

    SendingOff when sending is off or has nobody to write to; ConflictError for a final or
    archived request; RequestNotFound. `nudge_for` ("kind@deadline") makes an automatic nudge
    once per passed deadline.
    """
    sending_ready(store.settings, addresses_given=True)
    request_id = store.requests.resolve(number)
    if request_id is None:
        raise RequestNotFound(number)

    def decide(row: dict[str, Any], _: int) -> Change | None:
        if row.get("Archived"):
            raise ConflictError(f"Заявка «{row['Number']}» в архиве: напоминать подрядчику не о чем.")
        if row["Status"] in FINAL_STATUSES:
            raise ConflictError(f"Заявка «{row['Number']}» уже закрыта («{row['Status']}»): напоминать не о чем.")
        nudged = set(_nudged(row))
        if nudge_for is not None and nudge_for in nudged:
            return None
        at = max(now or utcnow(), as_utc(row["UpdatedAt"]))
        seq = int(row.get("OutboxSeq") or 0) + 1
        mail = _nudge_mail(row, store.settings, requested_by=author, nudge_for=nudge_for,
                           passed=PASSED_WORDS.get(passed_kind or ""))
        fields: dict[str, Any] = {"OutboxSeq": seq, "UpdatedAt": at}
        if nudge_for is not None:
            fields["Nudged"] = _nudged_json([*nudged, nudge_for])
        comment = ("Напоминание подрядчику поставлено в очередь"
                   + (" (срок прошёл, напоминание автоматическое)." if nudge_for else "."))
        entry = HistoryEntry(at=at, status=row["Status"], comment=comment, author=author, source=source,
                             subject=mail.subject, to=mail.to)
        return Change(fields, entry, ops=rows.queue_ops(request_id, seq, mail, at))
    done = store.requests.change(request_id, decide, busy="хранилище занято, повторите")
    return layout.request_from_row(done[0]) if done else None


def _nudged(row: dict[str, Any]) -> list[str]:
    import json

    return list(json.loads(row.get("Nudged") or "[]"))


def _nudged_json(keys: Iterable[str]) -> str:
    import json

    return json.dumps(sorted(set(keys))[-50:])


# ----- sending --------------------------------------------------------------------------------

@dataclass
class OutboxReport:
    """What one pass of the outbox did."""

    sent: list[str] = field(default_factory=list)          # «number: subject → to»
    found_sent: list[str] = field(default_factory=list)    # sent by an earlier, cut-off pass: recorded now
    retry_later: list[str] = field(default_factory=list)   # temporary failures, or another pass is on it
    failed: list[str] = field(default_factory=list)        # refused for good (with why)
    would_send: list[str] = field(default_factory=list)    # a dry run
    notes: list[str] = field(default_factory=list)
    graph_calls: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """Describe the pass in Russian for the command line."""
        if self.would_send:
            lines = [f"Пробный запуск: отправилось бы писем {len(self.would_send)}"]
            lines += [f"  {item}" for item in self.would_send]
            return "\n".join(lines + self.notes)
        lines = [(f"Письма подрядчику: отправлено {len(self.sent) + len(self.found_sent)}, "
                 f"отложено до следующего прохода {len(self.retry_later)}, не отправлено {len(self.failed)}")]
        lines += [f"  отправлено: {item}" for item in self.sent]
        lines += [f"  уже было отправлено (найдено в «Отправленных»): {item}" for item in self.found_sent]
        lines += [f"  позже: {item}" for item in self.retry_later]
        lines += [f"  не отправлено: {item}" for item in self.failed]
        return "\n".join(lines + [f"— {note}" for note in self.notes])


def _label(entity: dict[str, Any], store: Store) -> str:
    row = store.requests.row(entity["Id"])
    number = row["Number"] if row else entity["Id"]
    return f"{number}: «{entity.get('Subject', '')}» → {', '.join(rows.outgoing(entity).to)}"


def _claimed_recently(entity: dict[str, Any], now: datetime) -> bool:
    claimed = as_utc(entity.get("ClaimedAt"))
    return claimed is not None and now - claimed < RESEND_AFTER


def send_outbox(store: Store, *, now: datetime | None = None, dry_run: bool = False, sender: Any = None,
                sleep: Callable[[float], None] = time.sleep, lookup_attempts: int = 3,
                lookup_interval: float = 5.0) -> OutboxReport:
    """Send what the outbox holds (see the module docstring); return what happened.

    `sender` replaces the Graph client (tests pass one built on the fake). SendingOff when
    there is mail to send but sending is not set up (nothing is touched).
    """
    from .graph import GraphThrottled, parse_not_before
    from .graph_errors import GraphError
    from .graph_send import GraphSender, ReplyTargetGone, SendRejected
    from .sync import NOT_BEFORE_STATE

    report = OutboxReport()
    now = now or utcnow()
    queue = rows.queued(store.requests, PER_PASS)
    if not queue:
        return report
    settings = store.settings
    if dry_run:
        found = (rows.mail_row(store.requests, q["Id"], int(q["Seq"])) for q in queue)
        report.would_send = [_label(entity, store) for entity in found if entity is not None]
        return report
    sending_ready(settings, addresses_given=True)
    own = sender is None
    if own:
        sender = GraphSender(settings, sleep=sleep, not_before=parse_not_before(store.mail.get_state(NOT_BEFORE_STATE)))
    me = f"{socket.gethostname()}:{id(report)}"
    try:
        for position, queued_row in enumerate(queue):
            entity = rows.mail_row(store.requests, queued_row["Id"], int(queued_row["Seq"]))
            if entity is None or entity.get("State") != rows.QUEUED:
                rows.drop_queue_row(store.requests, queued_row)
                continue
            mail = rows.outgoing(entity)
            label = _label(entity, store)
            try:
                if int(entity.get("Attempts") or 0) > 0:
                    found = sender.find_sent(mail.message_id, attempts=lookup_attempts, interval=lookup_interval)
                    if found is not None:
                        _record_sent(store, entity, now, found)
                        report.found_sent.append(label)
                        continue
                    if _claimed_recently(entity, now):
                        report.retry_later.append(f"{label} (отправка проверяется: письмо могло уйти, ждём его "
                                                  "в «Отправленных»)")
                        continue
                claimed = rows.claim(store.requests, entity, by=me, at=now)
                if claimed is None:
                    report.retry_later.append(f"{label} (его отправляет другой проход)")
                    continue
                _send(sender, mail, ReplyTargetGone)
            except SendRejected as exc:
                rows.finish(store.requests, entity, state=rows.FAILED, at=now, error=exc.reason)
                report.failed.append(f"{label}: {exc.reason}")
                continue
            except GraphThrottled as exc:
                store.mail.set_state(NOT_BEFORE_STATE, exc.retry_at.isoformat())
                report.retry_later.append(label)
                report.notes.append(f"{exc}; ещё писем в очереди: {len(queue) - position - 1}")
                break
            except GraphError as exc:
                report.retry_later.append(f"{label} ({exc})")
                continue
            found = sender.find_sent(mail.message_id, attempts=lookup_attempts, interval=lookup_interval)
            _record_sent(store, entity, now, found)
            report.sent.append(label)
    finally:
        report.graph_calls = getattr(sender, "calls", 0)
        if own:
            sender.close()
    log = logger.info if report.ok else logger.error
    log("Outbox pass: sent=%d found_sent=%d retry_later=%d failed=%d", len(report.sent), len(report.found_sent),
        len(report.retry_later), len(report.failed))
    return report


def _send(sender: Any, mail: rows.OutgoingMail, reply_gone: type[Exception]) -> None:
    if mail.reply_to:
        try:
            sender.send_reply(mail.reply_to, to=mail.to, subject=reply_subject(mail.subject), text=mail.text,
                              html=mail.html, message_id=mail.message_id, in_reply_to=mail.in_reply_to,
                              references=mail.references)
            return
        except reply_gone:
            logger.info("The mail to answer is gone: sending %s as a new mail", mail.message_id)
    sender.send_new(to=mail.to, subject=mail.subject, text=mail.text, html=mail.html, message_id=mail.message_id,
                    in_reply_to=mail.in_reply_to, references=mail.references)


def _record_sent(store: Store, entity: dict[str, Any], now: datetime, found: Any) -> None:
    conversation = getattr(found, "conversation_id", None)
    rows.finish(store.requests, entity, state=rows.SENT, at=now, conversation_id=conversation,
                graph_id=getattr(found, "graph_id", None))
    if conversation:
        store.mail.link_conversation(conversation, entity["Id"])


def scheduled_send(now: datetime | None = None) -> OutboxReport | None:
    """Run the timer's outbox pass: log what happened; nothing to send or sending off is no error."""
    from ..storage import get_store

    try:
        return send_outbox(get_store(), now=now)
    except SendingOff as exc:
        logger.warning("Outbox not sent: %s", exc)
        return None
