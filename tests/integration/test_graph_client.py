"""GraphMailClient with the real msal and requests against the fake Entra + Graph on loopback HTTPS."""
from __future__ import annotations

import datetime as dt
import logging
from email.utils import format_datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from functions.mail.graph import (
    MESSAGE_FIELDS,
    FolderNotFound,
    GraphError,
    GraphMailClient,
    GraphThrottled,
    SyncStateExpired,
)
from tests.fakes.fixtures import fake_graph, graph_settings, recorded_sleeps  # noqa: F401
from tests.fakes.graph_server import FakeGraph

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
FOLDER = "Inbox/Contracts"


def ago(**delta: float) -> dt.datetime:
    return NOW - dt.timedelta(**delta)


def deliver(fake: FakeGraph, count: int, *, start_minutes: int = 10, folder: str = FOLDER) -> list[str]:
    """Deliver `count` messages a minute apart, the newest `start_minutes` before NOW."""
    return [fake.add_message(folder, f"Re: заявка {100 + i}", f"Заявка {100 + i} принята в работу",
                             ago(minutes=start_minutes + i))
            for i in range(count)]


@pytest.fixture
def client_for(graph_settings, recorded_sleeps):  # noqa: F811
    """Build a client on the fake; keyword arguments override OMIS_* settings."""
    clients: list[GraphMailClient] = []

    def make(max_retries: int = 4, timeout: tuple[float, float] = (5.0, 30.0), clock=lambda: NOW,
             not_before: dt.datetime | None = None, **overrides: str) -> GraphMailClient:
        overrides.setdefault("OMIS_OUTLOOK_FOLDER", FOLDER)
        client = GraphMailClient(graph_settings(**overrides), sleep=recorded_sleeps[1],
                                 max_retries=max_retries, timeout=timeout, clock=clock, not_before=not_before)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# -- sign-in ---------------------------------------------------------------------------------

def test_token_is_acquired_once_and_reused(fake_graph, client_for):  # noqa: F811
    deliver(fake_graph, 2)
    client = client_for()
    batch = client.read_messages(None, now=NOW)
    fake_graph.add_message(FOLDER, "Re: заявка 7", "Заявка 7 выполнена", ago(minutes=1))
    again = client.read_messages(batch.resume_link, now=NOW)
    client_for().read_messages(again.resume_link, now=NOW)  # a second client in the same process

    assert fake_graph.token_requests == 1
    assert len(fake_graph.login_calls("openid-configuration")) == 1
    assert not fake_graph.login_calls("/common/discovery/instance")
    assert all(call.status == 200 for call in fake_graph.graph_calls())


def test_wrong_secret_names_aadsts_code_and_correlation_id(fake_graph, client_for):  # noqa: F811
    secret = "Wrong~Secret-123456"
    client = client_for(OMIS_OUTLOOK_CLIENT_SECRET=secret)

    with pytest.raises(GraphError) as caught:
        client.read_messages(None, now=NOW)

    message = str(caught.value)
    assert "invalid_client" in message
    assert "AADSTS7000215" in message
    assert fake_graph.last_correlation_id and fake_graph.last_correlation_id in message
    assert "OMIS_OUTLOOK_CLIENT_SECRET" in message
    assert secret not in message and fake_graph.client_secret not in message
    assert not fake_graph.graph_calls()


def test_unknown_tenant_is_reported_with_the_setting_to_check(fake_graph, client_for):  # noqa: F811
    client = client_for(OMIS_OUTLOOK_TENANT_ID="no-such-tenant")

    with pytest.raises(GraphError, match="OMIS_OUTLOOK_TENANT_ID"):
        client.read_messages(None, now=NOW)


def test_certificate_signs_in_without_a_secret(fake_graph, client_for, tmp_path: Path):  # noqa: F811
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OMIS mail reader")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    pem = tmp_path / "omis-mail.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()) + cert_pem)
    fake_graph.register_certificate(cert_pem)
    deliver(fake_graph, 1)

    batch = client_for(OMIS_OUTLOOK_CLIENT_SECRET="", OMIS_OUTLOOK_CERTIFICATE_PATH=str(pem)).read_messages(
        None, now=NOW)

    assert len(batch.messages) == 1
    (token_call,) = fake_graph.login_calls("/oauth2/v2.0/token")
    assert "client_assertion" in token_call.form and "client_secret" not in token_call.form


def test_unreadable_certificate_names_the_setting(fake_graph, client_for, tmp_path: Path):  # noqa: F811
    client = client_for(OMIS_OUTLOOK_CLIENT_SECRET="",
                        OMIS_OUTLOOK_CERTIFICATE_PATH=str(tmp_path / "missing.pem"))

    with pytest.raises(GraphError, match="OMIS_OUTLOOK_CERTIFICATE_PATH"):
        client.read_messages(None, now=NOW)


def test_revoked_token_is_replaced_once(fake_graph, client_for):  # noqa: F811
    deliver(fake_graph, 1)
    client = client_for()
    batch = client.read_messages(None, now=NOW)
    fake_graph.revoke_tokens()
    fake_graph.add_message(FOLDER, "Re: заявка 8", "Заявка 8 выполнена", ago(minutes=1))

    again = client.read_messages(batch.resume_link, now=NOW)

    assert [m.subject for m in again.messages] == ["Re: заявка 8"]
    assert fake_graph.token_requests == 2


# -- folders ---------------------------------------------------------------------------------

def test_folder_path_resolves_case_insensitively(fake_graph, client_for):  # noqa: F811
    fake_graph.add_folder("Inbox/Contracts")
    fake_graph.add_folder("Inbox/Contracts Old")

    folder_id = client_for(OMIS_OUTLOOK_FOLDER="inbox/CONTRACTS").resolve_folder()

    assert folder_id == fake_graph.folder_id("Inbox/Contracts")
    first = fake_graph.graph_calls()[0]
    assert first.path.endswith("/mailFolders/inbox")  # the well-known name, whatever the display language


def test_top_level_display_name_and_paged_child_folders(fake_graph, client_for):  # noqa: F811
    fake_graph.page_cap = 4
    for i in range(10):
        fake_graph.add_folder(f"Проекты/Папка {i:02d}")
    fake_graph.add_folder("Проекты/Договоры")

    folder_id = client_for(OMIS_OUTLOOK_FOLDER="проекты/договоры").resolve_folder()

    assert folder_id == fake_graph.folder_id("Проекты/Договоры")
    assert len(fake_graph.graph_calls("/childFolders")) == 3


def test_hidden_folder_is_found(fake_graph, client_for):  # noqa: F811
    fake_graph.add_folder("Скрытые", hidden=True)
    fake_graph.add_folder("Скрытые/Договоры", hidden=True)
    deliver(fake_graph, 1, folder="Скрытые/Договоры")

    batch = client_for(OMIS_OUTLOOK_FOLDER="Скрытые/Договоры").read_messages(None, now=NOW)

    assert len(batch.messages) == 1
    listings = fake_graph.graph_calls("/mailFolders")
    assert all(c.query.get("includeHiddenFolders") == "true" for c in listings if c.path.endswith(
        ("/mailFolders", "/childFolders")))


def test_hidden_folders_are_not_listed_without_asking(fake_graph):  # noqa: F811
    """The fake's own rule, which the test above relies on: a plain listing leaves hidden folders out."""
    import requests

    fake_graph.add_folder("Скрытые", hidden=True)
    token = requests.post(f"{fake_graph.authority_host}/{fake_graph.tenant}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": fake_graph.client_id,
        "client_secret": fake_graph.client_secret, "scope": f"{fake_graph.graph_url}/.default"},
        verify=fake_graph.ca_bundle, timeout=5).json()["access_token"]
    url = f"{fake_graph.graph_url}/v1.0/users/{fake_graph.mailbox}/mailFolders"

    def names(**params: str) -> list[str]:
        answer = requests.get(url, params={"$top": "100", **params}, headers={"Authorization": f"Bearer {token}"},
                              verify=fake_graph.ca_bundle, timeout=5)
        return [f["displayName"] for f in answer.json()["value"]]

    assert "Скрытые" not in names() and "Скрытые" in names(includeHiddenFolders="true")


def test_missing_folder_lists_the_names_that_exist(fake_graph, client_for):  # noqa: F811
    fake_graph.add_folder("Inbox/Contracts")
    fake_graph.add_folder("Inbox/Invoices")

    with pytest.raises(FolderNotFound) as caught:
        client_for(OMIS_OUTLOOK_FOLDER="Inbox/Contratcs").resolve_folder()

    message = str(caught.value)
    assert "Inbox/Contratcs" in message and "«Contracts»" in message and "«Invoices»" in message
    assert caught.value.existing == ["Contracts", "Invoices"]


def test_missing_top_level_folder_lists_top_level_names(fake_graph, client_for):  # noqa: F811
    with pytest.raises(FolderNotFound) as caught:
        client_for(OMIS_OUTLOOK_FOLDER="Nowhere/Contracts").resolve_folder()

    assert "Inbox" in caught.value.existing and "Sent Items" in caught.value.existing


# -- reading ---------------------------------------------------------------------------------

def test_first_pass_reads_the_look_back_window_only(fake_graph, client_for):  # noqa: F811
    fake_graph.add_message(FOLDER, "свежее", "Заявка 1 принята", ago(minutes=30))
    fake_graph.add_message(FOLDER, "старое", "Заявка 2 принята", ago(hours=2))
    fake_graph.add_message(FOLDER, "древнее", "Заявка 3 принята", ago(days=3))

    batch = client_for(OMIS_OUTLOOK_LOOKBACK_MINUTES="60").read_messages(None, now=NOW)

    assert [m.subject for m in batch.messages] == ["свежее"]
    assert batch.complete and "$deltatoken=" in batch.resume_link
    (delta,) = fake_graph.graph_calls("/messages/delta")
    assert delta.query["$filter"] == "receivedDateTime ge 2026-11-26T11:00:00Z"


def test_pages_are_followed_to_the_delta_link(fake_graph, client_for):  # noqa: F811
    fake_graph.page_cap = 2
    deliver(fake_graph, 5)

    batch = client_for().read_messages(None, now=NOW)

    assert len(batch.messages) == 5
    assert [m.received for m in batch.messages] == sorted(m.received for m in batch.messages)
    assert batch.complete
    assert len(fake_graph.graph_calls("/messages/delta")) == 3
    assert batch.calls == 2 + 3  # inbox + childFolders, then three pages


def test_message_limit_carries_over_without_gap_or_repeat(fake_graph, client_for):  # noqa: F811
    ids = deliver(fake_graph, 7)
    client = client_for(OMIS_OUTLOOK_MAX_MESSAGES="3")

    first = client.read_messages(None, now=NOW)
    second = client.read_messages(first.resume_link, now=NOW)
    third = client.read_messages(second.resume_link, now=NOW)

    assert [len(b.messages) for b in (first, second, third)] == [3, 3, 1]
    assert [b.complete for b in (first, second, third)] == [False, False, True]
    seen = [m.graph_id for b in (first, second, third) for m in b.messages]
    assert sorted(seen) == sorted(ids)
    assert "$skiptoken=" in first.resume_link and "$deltatoken=" in third.resume_link
    assert (second.calls, third.calls) == (1, 1)

    fake_graph.touch_message(ids[0])      # marked read: not new mail
    fake_graph.delete_message(ids[1])     # deleted: nothing to read
    newer = [fake_graph.add_message(FOLDER, f"новое {i}", "Заявка 9 выполнена", ago(minutes=i)) for i in (1, 2)]
    fourth = client.read_messages(third.resume_link, now=NOW)

    assert sorted(m.graph_id for m in fourth.messages) == sorted(newer)
    assert fourth.complete and not fourth.restarted


def test_batch_stays_within_the_limit_when_pages_are_small(fake_graph, client_for):  # noqa: F811
    fake_graph.page_cap = 3
    deliver(fake_graph, 8)
    client = client_for(OMIS_OUTLOOK_MAX_MESSAGES="5")

    first = client.read_messages(None, now=NOW)
    rest = client.read_messages(first.resume_link, now=NOW)

    assert (len(first.messages), first.complete) == (5, False)
    assert (len(rest.messages), rest.complete) == (3, True)
    pages = [c.headers["prefer"] for c in fake_graph.graph_calls("/messages/delta")]
    assert "odata.maxpagesize=5" in pages[0] and "odata.maxpagesize=2" in pages[1]


def test_unique_body_and_sender_are_passed_through(fake_graph, client_for):  # noqa: F811
    fake_graph.add_message(
        FOLDER, "RE: Заявка 101", "Заявка 101 выполнена.\n\n-----Original Message-----\nЗаявка 101",
        ago(minutes=5), "Иван Петров <ivan@contractor.example>",
        internet_message_id="<abc@contractor.example>", conversation_id="AAQkConv-101=",
        unique_body="Заявка 101 выполнена.")

    (message,) = client_for().read_messages(None, now=NOW).messages

    assert message.unique_body == "Заявка 101 выполнена."
    assert message.body.startswith("Заявка 101 выполнена.") and "Original Message" in message.body
    assert (message.sender_name, message.sender_address) == ("Иван Петров", "ivan@contractor.example")
    assert (message.internet_message_id, message.conversation_id) == ("<abc@contractor.example>", "AAQkConv-101=")
    assert message.received == ago(minutes=5) and message.received.tzinfo is not None


def test_prefer_headers_select_and_change_type_are_sent(fake_graph, client_for):  # noqa: F811
    deliver(fake_graph, 1)

    client_for().read_messages(None, now=NOW)

    (delta,) = fake_graph.graph_calls("/messages/delta")
    assert 'outlook.body-content-type="text"' in delta.headers["prefer"]
    assert "odata.maxpagesize=50" in delta.headers["prefer"]
    assert set(delta.query["$select"].split(",")) == set(MESSAGE_FIELDS)
    assert delta.query["changeType"] == "created"
    assert delta.headers["authorization"].startswith("Bearer ")


def test_html_body_is_turned_into_text_when_graph_ignores_the_preference(fake_graph, client_for):  # noqa: F811
    fake_graph.ignore_body_preference = True
    fake_graph.add_message(FOLDER, "Re", "Заявка 5 <выполнена> & закрыта\nС уважением", ago(minutes=3))

    (message,) = client_for().read_messages(None, now=NOW).messages

    assert message.body == "Заявка 5 <выполнена> & закрыта\n\nС уважением"


# -- failures ---------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 503])
def test_throttled_call_waits_as_asked_then_succeeds(fake_graph, client_for, recorded_sleeps, status):  # noqa: F811
    deliver(fake_graph, 2)
    fake_graph.fail_next(2, status, retry_after=7, path_contains="/messages/delta")

    batch = client_for().read_messages(None, now=NOW)

    assert len(batch.messages) == 2
    assert recorded_sleeps[0] == [7.0, 7.0]
    assert batch.calls == 2 + 3


def test_endless_throttling_gives_up_within_the_budget(fake_graph, client_for, recorded_sleeps):  # noqa: F811
    deliver(fake_graph, 1)
    fake_graph.fail_next(100, 429, retry_after=1, path_contains="/messages/delta")

    with pytest.raises(GraphError, match="throttling") as caught:
        client_for(max_retries=4).read_messages(None, now=NOW)

    assert caught.value.status == 429
    assert len(fake_graph.graph_calls("/messages/delta")) == 5
    assert recorded_sleeps[0] == [1.0] * 4


def test_retry_after_is_waited_in_full_never_cut(fake_graph, client_for, recorded_sleeps):  # noqa: F811
    deliver(fake_graph, 1)
    fake_graph.fail_next(1, 429, retry_after=59, path_contains="/messages/delta")

    batch = client_for().read_messages(None, now=NOW)

    assert recorded_sleeps[0] == [59.0] and len(batch.messages) == 1


def test_retry_after_as_an_http_date_is_counted_from_the_clock(fake_graph, client_for, recorded_sleeps):  # noqa: F811
    deliver(fake_graph, 1)
    fake_graph.fail_next(1, 503, retry_after=format_datetime(NOW + dt.timedelta(seconds=30), usegmt=True),
                         path_contains="/messages/delta")

    client_for().read_messages(None, now=NOW)

    assert recorded_sleeps[0] == [30.0]


def test_long_retry_after_ends_the_pass_with_graph_throttled(fake_graph, client_for, recorded_sleeps):  # noqa: F811
    deliver(fake_graph, 1)
    fake_graph.fail_next(1, 429, retry_after=3600, path_contains="/messages/delta")
    client = client_for()

    with pytest.raises(GraphThrottled) as caught:
        client.read_messages(None, now=NOW)

    assert recorded_sleeps[0] == []
    assert caught.value.retry_at == NOW + dt.timedelta(hours=1) == client.not_before
    assert "Graph просит подождать 3600 с" in str(caught.value)
    assert caught.value.status == 429 and isinstance(caught.value, GraphError)
    assert len(fake_graph.graph_calls("/messages/delta")) == 1


def test_waits_of_one_client_add_up_to_its_budget(fake_graph, client_for, recorded_sleeps):  # noqa: F811
    deliver(fake_graph, 1)
    fake_graph.fail_next(2, 429, retry_after=40, path_contains="/messages/delta")

    with pytest.raises(GraphThrottled) as caught:
        client_for().read_messages(None, now=NOW)

    assert recorded_sleeps[0] == [40.0]  # 40 more would pass the 60 s a pass affords
    assert caught.value.retry_at == NOW + dt.timedelta(seconds=40)


def test_client_makes_no_call_before_not_before_then_reads(fake_graph, client_for):  # noqa: F811
    deliver(fake_graph, 1)
    later = NOW + dt.timedelta(minutes=10)

    with pytest.raises(GraphThrottled, match="Graph просит подождать 600 с") as caught:
        client_for(not_before=later).read_messages(None, now=NOW)

    assert caught.value.retry_at == later
    assert fake_graph.calls == []  # not even a sign-in
    batch = client_for(not_before=later, clock=lambda: later).read_messages(None, now=later)
    assert len(batch.messages) == 1


def test_server_error_becomes_graph_error_after_retries(fake_graph, client_for, recorded_sleeps):  # noqa: F811
    fake_graph.fail_next(100, 500, code="generalException", message="Внутренняя ошибка",
                         path_contains="/messages/delta")
    deliver(fake_graph, 1)

    with pytest.raises(GraphError) as caught:
        client_for().read_messages(None, now=NOW)

    assert caught.value.status == 500
    assert "generalException" in str(caught.value)
    assert recorded_sleeps[0] == [1.0, 2.0, 4.0, 8.0]


def test_forbidden_mailbox_names_the_permission(fake_graph, client_for):  # noqa: F811
    fake_graph.fail_next(1, 403, code="ErrorAccessDenied", message="Access is denied.")

    with pytest.raises(GraphError, match=r"Mail\.Read") as caught:
        client_for().read_messages(None, now=NOW)

    assert caught.value.status == 403 and len(fake_graph.graph_calls()) == 1


def test_slow_answer_times_out_and_is_retried(fake_graph, client_for, recorded_sleeps):  # noqa: F811
    deliver(fake_graph, 1)
    fake_graph.fail_next(1, delay=1.0, path_contains="/messages/delta")

    batch = client_for(timeout=(2.0, 0.3)).read_messages(None, now=NOW)

    assert len(batch.messages) == 1
    assert recorded_sleeps[0] == [1.0]


@pytest.mark.parametrize("status, code", [(410, "SyncStateNotFound"), (400, "syncStateNotFound"),
                                          (400, "resyncRequired")])
def test_expired_resume_link_restarts_from_the_look_back_window(fake_graph, client_for, status, code):  # noqa: F811
    old = deliver(fake_graph, 2)
    client = client_for()
    batch = client.read_messages(None, now=NOW)
    new = fake_graph.add_message(FOLDER, "новое", "Заявка 3 выполнена", ago(minutes=1))
    fake_graph.expire_sync_states(status, code)

    again = client.read_messages(batch.resume_link, now=NOW)

    assert again.restarted and again.complete
    assert sorted(m.graph_id for m in again.messages) == sorted([*old, new])
    assert "$deltatoken=" in again.resume_link


def test_expiry_during_the_restart_is_raised(fake_graph, client_for):  # noqa: F811
    deliver(fake_graph, 1)
    fake_graph.fail_next(2, 410, path_contains="/messages/delta")

    with pytest.raises(SyncStateExpired):
        client_for().read_messages(None, now=NOW)


def test_resume_link_on_another_host_is_not_followed(fake_graph, client_for):  # noqa: F811
    deliver(fake_graph, 1)
    foreign = "https://graph.example.org/v1.0/users/x/mailFolders('a')/messages/delta?$deltatoken=abc"

    batch = client_for().read_messages(foreign, now=NOW)

    assert batch.restarted and len(batch.messages) == 1


def test_logs_carry_no_token_or_secret(fake_graph, client_for, caplog):  # noqa: F811
    deliver(fake_graph, 3)
    fake_graph.fail_next(1, 429, retry_after=2, path_contains="/messages/delta")
    caplog.set_level(logging.DEBUG)

    client_for(OMIS_OUTLOOK_MAX_MESSAGES="2").read_messages(None, now=NOW)

    text = caplog.text
    assert fake_graph.issued_tokens
    assert not any(token in text for token in fake_graph.issued_tokens)
    assert fake_graph.client_secret not in text
