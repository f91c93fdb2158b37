"""Where the next mail pass goes on: the resume token the reader hands out and takes back (pure).

A filtered messages delta returns at most 5,000 messages (Graph's documented limit for
`$filter` in a messages delta), and which ones it drops is not documented. So the reader
counts what the first, filtered round of a delta returned; when it reaches the cap, the whole
look-back window is read again with plain message listings ordered by received time, in
slices that go on from the last received time read ("keyset" paging: deleting a message
meanwhile shifts nothing). Messages come again and are applied once by their markers.

The token is the delta or skip link itself while nothing else is pending (as before this
module existed, so stored links stay valid); otherwise `omis-resume:v1:` and compact JSON:
the link, the filtered round's start and count, and the window still to read.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger(__name__)

PREFIX = "omis-resume:v1:"


def seen_key(graph_id: str) -> str:
    """Return the short key a window remembers a message read at its boundary by."""
    return hashlib.sha256(graph_id.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Window:
    """Messages received in [start, end] still to read; those at `start` in `seen` are read already."""

    start: datetime
    end: datetime
    seen: tuple[str, ...] = ()

    def union(self, other: Window | None) -> Window:
        """Return one window covering both (reading some messages twice is harmless)."""
        if other is None:
            return self
        return Window(min(self.start, other.start), max(self.end, other.end),
                      self.seen if self.start <= other.start else other.seen)

    def advance(self, received: datetime, key: str) -> Window:
        """Return the window after reading one more message, received at `received`."""
        if received > self.start:
            return replace(self, start=received, seen=(key,))
        if key in self.seen:
            return self
        return replace(self, seen=(*self.seen, key))

    def has_read(self, received: datetime, key: str) -> bool:
        """Say whether a listed message was read before (or is out of the window)."""
        return received < self.start or received > self.end or (received == self.start and key in self.seen)


@dataclass(frozen=True)
class ResumeState:
    """The delta link to follow, the count of a filtered first round, and a window to read by time."""

    link: str | None = None
    round_since: datetime | None = None
    round_count: int = 0
    window: Window | None = field(default=None)

    def encode(self) -> str:
        """Return the token to save; a bare link when nothing else is pending."""
        if self.round_since is None and self.window is None:
            if self.link is None:
                raise ValueError("nothing to resume from")
            return self.link
        data: dict[str, Any] = {"link": self.link}
        if self.round_since is not None:
            data["since"] = _iso(self.round_since)
            data["count"] = self.round_count
        if self.window is not None:
            data["window"] = {"start": _iso(self.window.start), "end": _iso(self.window.end),
                              "seen": list(self.window.seen)}
        return PREFIX + json.dumps(data, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def decode(cls, token: str | None) -> ResumeState:
        """Read a saved token; an unreadable one starts over (the window is read again)."""
        if not token:
            return cls()
        if not token.startswith(PREFIX):
            return cls(link=token)
        try:
            data = json.loads(token[len(PREFIX):])
            window = data.get("window")
            return cls(
                link=data.get("link") or None,
                round_since=_time(data["since"]) if data.get("since") else None,
                round_count=int(data.get("count") or 0),
                window=Window(_time(window["start"]), _time(window["end"]), tuple(map(str, window["seen"])))
                if window else None)
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("The saved Graph resume token is unreadable: reading the look-back window again")
            return cls()


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time without a zone")
    return moment.astimezone(timezone.utc)
