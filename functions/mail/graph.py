"""Read the contractor's mail through Microsoft Graph: folder lookup, delta paging, the 5,000 cap.

The client follows `@odata.nextLink` page by page and hands back a resume token (the next
page, or the delta link once the folder is read to the end) for the next pass. The first
round of a delta is filtered to the look-back window, and Graph returns at most 5,000
messages for a filtered delta: when a round reaches that many, the window is read again by
received time (graph_resume.py), so no message is lost, only read twice. Sign-in, retries,
throttling and "not before" are graph_http.py's.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from .graph_http import (  # noqa: F401 - the names callers import from here
    DEFAULT_TIMEOUT,
    GRAPH_VERSION,
    GraphError,
    GraphThrottled,
    GraphTransport,
    SyncStateExpired,
    forget_sign_in_apps,
    parse_not_before,
)
from .graph_resume import ResumeState, Window, seen_key
from .message import GraphMessage, message_from_graph

logger = logging.getLogger(__name__)

MESSAGE_FIELDS = ("subject", "body", "uniqueBody", "from", "receivedDateTime",
                  "internetMessageId", "conversationId")
WELL_KNOWN_FOLDERS = frozenset({
    "archive", "clutter", "conflicts", "conversationhistory", "deleteditems", "drafts", "inbox",
    "junkemail", "localfailures", "msgfolderroot", "outbox", "recoverableitemsdeletions",
    "scheduled", "searchfolders", "sentitems", "serverfailures", "syncissues",
})
MAX_PAGE_SIZE = 50
MAX_PAGES_PER_BATCH = 200
# "Applying $filter in a delta query returns only up to 5,000 messages" (Graph, delta query for messages).
DELTA_FILTER_CAP = 5000
# The window read again after a capped round ends this long after that pass: clocks differ a little.
WINDOW_MARGIN = timedelta(minutes=10)
TEXT_BODY = 'outlook.body-content-type="text"'


class FolderNotFound(GraphError):
    """A segment of OMIS_OUTLOOK_FOLDER does not exist; the message lists what does."""

    def __init__(self, path: str, missing: str, parent: str, existing: list[str], mailbox: str) -> None:
        names = ", ".join(f"«{name}»" for name in existing)
        there = f"Есть: {names}." if names else "Вложенных папок там нет."
        super().__init__(f"Папка «{path}» не найдена в ящике {mailbox}: в {parent} нет папки «{missing}». "
                         f"{there} Проверьте OMIS_OUTLOOK_FOLDER.", status=404, code="FolderNotFound")
        self.path = path
        self.missing = missing
        self.existing = existing


@dataclass
class MailBatch:
    """What one pass read, and where the next pass goes on."""

    messages: list[GraphMessage]
    resume_link: str
    complete: bool
    calls: int
    restarted: bool = False


def _stamp(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


class GraphMailClient(GraphTransport):
    """Read one mailbox folder through Graph for one pass (sign-in shared, folder id cached).

    Keyword arguments are GraphTransport's (session, sleep, clock, not_before, max_retries,
    timeout, wait_budget), plus delta_filter_cap: how many messages a filtered delta returns
    at most (Graph's 5,000 unless a test says otherwise).
    """

    RETRY_LATER = "почта будет прочитана в следующий раз"

    def __init__(self, *args: Any, delta_filter_cap: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._delta_cap = DELTA_FILTER_CAP if delta_filter_cap is None else delta_filter_cap
        self._folder_id: str | None = None

    @property
    def state_key(self) -> str:
        """Name what a resume link belongs to: keep links per key, drop them when it changes."""
        s = self._settings
        return f"{s.graph_url}|{s.outlook_email}|{s.outlook_folder}".lower()

    # -- folders ---------------------------------------------------------------------------

    def resolve_folder(self) -> str:
        """Return the Graph id of OMIS_OUTLOOK_FOLDER, looking it up once per client."""
        if self._folder_id is not None:
            return self._folder_id
        path = self._settings.outlook_folder.strip("/") or "Inbox"
        segments = [s.strip() for s in path.split("/") if s.strip()]
        folder: dict[str, Any] | None = None
        if segments[0].lower() in WELL_KNOWN_FOLDERS:
            try:
                folder = self._get(f"{self._mailbox_url}/mailFolders/{segments[0].lower()}",
                                   params={"$select": "id,displayName"})
            except GraphError as exc:
                if exc.status not in (400, 404):
                    raise
        if folder is None:
            folder = self._child(f"{self._mailbox_url}/mailFolders", segments[0], path, "корне ящика")
        for name in segments[1:]:
            url = f"{self._mailbox_url}/mailFolders/{quote(folder['id'], safe='')}/childFolders"
            folder = self._child(url, name, path, f"«{folder.get('displayName') or name}»")
        self._folder_id = folder["id"]
        logger.info("Reading mail folder %s", path)
        return self._folder_id

    def _child(self, url: str, name: str, path: str, parent: str) -> dict[str, Any]:
        """Find a folder by display name (case-insensitive) among all pages of a listing, hidden ones too."""
        names: list[str] = []
        params: dict[str, str] | None = {"$select": "id,displayName", "$top": "100",
                                         "includeHiddenFolders": "true"}
        next_url: str | None = url
        while next_url:
            page = self._get(next_url, params=params)
            params = None
            for folder in page.get("value", []):
                display_name = folder.get("displayName") or ""
                if display_name.casefold() == name.casefold():
                    return folder
                names.append(display_name)
            next_url = page.get("@odata.nextLink")
        raise FolderNotFound(path, name, parent, names, self._settings.outlook_email or "")

    # -- messages --------------------------------------------------------------------------

    def read_messages(self, resume_link: str | None, *, now: datetime) -> MailBatch:
        """Read up to OMIS_OUTLOOK_MAX_MESSAGES new messages, from resume_link or the look-back window.

        A resume link Graph no longer knows (410 Gone, syncStateNotFound) or one on another
        Graph host is replaced by a fresh read of the look-back window, once, with
        `restarted=True`; messages seen before may come again and must be applied idempotently.
        A second expiry in the same call raises SyncStateExpired. New mail (the delta) is read
        first; a window left to read after a capped round takes what the limit leaves.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        calls_before = self.calls
        restarted = False
        state = ResumeState.decode(resume_link)
        if state.link is not None and not self._is_own_link(state.link):
            logger.warning("The stored resume link is not on %s: reading the look-back window again",
                           self._settings.graph_url)
            state, restarted = replace(state, link=None, round_since=None, round_count=0), True
        collected: dict[str, GraphMessage] = {}
        try:
            state, delta_done = self._read_delta(state, now, collected)
        except SyncStateExpired as exc:
            logger.warning("Graph sync state expired (%s %s): reading the look-back window again",
                           exc.status, exc.code)
            restarted = True
            state, delta_done = self._read_delta(replace(state, link=None, round_since=None, round_count=0),
                                                 now, collected)
        if delta_done and state.window is not None:
            state = replace(state, window=self._read_window(state.window, collected))
        messages = sorted(collected.values(), key=lambda m: (m.received, m.graph_id))
        complete = delta_done and state.window is None
        batch = MailBatch(messages, state.encode(), complete, self.calls - calls_before, restarted)
        logger.info("Read %d message(s) from Graph in %d call(s)%s%s", len(messages), batch.calls,
                    "" if complete else ", more to come", ", restarted from the look-back window"
                    if restarted else "")
        return batch

    def _room(self, collected: dict[str, GraphMessage]) -> int:
        return self._settings.outlook_max_messages - len(collected)

    def _keep(self, item: dict[str, Any], collected: dict[str, GraphMessage]) -> GraphMessage | None:
        if "@removed" in item:
            return None
        message = message_from_graph(item)
        if message is not None:
            collected.setdefault(message.graph_id, message)
        return message

    def _read_delta(self, state: ResumeState, now: datetime,
                    collected: dict[str, GraphMessage]) -> tuple[ResumeState, bool]:
        """Follow delta pages until the delta link or the message limit; return the new state and whether done."""
        params: dict[str, str] | None = None
        link, since, count = state.link, state.round_since, state.round_count
        if link is None:
            since = (now - timedelta(minutes=self._settings.outlook_lookback_minutes)).astimezone(timezone.utc)
            since = since.replace(microsecond=0)
            count = 0
            link = f"{self._mailbox_url}/mailFolders/{quote(self.resolve_folder(), safe='')}/messages/delta"
            # changeType=created: a message marked read or categorised is not read again.
            params = {"$select": ",".join(MESSAGE_FIELDS), "$filter": f"receivedDateTime ge {_stamp(since)}",
                      "changeType": "created"}
        for _ in range(MAX_PAGES_PER_BATCH):
            # Ask for no more than is still allowed, so a batch ends at a page boundary within the limit.
            page_size = max(1, min(MAX_PAGE_SIZE, self._room(collected)))
            page = self._get(link, params=params, sync=True, prefer=f"{TEXT_BODY}, odata.maxpagesize={page_size}")
            params = None
            values = page.get("value", [])
            count += len(values)
            for item in values:
                self._keep(item, collected)
            if page.get("@odata.deltaLink"):
                window = state.window
                if since is not None and count >= self._delta_cap:
                    logger.warning("Graph returned %d messages for the look-back window, its limit for a "
                                   "filtered delta: reading the window again by received time", count)
                    window = Window(since, now + WINDOW_MARGIN).union(window)
                return ResumeState(page["@odata.deltaLink"], None, 0, window), True
            if not page.get("@odata.nextLink"):
                raise GraphError("Microsoft Graph не вернул ни @odata.nextLink, ни @odata.deltaLink")
            link = page["@odata.nextLink"]
            if self._room(collected) <= 0:
                break
        return ResumeState(link, since, count if since is not None else 0, state.window), False

    def _read_window(self, window: Window, collected: dict[str, GraphMessage]) -> Window | None:
        """Read messages of the window oldest first within the limit; return what is left, or None."""
        url = f"{self._mailbox_url}/mailFolders/{quote(self.resolve_folder(), safe='')}/messages"
        next_link: str | None = None
        for _ in range(MAX_PAGES_PER_BATCH):
            room = self._room(collected)
            if room <= 0:
                return window
            top = min(MAX_PAGE_SIZE, room)
            if next_link:
                page = self._get(next_link, prefer=TEXT_BODY)
            else:
                page = self._get(url, prefer=TEXT_BODY, params={
                    "$select": ",".join(MESSAGE_FIELDS), "$orderby": "receivedDateTime asc", "$top": str(top),
                    "$filter": f"receivedDateTime ge {_stamp(window.start)} and receivedDateTime le "
                               f"{_stamp(window.end)}"})
            page_start = window.start
            for item in page.get("value", []):
                message = message_from_graph(item) if "@removed" not in item else None
                if message is None:
                    continue
                key = seen_key(message.graph_id)
                if window.has_read(message.received, key):
                    continue
                if self._room(collected) <= 0:  # a page of Graph's own paging may hold more than is left
                    return window
                collected.setdefault(message.graph_id, message)
                window = window.advance(message.received, key)
            if not page.get("@odata.nextLink"):
                logger.info("Read the look-back window through to %s", _stamp(window.end))
                return None
            # Keyset paging from the last received time; Graph's own next page only while a page
            # does not get past one received second (more messages share it than a page holds).
            next_link = None if window.start > page_start else page["@odata.nextLink"]
        return window
