"""The built-in sample mailbox: contractor replies for local development without Outlook."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from ..model import utcnow
from ..settings import Settings, get_settings
from .graph import GraphMailClient
from .message import GraphMessage

logger = logging.getLogger(__name__)

CONTRACTOR = ("Иван Петров", "petrov@stroyservice.example")
_BASE = datetime(2026, 11, 20, 7, 0, tzinfo=timezone.utc)


def _sample(n: int, minutes: int, subject: str, body: str, *, conversation: str,
            unique_body: str | None = None) -> GraphMessage:
    return GraphMessage(
        graph_id=f"AAMkSAMPLE-{n:03d}=",
        internet_message_id=f"<omis-sample-{n:03d}@stroyservice.example>",
        conversation_id=f"AAQkSAMPLE-CONV-{conversation}=",
        subject=subject,
        body=body,
        unique_body=unique_body,
        sender_name=CONTRACTOR[0],
        sender_address=CONTRACTOR[1],
        received=_BASE + timedelta(minutes=minutes),
    )


# Requests the samples name that a demo should create first (99901 is deliberately unknown).
SAMPLE_REQUEST_NUMBERS: tuple[str, ...] = ("10501", "10502", "10503", "10504", "10505", "10506", "ТО-2026/77")
UNKNOWN_SAMPLE_NUMBER = "99901"

FAKE_CONTRACTOR_MESSAGES: tuple[GraphMessage, ...] = (
    _sample(1, 0, "RE: Заявка №10501",
            "Добрый день!\nЗаявка №10501, позиция 7: принята в работу, бригада выедет завтра с 9:00.\n\n"
            "С уважением,\nИван Петров\nООО «СтройСервис»", conversation="10501"),
    _sample(2, 25, "Вопрос по заявке 10502",
            "По заявке 10502 просим уточнить адрес объекта и контактное лицо на месте.\n-- \n"
            "Отдел выполнения работ\nООО «СтройСервис»", conversation="10502"),
    _sample(3, 50, "RE: Заявка № 10503",
            "Работы по заявке № 10503 завершены, неисправность устранена. Акт направим отдельно.\n\n"
            "-----Original Message-----\nFrom: monitoring@omis.example\n"
            "Sent: Thursday, November 19, 2026 9:00 AM\nSubject: Заявка № 10503\n\n"
            "Просим принять в работу заявку № 10503.",
            conversation="10503", unique_body="Работы по заявке № 10503 завершены, неисправность устранена. "
                                              "Акт направим отдельно."),
    _sample(4, 75, "RE: Заявка ТО-2026/77",
            "Заявка № ТО-2026/77 отклонена: работы не входят в договор.", conversation="77"),
    _sample(5, 100, "RE: Заявка №10504",
            "Заявка №10504 ещё не выполнена, ждём поставку запчастей до пятницы.", conversation="10504"),
    _sample(6, 125, "Выполненные заявки",
            "Добрый день.\nЗаявки № 10505 и 10506 выполнены, оборудование проверено.", conversation="enum"),
    _sample(7, 150, "Заявка №99901",
            "Заявка №99901 принята в работу.", conversation="99901"),
    _sample(8, 175, "Вопрос по договору",
            "Добрый день, когда ожидать оплату по акту за октябрь?", conversation="contract"),
    _sample(9, 200, "RE: Выезд бригады",
            "Работы завершены, оборудование в работе.\n\n20.11.2026, 10:02, Отдел мониторинга пишет:\n"
            "> Когда ждать результат?", conversation="10501",
            unique_body="Работы завершены, оборудование в работе."),
)


def dated_samples(now: datetime) -> list[GraphMessage]:
    """Return the samples re-dated as just received: in order, a microsecond apart, the last at now."""
    count = len(FAKE_CONTRACTOR_MESSAGES)
    return [replace(message, received=now - timedelta(microseconds=count - i))
            for i, message in enumerate(FAKE_CONTRACTOR_MESSAGES, start=1)]


def fetch_contractor_messages(use_fake: bool = True, settings: Settings | None = None,
                              now: datetime | None = None) -> list[GraphMessage]:
    """Return the contractor's mail: the built-in samples, or one read of the Outlook folder.

    The samples come re-dated to `now`, so that they count as news for requests created a moment
    ago; their fixed internetMessageIds keep each applied once however often they are read.
    The Graph read here does not remember where it stopped: process_mailbox() does.
    """
    now = now or utcnow()
    if use_fake:
        return dated_samples(now)
    client = GraphMailClient(settings or get_settings())
    try:
        return client.read_messages(None, now=now).messages
    finally:
        client.close()
