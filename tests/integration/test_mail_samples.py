"""The built-in sample mailbox and the choice of mail source (SPEC §7)."""
from __future__ import annotations

import datetime as dt

import pytest

from functions.mail import sync
from functions.mail.parse import parse_mail
from functions.mail.samples import (
    FAKE_CONTRACTOR_MESSAGES,
    SAMPLE_REQUEST_NUMBERS,
    UNKNOWN_SAMPLE_NUMBER,
    fetch_contractor_messages,
)
from functions.model import STATUSES
from functions.settings import load_settings

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
EMULATOR = {"OMIS_TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true"}
REAL = {"OMIS_TABLES_ENDPOINT": "https://x.table.core.windows.net"}
OUTLOOK = {"OMIS_OUTLOOK_EMAIL": "omis@contoso.example", "OMIS_OUTLOOK_TENANT_ID": "t",
           "OMIS_OUTLOOK_CLIENT_ID": "c", "OMIS_OUTLOOK_CLIENT_SECRET": "s"}


def test_samples_cover_every_status_a_negation_an_enumeration_and_an_unknown_number():
    parsed = [parse_mail(m.subject, m.body, m.unique_body) for m in FAKE_CONTRACTOR_MESSAGES]
    statuses = {s for p in parsed for s in [*p.statuses.values(), p.general_status] if s}

    assert statuses == set(STATUSES[1:])
    assert any(p.numbers and not any(p.statuses.values()) and " не " in p.comment for p in parsed)
    assert any(len(p.numbers) >= 2 for p in parsed)
    assert any(UNKNOWN_SAMPLE_NUMBER in p.numbers for p in parsed)
    assert any(not p.numbers for p in parsed)
    ids = [m.internet_message_id for m in FAKE_CONTRACTOR_MESSAGES]
    assert len(set(ids)) == len(ids) and all(ids)


def test_fetched_samples_are_dated_as_just_received_in_their_order():
    messages = fetch_contractor_messages(True, now=NOW)

    assert [m.internet_message_id for m in messages] == [m.internet_message_id for m in FAKE_CONTRACTOR_MESSAGES]
    assert [m.received for m in messages] == sorted(m.received for m in messages)
    assert messages[-1].received == NOW and NOW - messages[0].received < dt.timedelta(seconds=1)


@pytest.mark.parametrize("env, use_fake, source", [
    ({**EMULATOR, **OUTLOOK}, None, "graph"),
    ({**REAL, **OUTLOOK}, None, "graph"),
    (EMULATOR, None, "samples"),
    ({**EMULATOR, **OUTLOOK}, True, "samples"),
])
def test_source_is_chosen_from_the_settings(env, use_fake, source):
    assert sync.choose_source(load_settings(env), use_fake) == source


@pytest.mark.parametrize("env, use_fake, error", [
    (REAL, None, sync.MailSettingsMissing),
    (EMULATOR, False, sync.MailSettingsMissing),
    ({**REAL, **OUTLOOK}, True, sync.SamplesNotAllowed),
])
def test_source_refused_names_what_is_missing(env, use_fake, error):
    with pytest.raises(error) as caught:
        sync.choose_source(load_settings(env), use_fake)
    if error is sync.MailSettingsMissing:
        assert "OMIS_OUTLOOK_EMAIL" in str(caught.value)


def test_sample_pass_updates_the_demo_requests_once(store):
    for number in SAMPLE_REQUEST_NUMBERS:
        store.add_request(number, now=NOW - dt.timedelta(hours=1))

    first = sync.process_mailbox(now=NOW)
    second = sync.process_mailbox(use_fake=True, now=NOW + dt.timedelta(minutes=10))

    status = {n: store.get_request(n).status for n in SAMPLE_REQUEST_NUMBERS}
    assert status == {"10501": "выполнена", "10502": "требует уточнения", "10503": "выполнена",
                      "10504": "заявка отправлена", "10505": "выполнена", "10506": "выполнена",
                      "ТО-2026/77": "отклонена"}
    assert "ждём поставку" in store.get_request("10504").comment
    assert [h.position for h in store.get_request("10501").history if h.source == "mail"] == ["7", None]
    assert (first.source, first.read, first.applied, first.unmatched, first.errors) == ("samples", 9, 7, 2, 0)
    assert first.pairs_applied == 8
    assert first.pairs_unchanged == 1  # 10504: «ещё не выполнена»
    assert (second.applied, second.unmatched, second.already_applied, second.unmatched_before) == (0, 0, 7, 2)
    kept, _ = store.mail.list_unmatched()
    assert sorted(m.numbers for m in kept) == [(), (UNKNOWN_SAMPLE_NUMBER,)]


def test_samples_before_the_requests_exist_are_kept_then_applied(store):
    first = sync.process_mailbox(use_fake=True, now=NOW)
    for number in SAMPLE_REQUEST_NUMBERS:
        store.add_request(number, now=NOW + dt.timedelta(minutes=1))
    second = sync.process_mailbox(use_fake=True, now=NOW + dt.timedelta(minutes=2))

    assert (first.applied, first.unmatched) == (0, 9)
    # The no-number reply finds its conversation tied by the first sample earlier in the same pass.
    assert (second.unmatched, second.applied, second.unmatched_before) == (0, 7, 2)
    assert store.get_request("10503").status == "выполнена"
