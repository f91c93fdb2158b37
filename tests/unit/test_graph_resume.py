"""The reader's resume token: bare links stay bare, pending work survives a save, garbage starts over (pure)."""
from __future__ import annotations

import datetime as dt

import pytest

from functions.mail.graph_resume import PREFIX, ResumeState, Window, seen_key

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc)
LINK = "https://graph.microsoft.com/v1.0/users/x/mailFolders('a')/messages/delta?$skiptoken=abc"


def test_a_bare_link_is_saved_as_the_link_itself():
    assert ResumeState(LINK).encode() == LINK
    assert ResumeState.decode(LINK) == ResumeState(LINK)


def test_pending_round_and_window_survive_a_save():
    state = ResumeState(LINK, T0, 4321, Window(T0, T0 + dt.timedelta(days=1), (seen_key("m1"), seen_key("m2"))))

    token = state.encode()

    assert token.startswith(PREFIX) and "$skiptoken=abc" in token
    assert ResumeState.decode(token) == state


@pytest.mark.parametrize("token", [PREFIX + "{not json", PREFIX + '{"link": 5, "since": "yesterday"}',
                                   PREFIX + '{"window": {"start": "2026-11-20T10:00:00"}}'])
def test_an_unreadable_token_starts_over(token):
    assert ResumeState.decode(token) == ResumeState()


def test_nothing_to_resume_from_is_refused():
    with pytest.raises(ValueError):
        ResumeState().encode()


def test_window_moves_on_by_received_time_and_remembers_its_boundary():
    window = Window(T0, T0 + dt.timedelta(hours=5))
    later = T0 + dt.timedelta(minutes=3)

    window = window.advance(T0, "a").advance(later, "b").advance(later, "c").advance(later, "c")

    assert (window.start, window.seen) == (later, ("b", "c"))
    assert window.has_read(later, "b") and not window.has_read(later, "d")
    assert window.has_read(T0, "zzz") and window.has_read(T0 + dt.timedelta(hours=6), "e")
    assert not window.has_read(T0 + dt.timedelta(hours=1), "e")


def test_two_windows_become_one_covering_both():
    a = Window(T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2), ("x",))
    b = Window(T0, T0 + dt.timedelta(hours=1, minutes=30), ("y",))

    assert a.union(b) == Window(T0, T0 + dt.timedelta(hours=2), ("y",))
    assert a.union(None) == a
