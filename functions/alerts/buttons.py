"""The inline buttons of a digest: their kinds, the keyboard, and the callback data they carry (pure).

Callback data is `<kind>:<digest id>` for a button about the whole digest and
`<kind>:<digest id>:<n>` for one about the digest's n-th request (0-based), at most 64 bytes as
Telegram allows. The digest's requests are kept in storage (storage/bot.py), so the data only
names the digest. A kind is a short code; what pressing it does is in presses.py.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CALLBACK_MAX_BYTES = 64
_CODE_RE = re.compile(r"^[a-z][a-z0-9]{0,3}$")
_DATA_RE = re.compile(r"^([a-z][a-z0-9]{0,3}):([A-Za-z0-9_-]{1,40})(?::([0-9]{1,3}))?$")


@dataclass(frozen=True)
class ButtonKind:
    """A kind of digest button: its code in callback data, its label, and whether it is per request."""

    code: str
    label: str                   # per-request kinds: followed by the request's number
    per_request: bool = False

    def __post_init__(self) -> None:
        if not _CODE_RE.match(self.code):
            raise ValueError(f"bad button code {self.code!r}")


@dataclass(frozen=True)
class Pressed:
    """What a pressed button's callback data names."""

    code: str
    digest_id: str
    index: int | None = None


def callback_data(code: str, digest_id: str, index: int | None = None) -> str:
    """Return the callback data of a button; ValueError if it would not fit Telegram's 64 bytes."""
    data = f"{code}:{digest_id}" if index is None else f"{code}:{digest_id}:{index}"
    if len(data.encode("utf-8")) > CALLBACK_MAX_BYTES or read_callback_data(data) is None:
        raise ValueError(f"callback data {data!r} is not valid")
    return data


def read_callback_data(data: object) -> Pressed | None:
    """Read callback data written by callback_data(); None for anything else."""
    if not isinstance(data, str) or len(data.encode("utf-8")) > CALLBACK_MAX_BYTES:
        return None
    match = _DATA_RE.match(data)
    if match is None:
        return None
    return Pressed(match.group(1), match.group(2), int(match.group(3)) if match.group(3) is not None else None)


def digest_keyboard(digest_id: str, numbers: Sequence[str], kinds: Sequence[ButtonKind]) -> dict[str, Any] | None:
    """Return the inline keyboard of a digest: the whole-digest buttons in one row, then one row per request."""
    rows: list[list[dict[str, str]]] = []
    whole = [{"text": kind.label, "callback_data": callback_data(kind.code, digest_id)}
             for kind in kinds if not kind.per_request]
    if whole:
        rows.append(whole)
    for index, number in enumerate(numbers):
        row = [{"text": f"{kind.label}: {number}", "callback_data": callback_data(kind.code, digest_id, index)}
               for kind in kinds if kind.per_request]
        if row:
            rows.append(row)
    return {"inline_keyboard": rows} if rows else None
