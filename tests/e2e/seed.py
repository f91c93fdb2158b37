"""Sample data for the screenshots and the browser tests: requests, mail replies, unmatched mail."""
from __future__ import annotations

from datetime import datetime, timedelta

from functions.mail.sync import message_key
from functions.model import utcnow
from functions.settings import load_settings
from functions.storage import Store, UnmatchedMail


def store_for(env: dict[str, str]) -> Store:
    """Return a Store on the tables of a server started with this environment."""
    store = Store(load_settings(env))
    store.init()
    return store


def unmatched_mail(*, message_id: str, subject: str, text: str, received: datetime,
                   numbers: tuple[str, ...] = (), sender: str = "dispatch@contractor.example",
                   reason: str = "номер не найден среди заявок") -> UnmatchedMail:
    """Return an unmatched mail as the mail pass would keep it."""
    address = sender.rsplit("<", 1)[-1].rstrip(">")
    return UnmatchedMail(message_key=message_key(message_id, None), subject=subject, sender=sender,
                         received=received, numbers=numbers, message_id=message_id, reason=reason, text=text,
                         sender_address=address)


def seed(store: Store, now: datetime | None = None) -> None:
    """Fill the tables with a believable week of requests, mail replies, an archived request and unmatched mail."""
    now = now or utcnow()

    def ago(**kw: float) -> datetime:
        return now - timedelta(**kw)

    samples = [
        ("10190", "Гараж, ворота", "Не закрываются ворота бокса 2.", ago(days=9)),
        ("10231", "Котельная №3, узел учёта", ("Не передаются показания теплосчётчика. Проверить линию связи "
                                               "и питание вычислителя, при необходимости заменить модем."),
         ago(days=2, hours=3)),
        ("ТО-2026/77", "ЦТП-12, насос подкачки", "Повышенная вибрация насоса, просим осмотреть.", ago(hours=6)),
        ("10240", "Школа №8, ИТП", "Течь на обратном трубопроводе.", ago(hours=26)),
        ("10244", "Поликлиника, вентиляция", "Проверить работу приточной установки П1.", ago(hours=3)),
        ("10247", "ЖК «Северный», корпус 2", "Нет связи с контроллером.", ago(minutes=40)),
        ("10502", "Бассейн, водоподготовка", "Заменить датчик хлора.", ago(minutes=12)),
    ]
    for number, position, description, at in samples:
        store.add_request(number, position, description, author="Мария Козлова", now=at)

    def mail(number: str, key: str, status: str | None, comment: str, received: datetime, subject: str,
             position: str | None = None) -> None:
        request_id = store.requests.resolve(number)
        assert request_id is not None
        store.apply_mail(request_id, message=key, status=status, comment=comment, received=received,
                         author="Робот", message_id=f"<{key}@contractor.example>", subject=subject,
                         position=position)

    mail("10231", "s1", "принята в работу", "Заявку приняли, выезд завтра.", ago(days=2), "RE: Заявка 10231", "3")
    mail("10231", "s2", "выполнена", "Работы завершены, теплосчётчик передаёт показания.", ago(hours=20),
         "RE: Заявка 10231 — выполнено")
    mail("10240", "s3", "требует уточнения", "Просим уточнить номер помещения.", ago(hours=25), "RE: Заявка 10240",
         "2")
    mail("10190", "s4", "выполнена", "Ворота отремонтированы.", ago(days=8), "RE: Заявка 10190")
    store.update_status("10244", "принята в работу", "Звонили: приедут после обеда.", author="Мария Козлова",
                        now=ago(hours=2, minutes=30))
    store.set_archived("10190", True, author="Мария Козлова", now=ago(days=1))
    store.mail.keep_unmatched(unmatched_mail(
        message_id="<u1@contractor.example>", subject="Заявка 10299 — выполнена", received=ago(hours=1),
        numbers=("10299",), reason="номер 10299 не найден среди заявок",
        text="Добрый день!\n\nРаботы по заявке 10299 выполнены, акт подпишем в пятницу.\n\n"
             "С уважением,\nдиспетчер ООО «Теплосервис»"))
    store.mail.keep_unmatched(unmatched_mail(
        message_id="<u2@contractor.example>", subject="Вопрос по договору", received=ago(hours=30),
        sender="Офис подрядчика <office@contractor.example>", reason="в письме нет номера заявки",
        text="Просим прислать график работ на декабрь."))
