"""GraphSender with the real msal and requests against the fake Graph: sendMail, reply, Sent Items.

What "exactly once" needs from the client: our Message-ID on every mail sent, a lookup by it
that allows for late filing, refusals for good told apart from temporary failures, and no
resend in place when the mail may already have gone.
"""
from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
import requests

from functions.mail.compose import compose_nudge, compose_request, message_id_domain, new_message_id, reply_subject
from functions.mail.graph_http import GraphError, GraphThrottled
from functions.mail.graph_send import GraphSender, ReplyTargetGone, SendRejected
from tests.fakes.fixtures import fake_graph, graph_settings, recorded_sleeps  # noqa: F401
from tests.fakes.graph_server import FakeGraph

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
CONTRACTOR = "ivan@contractor.example"


@pytest.fixture
def sender_for(graph_settings, recorded_sleeps):  # noqa: F811
    """Build a sender on the fake; keyword arguments go to GraphSender."""
    senders: list[GraphSender] = []

    def make(**kwargs) -> GraphSender:
        sender = GraphSender(graph_settings(), sleep=recorded_sleeps[1], clock=lambda: NOW, **kwargs)
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        sender.close()


def request_mail(fake: FakeGraph) -> tuple[str, dict[str, str]]:
    mail = compose_request(number="ТО-2026/77", position="Подстанция 5", description="Не работает счётчик",
                           level_title="Обычная", deadlines=["Ответ — до 26.11.2026 18:00"], author="Инженер")
    return new_message_id(message_id_domain(fake.mailbox)), {"subject": mail.subject, "text": mail.text,
                                                             "html": mail.html}


def posts(fake: FakeGraph) -> list:
    return [c for c in fake.graph_calls() if c.method == "POST"]


def test_new_mail_carries_our_message_id_and_is_found_in_sent_items_by_it(fake_graph, sender_for):  # noqa: F811
    message_id, mail = request_mail(fake_graph)
    sender = sender_for()

    sender.send_new(to=[CONTRACTOR], message_id=message_id, **mail)
    found = sender.find_sent(message_id)

    (record,) = fake_graph.sent
    assert (record.kind, record.format, record.to) == ("sendMail", "mime", [CONTRACTOR])
    assert record.internet_message_id == message_id and record.subject == "Заявка №ТО-2026/77 — Подстанция 5"
    assert "Не работает счётчик" in record.text and "Подстанция 5" in record.html
    assert record.sender == fake_graph.mailbox
    assert found is not None and found.internet_message_id == message_id
    assert found.graph_id == record.graph_id and found.conversation_id == record.conversation_id
    (post,) = posts(fake_graph)
    assert post.path.endswith("/sendMail") and post.headers["content-type"] == "text/plain"
    lookup = fake_graph.graph_calls("/mailFolders/sentitems/messages")[-1]
    assert lookup.query["$filter"] == f"internetMessageId eq '{message_id}'"
    assert set(lookup.query["$select"].split(",")) == {"id", "conversationId", "internetMessageId", "sentDateTime"}


def test_reply_stays_in_the_conversation_with_our_message_id(fake_graph, sender_for):  # noqa: F811
    original = fake_graph.add_message("Inbox", "RE: Заявка №101", "Заявка №101 принята в работу",
                                      NOW - dt.timedelta(days=1), f"Иван <{CONTRACTOR}>",
                                      internet_message_id="<c-1@contractor.example>", conversation_id="AAQkConv-77=")
    nudge = compose_nudge(number="101", position=None, passed="Прошёл срок ответа", subject="RE: Заявка №101")
    message_id = new_message_id("contoso.example")
    sender = sender_for()

    sender.send_reply(original, to=[CONTRACTOR], subject=nudge.subject, text=nudge.text, html=nudge.html,
                      message_id=message_id, in_reply_to="<c-1@contractor.example>")

    (record,) = fake_graph.sent
    assert (record.kind, record.reply_to, record.to) == ("reply", original, [CONTRACTOR])
    assert record.internet_message_id == message_id and record.subject == "RE: Заявка №101"
    assert record.in_reply_to == "<c-1@contractor.example>" and record.references == ["<c-1@contractor.example>"]
    assert sender.find_sent(message_id).conversation_id == "AAQkConv-77="
    (post,) = posts(fake_graph)
    assert post.path.endswith(f"/messages/{original}/reply")
    assert not fake_graph.graph_calls("createReply")


def test_reply_to_a_message_that_is_gone_is_told_apart(fake_graph, sender_for):  # noqa: F811
    with pytest.raises(ReplyTargetGone) as caught:
        sender_for().send_reply("AAMkMSG-9999_x=", to=[CONTRACTOR], subject="RE: Заявка №5", text="т", html="<p>т</p>",
                                message_id=new_message_id("contoso.example"), in_reply_to=None)

    assert isinstance(caught.value, SendRejected) and caught.value.status == 404
    assert "новое письмо" in str(caught.value) and fake_graph.sent == []


def test_refused_recipient_is_rejected_for_good_once_with_the_reason_in_russian(fake_graph, sender_for):  # noqa: F811
    fake_graph.refuse_recipient("bad@contractor.example")
    message_id, mail = request_mail(fake_graph)

    with pytest.raises(SendRejected) as caught:
        sender_for().send_new(to=["bad@contractor.example"], message_id=message_id, **mail)

    assert "адрес получателя не принят" in str(caught.value) and "ErrorInvalidRecipients" in str(caught.value)
    assert caught.value.reason == "адрес получателя не принят (bad@contractor.example)"
    assert fake_graph.sent == [] and len(posts(fake_graph)) == 1


@pytest.mark.parametrize("address", ["ivan@contractor", "не адрес"])
def test_malformed_address_is_rejected_for_good(fake_graph, sender_for, address):  # noqa: F811
    message_id, mail = request_mail(fake_graph)

    with pytest.raises(SendRejected):
        sender_for().send_new(to=[address], message_id=message_id, **mail)

    assert fake_graph.sent == []


def test_missing_permission_is_rejected_for_good_naming_mail_send(fake_graph, sender_for):  # noqa: F811
    fake_graph.fail_next(1, 403, code="ErrorAccessDenied", message="Access is denied.", path_contains="/sendMail")
    message_id, mail = request_mail(fake_graph)

    with pytest.raises(SendRejected, match=r"Mail\.Send") as caught:
        sender_for().send_new(to=[CONTRACTOR], message_id=message_id, **mail)

    assert caught.value.status == 403


def test_the_shared_mailbox_itself_is_never_a_recipient(fake_graph, sender_for):  # noqa: F811
    message_id, mail = request_mail(fake_graph)

    with pytest.raises(SendRejected, match="сам общий ящик"):
        sender_for().send_new(to=[CONTRACTOR, fake_graph.mailbox.upper()], message_id=message_id, **mail)

    assert fake_graph.calls == []


def test_server_error_is_temporary_and_not_retried_in_place(fake_graph, sender_for, recorded_sleeps):  # noqa: F811
    fake_graph.fail_next(1, 500, path_contains="/sendMail")
    message_id, mail = request_mail(fake_graph)
    sender = sender_for()

    with pytest.raises(GraphError) as caught:
        sender.send_new(to=[CONTRACTOR], message_id=message_id, **mail)

    assert not isinstance(caught.value, SendRejected) and caught.value.uncertain
    assert len(posts(fake_graph)) == 1 and recorded_sleeps[0] == []
    assert sender.find_sent(message_id) is None  # the next pass sends it again
    sender.send_new(to=[CONTRACTOR], message_id=message_id, **mail)
    assert fake_graph.copies(message_id) == 1


def test_throttled_send_waits_as_asked_and_sends_one_copy(fake_graph, sender_for, recorded_sleeps):  # noqa: F811
    fake_graph.fail_next(1, 429, retry_after=5, path_contains="/sendMail")
    message_id, mail = request_mail(fake_graph)

    sender_for().send_new(to=[CONTRACTOR], message_id=message_id, **mail)

    assert recorded_sleeps[0] == [5.0] and fake_graph.copies(message_id) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_long_retry_after_on_a_send_is_graph_throttled(fake_graph, sender_for, recorded_sleeps, status):  # noqa: F811
    fake_graph.fail_next(1, status, retry_after=600, path_contains="/sendMail")
    message_id, mail = request_mail(fake_graph)
    sender = sender_for()

    with pytest.raises(GraphThrottled, match="Graph просит подождать 600 с") as caught:
        sender.send_new(to=[CONTRACTOR], message_id=message_id, **mail)

    assert recorded_sleeps[0] == [] and sender.not_before == NOW + dt.timedelta(minutes=10)
    assert caught.value.uncertain == (status == 503) and fake_graph.sent == []


def test_sender_makes_no_call_before_not_before(fake_graph, sender_for):  # noqa: F811
    message_id, mail = request_mail(fake_graph)

    with pytest.raises(GraphThrottled):
        sender_for(not_before=NOW + dt.timedelta(minutes=5)).send_new(to=[CONTRACTOR], message_id=message_id, **mail)

    assert fake_graph.calls == []


def test_connection_cut_after_accepting_is_found_in_sent_items_so_nothing_goes_twice(fake_graph,  # noqa: F811
                                                                                     sender_for):
    fake_graph.cut_after_accepting()
    message_id, mail = request_mail(fake_graph)
    sender = sender_for()

    with pytest.raises(GraphError) as caught:
        sender.send_new(to=[CONTRACTOR], message_id=message_id, **mail)

    assert caught.value.uncertain and not isinstance(caught.value, SendRejected)
    assert sender.find_sent(message_id) is not None
    assert fake_graph.copies(message_id) == 1 and len(posts(fake_graph)) == 1


def test_sent_item_lookup_tolerates_late_filing(fake_graph, sender_for, recorded_sleeps):  # noqa: F811
    fake_graph.file_sent_after_lookups = 2
    message_id, mail = request_mail(fake_graph)
    sender = sender_for()
    sender.send_new(to=[CONTRACTOR], message_id=message_id, **mail)

    assert sender.find_sent(message_id) is None
    found = sender.find_sent(message_id, attempts=3, interval=2.0)

    assert found is not None and found.internet_message_id == message_id
    assert recorded_sleeps[0] == [2.0]


def test_quote_in_a_message_id_is_escaped_in_the_lookup(fake_graph, sender_for):  # noqa: F811
    message_id = "<o'brien.1@contoso.example>"
    _, mail = request_mail(fake_graph)
    sender = sender_for()
    sender.send_new(to=[CONTRACTOR], message_id=message_id, **mail)

    found = sender.find_sent(message_id)

    assert found is not None and found.internet_message_id == message_id
    lookup = fake_graph.graph_calls("/mailFolders/sentitems/messages")[-1]
    assert lookup.query["$filter"] == "internetMessageId eq '<o''brien.1@contoso.example>'"
    assert sender.find_sent("<other@contoso.example>") is None


def test_reply_subject_is_prefixed_once():
    assert reply_subject("Заявка №5") == "RE: Заявка №5"
    assert reply_subject("Re:  Заявка №5") == "Re: Заявка №5"


# -- the fake's JSON forms (Graph accepts them too; OMIS sends MIME) ---------------------------

def _token(fake: FakeGraph) -> str:
    return requests.post(f"{fake.authority_host}/{fake.tenant}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": fake.client_id, "client_secret": fake.client_secret,
        "scope": f"{fake.graph_url}/.default"}, verify=fake.ca_bundle, timeout=5).json()["access_token"]


@pytest.mark.parametrize("keeps", [False, True])
def test_fake_json_send_keeps_a_given_internet_message_id_only_when_told(fake_graph, keeps):  # noqa: F811
    fake_graph.json_keeps_internet_message_id = keeps
    body = {"message": {"subject": "Заявка №1", "body": {"contentType": "Text", "content": "текст"},
                        "toRecipients": [{"emailAddress": {"address": CONTRACTOR}}],
                        "internetMessageId": "<given@contoso.example>"}}

    answer = requests.post(f"{fake_graph.graph_url}/v1.0/users/{fake_graph.mailbox}/sendMail", json=body,
                           headers={"Authorization": f"Bearer {_token(fake_graph)}"}, verify=fake_graph.ca_bundle,
                           timeout=5)

    assert answer.status_code == 202 and answer.content == b""
    (record,) = fake_graph.sent
    assert record.format == "json" and (record.internet_message_id == "<given@contoso.example>") == keeps


def test_fake_json_and_mime_replies_go_to_the_original_sender_by_default(fake_graph):  # noqa: F811
    original = fake_graph.add_message("Inbox", "Заявка №2", "текст", NOW, f"Иван <{CONTRACTOR}>")
    url = f"{fake_graph.graph_url}/v1.0/users/{fake_graph.mailbox}/messages/{original}/reply"
    headers = {"Authorization": f"Bearer {_token(fake_graph)}"}
    mime = base64.b64encode("Subject: RE: Заявка №2\r\nMessage-ID: <r-2@contoso.example>\r\n\r\nспасибо\r\n"
                            .encode())

    json_answer = requests.post(url, data=json.dumps({"comment": "спасибо"}), verify=fake_graph.ca_bundle,
                                headers={**headers, "Content-Type": "application/json"}, timeout=5)
    mime_answer = requests.post(url, data=mime, verify=fake_graph.ca_bundle,
                                headers={**headers, "Content-Type": "text/plain"}, timeout=5)
    bad_answer = requests.post(url, data=b"%%%", verify=fake_graph.ca_bundle,
                               headers={**headers, "Content-Type": "text/plain"}, timeout=5)

    assert (json_answer.status_code, mime_answer.status_code, bad_answer.status_code) == (202, 202, 400)
    assert bad_answer.json()["error"]["code"] == "ErrorMimeContentInvalidBase64String"
    assert [r.to for r in fake_graph.sent] == [[CONTRACTOR], [CONTRACTOR]]
    assert fake_graph.sent[1].internet_message_id == "<r-2@contoso.example>"
