"""The team digest's buttons: sent with the digest, pressed through handle_update, against Azurite and the fake."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from functions.alerts.bot import handle_update
from functions.alerts.buttons import callback_data
from functions.alerts.remind import notify
from functions.storage.bot import BOT_PARTITION
from tests.fakes.fixtures import fake_graph  # noqa: F401
from tests.fakes.telegram_server import FakeTelegram, SentMessage, press_payload, update
from tests.support import fresh_store

MSK = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 11, 26, 7, 0, tzinfo=timezone.utc)    # Thursday 10:00 in Moscow
ANNA = {"id": 42, "is_bot": False, "first_name": "Анна", "last_name": "Смирнова"}
OLEG = {"id": 43, "is_bot": False, "first_name": "Олег", "username": "oleg"}
_ids = itertools.count(20_000)


def buttons(message: SentMessage) -> dict[str, str]:
    """Return a message's buttons: label → callback data."""
    assert message.reply_markup is not None, "the message has no buttons"
    return {b["text"]: b["callback_data"] for row in message.reply_markup["inline_keyboard"] for b in row}


def press(message: SentMessage, label: str, now: datetime, user: dict | None = None) -> str:
    """Press a button of a message; return the outcome."""
    data = buttons(message)[label]
    body = update("callback_query", press_payload(message, data, user=user or ANNA), next(_ids))
    return handle_update(body, store=fresh_store(), now=now)


def digest_of(bot: FakeTelegram, *numbers: str, at: datetime) -> SentMessage:
    """Register breached requests and run a reminder pass; return the digest message with the buttons."""
    store = fresh_store()
    for number in numbers:
        store.add_request(number, now=at - timedelta(hours=2))
    report = notify(store=store, now=at)
    assert report.sent
    return bot.messages[-1]


def test_the_digest_carries_the_two_snooze_buttons(bot: FakeTelegram) -> None:
    message = digest_of(bot, "К-1", "К-2", at=T0)
    assert list(buttons(message)) == ["Отложить все на 1 ч", "Отложить все до завтра"]
    assert all(len(data.encode()) <= 64 for data in buttons(message).values())


def test_snooze_for_an_hour_snoozes_them_all_answers_and_edits_the_message(bot: FakeTelegram) -> None:
    message = digest_of(bot, "К-1", "К-2", at=T0)
    at = T0 + timedelta(minutes=1)
    assert press(message, "Отложить все на 1 ч", at) == "done"

    [answered] = bot.answers
    assert answered.text == "Напоминания отложены до чт 26.11 11:01 (заявок: 2)."
    [edit] = bot.edits
    assert edit.message_id == message.message_id and edit.text.startswith(message.text)
    assert edit.text.endswith("⏸ Анна Смирнова отложил(а) напоминания до чт 26.11 11:01 (заявок: 2).")
    assert edit.reply_markup == message.reply_markup          # the buttons stay
    store = fresh_store()
    for number in ("К-1", "К-2"):
        request = store.get_request(number)
        assert request.snoozed_until == at + timedelta(hours=1)
        assert (request.history[-1].source, request.history[-1].author) == ("telegram", "Анна Смирнова")
    assert notify(store=store, now=T0 + timedelta(minutes=50)).skipped_snoozed == 2


def test_a_second_press_is_harmless(bot: FakeTelegram) -> None:
    message = digest_of(bot, "К-3", at=T0)
    press(message, "Отложить все на 1 ч", T0 + timedelta(minutes=1))
    history = len(fresh_store().get_request("К-3").history)
    assert press(bot.messages[-1], "Отложить все на 1 ч", T0 + timedelta(minutes=2), user=OLEG) == "done"
    assert bot.answers[-1].text == "Уже отложено до чт 26.11 11:01 (Анна Смирнова)."
    assert len(fresh_store().get_request("К-3").history) == history
    assert len(bot.edits) == 1


def test_until_tomorrow_after_an_hour_extends_the_snooze_and_says_who(bot: FakeTelegram) -> None:
    message = digest_of(bot, "К-4", at=T0)
    press(message, "Отложить все на 1 ч", T0 + timedelta(minutes=1))
    assert press(bot.messages[-1], "Отложить все до завтра", T0 + timedelta(minutes=3), user=OLEG) == "done"
    assert fresh_store().get_request("К-4").snoozed_until == datetime(2026, 11, 27, 9, 0, tzinfo=MSK)
    text = bot.messages[-1].text
    assert text.endswith("⏸ Олег отложил(а) напоминания до пт 27.11 09:00 (заявок: 1).")
    assert "Анна Смирнова" not in text                        # the latest snooze replaces the note
    press(bot.messages[-1], "Отложить все на 1 ч", T0 + timedelta(minutes=4))
    assert bot.answers[-1].text == "Уже отложено до пт 27.11 09:00 (Олег)."


def test_a_button_never_shortens_a_longer_snooze_of_one_request(bot: FakeTelegram) -> None:
    message = digest_of(bot, "К-5", "К-6", at=T0)
    store = fresh_store()
    handle_update(update("message", {"message_id": 9, "text": "/snooze К-5 1d", "from": ANNA,
                                     "chat": {"id": int(bot.chat_id), "type": "supergroup"}}, next(_ids)),
                  store=store, now=T0)
    press(message, "Отложить все на 1 ч", T0 + timedelta(minutes=1))
    assert store.get_request("К-5").snoozed_until == T0 + timedelta(days=1)
    assert store.get_request("К-6").snoozed_until == T0 + timedelta(hours=1, minutes=1)


def test_a_button_of_an_old_digest_still_works(bot: FakeTelegram) -> None:
    old = digest_of(bot, "С-1", at=T0)
    new = digest_of(bot, "С-2", at=T0 + timedelta(minutes=61))   # С-1 again (after the repeat interval) and С-2
    assert "<b>С-1</b>" in new.text and "<b>С-2</b>" in new.text
    assert press(old, "Отложить все на 1 ч", T0 + timedelta(days=3)) == "done"
    store = fresh_store()
    assert store.get_request("С-1").snoozed_until == T0 + timedelta(days=3, hours=1)
    assert store.get_request("С-2").snoozed_until is None           # not in the old digest


def test_closed_requests_of_a_digest_are_left_alone(bot: FakeTelegram) -> None:
    message = digest_of(bot, "А-1", "А-2", at=T0)
    store = fresh_store()
    store.set_archived("А-1", True, now=T0 + timedelta(minutes=1))
    press(message, "Отложить все на 1 ч", T0 + timedelta(minutes=2))
    assert bot.answers[-1].text.endswith("(заявок: 1).")
    assert store.get_request("А-1").snoozed_until is None


def test_only_the_last_part_of_a_long_digest_has_the_buttons(bot: FakeTelegram) -> None:
    store = fresh_store()
    for i in range(40):
        store.add_request(f"Д-{i:02d}", position="Позиция " + "п" * 150, now=T0 - timedelta(hours=2))
    notify(store=store, now=T0)
    parts = bot.messages
    assert len(parts) >= 2
    assert [m.reply_markup is not None for m in parts] == [False] * (len(parts) - 1) + [True]
    press(parts[-1], "Отложить все на 1 ч", T0 + timedelta(minutes=1))
    assert bot.answers[-1].text.endswith("(заявок: 40).")


def test_stale_and_foreign_buttons(bot: FakeTelegram) -> None:
    message = digest_of(bot, "Б-1", at=T0)
    for data in ("garbage", "zz:" + "0" * 23, callback_data("s1", "00000000000000000abcdef")):
        body = update("callback_query", press_payload(message, data), next(_ids))
        assert handle_update(body, store=fresh_store(), now=T0) == "done"
    assert [a.text for a in bot.answers] == [
        "Эта кнопка больше не работает.", "Эта кнопка больше не работает.",
        "Сводка устарела: кнопки работают 30 дней. Просроченные заявки сейчас — /delayed."]
    foreign = SentMessage(message.message_id, "-100999", message.text, "HTML", None, True, ())
    body = update("callback_query", press_payload(foreign, buttons(message)["Отложить все на 1 ч"]), next(_ids))
    assert handle_update(body, store=fresh_store(), now=T0) == "foreign"
    assert len(bot.answers) == 3 and fresh_store().get_request("Б-1").snoozed_until is None


def test_a_digest_through_a_transport_has_no_buttons_and_keeps_nothing(bot: FakeTelegram) -> None:
    store = fresh_store()
    store.add_request("Т-1", now=T0 - timedelta(hours=2))
    parts: list[str] = []
    assert notify(store=store, now=T0, transport=lambda part: parts.append(part) or True).reminded == 1
    assert parts and bot.messages == []
    assert list(store.tables.requests.query("PartitionKey eq @pk", {"pk": BOT_PARTITION})) == []


def test_a_per_request_button_kind_plugs_in_with_its_action(bot: FakeTelegram, monkeypatch) -> None:
    from functions.alerts import presses
    from functions.alerts.buttons import ButtonKind

    kind = ButtonKind("t", "Проверить", per_request=True)
    pressed: list[tuple[str | None, str]] = []

    def action(press: presses.Press) -> presses.PressResult:
        pressed.append((press.request_id, press.user))
        number = press.digest.numbers[press.index]
        return presses.PressResult(f"Проверено: {number}", (f"t:{press.index}", f"✔ {number} — {press.user}"))
    monkeypatch.setattr(presses, "PER_REQUEST", [(kind, lambda settings, count: count <= presses.PER_REQUEST_MAX)])
    monkeypatch.setitem(presses.ACTIONS, kind.code, action)

    message = digest_of(bot, "П-1", "П-2", at=T0)
    assert list(buttons(message)) == ["Отложить все на 1 ч", "Отложить все до завтра", "Проверить: П-1",
                                      "Проверить: П-2"]
    press(message, "Проверить: П-2", T0 + timedelta(minutes=1))
    press(bot.messages[-1], "Отложить все на 1 ч", T0 + timedelta(minutes=2))
    assert pressed == [(fresh_store().requests.resolve("П-2"), "Анна Смирнова")]
    assert next(a.text for a in bot.answers) == "Проверено: П-2"
    assert bot.messages[-1].text.endswith("\n\n✔ П-2 — Анна Смирнова\n⏸ Анна Смирнова отложил(а) напоминания до "
                                          "чт 26.11 11:02 (заявок: 2).")
    many = digest_of(bot, *(f"М-{i}" for i in range(9)), at=T0 + timedelta(hours=3))
    assert not any(label.startswith("Проверить") for label in buttons(many))   # more than 8 requests


def test_a_digest_is_kept_for_thirty_days(bot: FakeTelegram) -> None:
    old = digest_of(bot, "В-1", at=T0)
    digest_of(bot, "В-2", at=T0 + timedelta(days=31))           # keeping a new digest drops the expired ones
    press(old, "Отложить все на 1 ч", T0 + timedelta(days=31, minutes=1))
    assert bot.answers[-1].text.startswith("Сводка устарела: кнопки работают 30 дней.")
    assert fresh_store().get_request("В-1").snoozed_until is None


def test_nudge_buttons_queue_one_nudge_per_request_in_the_name_of_who_pressed(configure, telegram,
                                                                             fake_graph) -> None:  # noqa: F811
    from functions.mail.outbox import send_outbox

    configure(**telegram.settings_env(), **fake_graph.env(OMIS_MAIL_SEND="on",
                                                          OMIS_CONTRACTOR_EMAIL="ivan@contractor.example"))
    message = digest_of(telegram, "Н-1", "Н-2", at=T0)
    assert list(buttons(message))[2:] == ["Напомнить подрядчику: Н-1", "Напомнить подрядчику: Н-2"]
    assert press(message, "Напомнить подрядчику: Н-2", T0 + timedelta(minutes=1)) == "done"
    press(telegram.messages[-1], "Напомнить подрядчику: Н-2", T0 + timedelta(minutes=2), user=OLEG)   # again
    request = fresh_store().get_request("Н-2")
    queued = [h for h in request.history if h.source == "telegram"]
    assert len(queued) == 1 and queued[0].author == "Анна Смирнова" and "Напоминание" in queued[0].comment
    assert [m.state for m in request.outbox] == ["queued"]
    assert "напоминание подрядчику — Анна Смирнова" in telegram.messages[-1].text
    send_outbox(fresh_store(), sleep=lambda s: None, lookup_interval=0)
    (sent,) = fake_graph.sent
    assert "Н-2" in sent.subject and sent.to == ["ivan@contractor.example"]
    assert fresh_store().get_request("Н-1").outbox == ()


def test_without_sending_the_digest_has_no_nudge_buttons(bot: FakeTelegram) -> None:
    message = digest_of(bot, "Б-1", at=T0)
    assert not any(label.startswith("Напомнить") for label in buttons(message))
