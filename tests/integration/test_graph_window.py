"""A look-back window with more mail than a filtered delta returns (Graph: 5,000) is read without loss.

The fake Graph reproduces the cap: a filtered first round returns at most `filter_cap`
messages and counts the rest as synced, so the delta alone would never report them.
"""
from __future__ import annotations

import datetime as dt

import pytest

from functions.mail.graph import DELTA_FILTER_CAP, GraphMailClient, MailBatch
from functions.mail.graph_resume import PREFIX
from tests.fakes.fixtures import fake_graph, graph_settings, recorded_sleeps  # noqa: F401
from tests.fakes.graph_server import FILTER_CAP, FakeGraph

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
WEEK = str(7 * 24 * 60)


def deliver(fake: FakeGraph, count: int, *, every: dt.timedelta = dt.timedelta(minutes=1),
            newest: dt.datetime = NOW - dt.timedelta(minutes=5)) -> list[str]:
    return [fake.add_message("Inbox", f"Заявка {i}", f"Заявка {i} принята в работу", newest - i * every)
            for i in range(count)]


@pytest.fixture
def reader(graph_settings, recorded_sleeps):  # noqa: F811
    """Build a reader of the fake's Inbox; `cap` is what the client takes Graph's limit to be."""
    clients: list[GraphMailClient] = []

    def make(cap: int | None = None, **overrides: str) -> GraphMailClient:
        overrides.setdefault("OMIS_OUTLOOK_LOOKBACK_MINUTES", WEEK)
        client = GraphMailClient(graph_settings(**overrides), sleep=recorded_sleeps[1], clock=lambda: NOW,
                                 delta_filter_cap=cap)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def read_until_complete(client: GraphMailClient, *, now: dt.datetime = NOW, passes: int = 60,
                        link: str | None = None) -> list[MailBatch]:
    batches: list[MailBatch] = []
    for _ in range(passes):
        batches.append(client.read_messages(link, now=now))
        link = batches[-1].resume_link
        if batches[-1].complete:
            return batches
    raise AssertionError(f"not complete after {passes} passes")


def ids(batches: list[MailBatch]) -> set[str]:
    return {m.graph_id for b in batches for m in b.messages}


def test_more_than_five_thousand_messages_in_the_window_are_all_read(fake_graph, reader):  # noqa: F811
    assert FILTER_CAP == DELTA_FILTER_CAP == 5000
    delivered = deliver(fake_graph, 5100)

    batches = read_until_complete(reader(OMIS_OUTLOOK_MAX_MESSAGES="1000"))

    assert ids(batches) == set(delivered)
    assert all(len(b.messages) <= 1000 for b in batches)
    listings = [c for c in fake_graph.graph_calls("/messages") if "/delta" not in c.path]
    assert listings and all(c.query["$orderby"] == "receivedDateTime asc" for c in listings[:1])


def test_the_fake_reproduces_the_cap_a_bare_delta_would_lose_mail(fake_graph, reader):  # noqa: F811
    fake_graph.filter_cap = 7
    delivered = deliver(fake_graph, 12)

    batches = read_until_complete(reader(cap=10**9))  # a client that does not know about the cap

    assert len(ids(batches)) == 7 and ids(batches) < set(delivered)


@pytest.mark.parametrize("keeps", ["newest", "oldest"])
def test_capped_round_is_followed_by_the_window_whichever_messages_graph_kept(fake_graph, reader, keeps):  # noqa: F811
    fake_graph.filter_cap, fake_graph.filter_cap_keeps = 7, keeps
    delivered = deliver(fake_graph, 12)

    batches = read_until_complete(reader(cap=7))

    assert ids(batches) == set(delivered)
    assert "$deltatoken=" in batches[-1].resume_link and not batches[-1].resume_link.startswith(PREFIX)


def test_window_is_read_across_passes_within_the_limit(fake_graph, reader):  # noqa: F811
    fake_graph.filter_cap = 7
    delivered = deliver(fake_graph, 20)

    batches = read_until_complete(reader(cap=7, OMIS_OUTLOOK_MAX_MESSAGES="4"))

    assert ids(batches) == set(delivered)
    assert all(len(b.messages) <= 4 for b in batches)
    assert [b.complete for b in batches] == [False] * (len(batches) - 1) + [True]
    assert all(b.resume_link.startswith(PREFIX) for b in batches[:-1])


def test_new_mail_is_read_first_while_the_window_is_still_being_read(fake_graph, reader):  # noqa: F811
    fake_graph.filter_cap = 5
    deliver(fake_graph, 30)
    client = reader(cap=5, OMIS_OUTLOOK_MAX_MESSAGES="6")
    first = client.read_messages(None, now=NOW)
    assert not first.complete
    fresh = fake_graph.add_message("Inbox", "Заявка 777", "Заявка 777 выполнена", NOW + dt.timedelta(minutes=1))

    second = client.read_messages(first.resume_link, now=NOW + dt.timedelta(minutes=10))

    assert fresh in {m.graph_id for m in second.messages}


def test_message_deleted_during_the_window_makes_none_skipped(fake_graph, reader):  # noqa: F811
    fake_graph.filter_cap = 3
    delivered = deliver(fake_graph, 15)
    client = reader(cap=3, OMIS_OUTLOOK_MAX_MESSAGES="4")
    batches = [client.read_messages(None, now=NOW)]
    batches.append(client.read_messages(batches[0].resume_link, now=NOW))
    fake_graph.delete_message(next(iter(ids(batches))))  # one already read goes away

    batches += read_until_complete(client, link=batches[-1].resume_link)

    assert ids(batches) == set(delivered)


@pytest.mark.parametrize("limit", ["50", "2"])
def test_more_messages_in_one_second_than_a_page_holds_are_all_read(fake_graph, reader, limit):  # noqa: F811
    fake_graph.filter_cap, fake_graph.page_cap = 4, 3
    same_second = NOW - dt.timedelta(hours=2)
    delivered = [fake_graph.add_message("Inbox", f"Заявка {i}", "текст", same_second) for i in range(8)]
    delivered += deliver(fake_graph, 4)

    batches = read_until_complete(reader(cap=4, OMIS_OUTLOOK_MAX_MESSAGES=limit))

    assert ids(batches) == set(delivered)
    assert all(len(b.messages) <= int(limit) for b in batches)


def test_window_survives_an_expired_delta_link(fake_graph, reader):  # noqa: F811
    fake_graph.filter_cap = 5
    delivered = deliver(fake_graph, 16)
    client = reader(cap=5, OMIS_OUTLOOK_MAX_MESSAGES="6")
    first = client.read_messages(None, now=NOW)
    fake_graph.expire_sync_states()

    batches = [first, *read_until_complete(client, link=first.resume_link)]

    assert ids(batches) == set(delivered)
    assert batches[1].restarted
