"""What the digest's buttons do when pressed: the kinds a digest carries and the action of each.

A button kind (buttons.py) is offered by `digest_kinds` and acted on by `ACTIONS[code]`; an
action gets the press (the digest as stored, the request a per-request button names, who pressed,
when) and returns the text for the callback answer and, optionally, a line for the message.

«Напомнить подрядчику» (SPEC §9) is a per-request kind, offered with OMIS_MAIL_SEND=on on a
digest of at most PER_REQUEST_MAX requests; a press queues one nudge for its request (once per
digest and request, however often it is pressed), in the history with the user's name.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..settings import Settings
from ..storage import Store
from ..storage.bot import BotStore, Digest, snooze_request
from .buttons import ButtonKind
from .replies import digest_snooze_line, snooze_note, when
from .snoozing import TOMORROW, snooze_until

PER_REQUEST_MAX = 8

SNOOZE_HOUR = ButtonKind("s1", "Отложить все на 1 ч")
SNOOZE_TOMORROW = ButtonKind("sd", "Отложить все до завтра")


@dataclass(frozen=True)
class Press:
    """A pressed digest button, as its action gets it."""

    store: Store
    digest: Digest
    index: int | None        # the request a per-request button names (an index into digest.request_ids)
    user: str                # who pressed, as history records it
    update: str              # the update's key: a retried update finds its own claims
    at: datetime             # when the press is acted on (a retried update keeps the first time)

    @property
    def request_id(self) -> str | None:
        return self.digest.request_ids[self.index] if self.index is not None else None


@dataclass(frozen=True)
class PressResult:
    """What to tell the one who pressed, and the line (key, text) to show under the digest."""

    answer: str
    note: tuple[str, str] | None = None


Action = Callable[[Press], PressResult]


def snooze_digest(press: Press, choice: str) -> PressResult:
    """Snooze every request of the digest; a press as late as the snooze already there changes nothing."""
    settings = press.store.settings
    tz = settings.timezone
    until = snooze_until(choice, press.at, settings.calendar)
    claim = BotStore(press.store.tables.requests).claim_snooze(press.digest.id, until=until, by=press.user,
                                                              update=press.update, now=press.at)
    if claim.repeat:
        return PressResult(f"Уже отложено до {when(claim.until, tz, press.at)} ({claim.by}).")
    outcomes = Counter(snooze_request(press.store.requests, request_id, claim.until, author=press.user,
                                      note=snooze_note(claim.until, tz), now=press.at, extend_only=True)
                       for request_id in press.digest.request_ids)
    count = outcomes["snoozed"] + outcomes["already"]
    line = digest_snooze_line(claim.until, claim.by, count, tz, press.at)
    return PressResult(f"Напоминания отложены до {when(claim.until, tz, press.at)} (заявок: {count}).",
                       ("snooze", line))


NUDGE = ButtonKind("n", "Напомнить подрядчику", per_request=True)


def nudge_contractor(press: Press) -> PressResult:
    """Queue «Напомнить подрядчику» for the press's request, once per digest and request."""
    from ..mail.outbox import SendingOff, queue_nudge
    from ..storage import ConflictError, RequestNotFound

    index = press.index if press.index is not None else 0
    number = press.digest.numbers[index] if index < len(press.digest.numbers) else ""
    row = press.store.requests.row(press.request_id) if press.request_id else None
    if row is None:
        return PressResult(f"Заявки {number} больше нет.")
    try:
        queued = queue_nudge(press.store, row["Number"], author=press.user, source="telegram", now=press.at,
                             nudge_for=f"digest@{press.digest.id}")
    except (SendingOff, ConflictError, RequestNotFound) as exc:
        return PressResult(str(exc)[:190])
    if queued is None:
        return PressResult(f"Напоминание по заявке {row['Number']} уже поставлено.")
    return PressResult(f"Напоминание подрядчику по заявке {row['Number']} поставлено в очередь.",
                       (f"nudge:{index}", f"✉ {row['Number']}: напоминание подрядчику — {press.user}"))


ACTIONS: dict[str, Action] = {
    SNOOZE_HOUR.code: lambda press: snooze_digest(press, "1h"),
    SNOOZE_TOMORROW.code: lambda press: snooze_digest(press, TOMORROW),
    NUDGE.code: nudge_contractor,
}
# Per-request kinds, each with when it is offered (the settings, the number of requests in the digest).
PER_REQUEST: list[tuple[ButtonKind, Callable[[Settings, int], bool]]] = [
    (NUDGE, lambda settings, count: settings.mail_send and count <= PER_REQUEST_MAX),
]


def digest_kinds(settings: Settings, count: int) -> list[ButtonKind]:
    """Return the buttons a team digest of `count` requests carries."""
    return [SNOOZE_HOUR, SNOOZE_TOMORROW, *(kind for kind, offered in PER_REQUEST if offered(settings, count))]
