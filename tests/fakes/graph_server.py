"""A fake Microsoft Entra sign-in endpoint and Microsoft Graph mail API on one loopback HTTPS port.

It speaks the real protocol so the real msal and requests code runs against it:
OpenID configuration and the client-credentials token endpoint (secret or certificate),
mailFolders / childFolders with paging (hidden folders only with `includeHiddenFolders=true`),
messages/delta with skip and delta tokens, `$select`, `$filter=receivedDateTime ge|gt` (a
filtered first round returns at most `filter_cap` messages, 5,000 as Graph documents; the
rest are silently treated as synced), `changeType`, `Prefer: odata.maxpagesize` and
`Prefer: outlook.body-content-type`; message listings, sendMail and reply are graph_mail.py's.
Faults (429, 5xx, 410, slow answers) are scriptable.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import html
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import parseaddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .graph_mail import MailActions
from .tls import TlsMaterial, shared_tls_material, wrap_server

WELL_KNOWN_FOLDERS = {
    "inbox": "Inbox", "drafts": "Drafts", "sentitems": "Sent Items",
    "deleteditems": "Deleted Items", "junkemail": "Junk Email", "archive": "Archive",
}
DEFAULT_PAGE_SIZE = 10

_GRAPH_PATH = re.compile(
    r"^/v1\.0/users/(?P<user>[^/]+)/mailfolders"
    r"(?:/(?P<fid>[^/(']+)|\('(?P<fid2>[^']+)'\))?"
    r"(?P<rest>/childfolders|/messages/delta|/messages)?/?$",
    re.IGNORECASE,
)
_SEND_PATH = re.compile(r"^/v1\.0/users/(?P<user>[^/]+)/sendmail/?$", re.IGNORECASE)
_REPLY_PATH = re.compile(r"^/v1\.0/users/(?P<user>[^/]+)/messages/(?P<mid>[^/]+)/reply/?$", re.IGNORECASE)
FILTER_CAP = 5000  # "Applying $filter in a delta query returns only up to 5,000 messages."
_FILTER = re.compile(r"^\s*receivedDateTime\s+(ge|gt)\s+(\S+)\s*$", re.IGNORECASE)


@dataclass
class Call:
    """One request the fake received; header names are lower-case."""

    kind: str  # "login" or "graph"
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)  # sign-in POST bodies
    status: int = 0     # 0: the connection was cut without an answer
    body: bytes = b""


@dataclass
class Fault:
    """A scripted answer for the next matching calls."""

    remaining: int
    status: int | None = None
    retry_after: str | None = None
    code: str | None = None
    message: str | None = None
    delay: float = 0.0
    path_contains: str | None = None
    login: bool = False
    after: int = 0                              # matching calls let through before this fault starts
    barrier: threading.Barrier | None = None    # matching calls wait for each other, then go on


@dataclass
class FakeFolder:
    id: str
    display_name: str
    parent_id: str | None
    well_known: str | None = None
    children: list[str] = field(default_factory=list)
    hidden: bool = False


@dataclass
class FakeMessage:
    id: str
    folder_id: str
    subject: str
    body: str
    unique_body: str | None
    sender_name: str
    sender_address: str
    received: dt.datetime
    internet_message_id: str
    conversation_id: str
    version: int = 1
    html_body: str | None = None   # the message's own HTML, served when text is not asked for


@dataclass(frozen=True)
class _DeltaParams:
    select: tuple[str, ...] | None
    since: dt.datetime | None
    strictly_after: bool
    change_type: str | None
    top: int | None


@dataclass
class _Round:
    """One enumeration of changes; skip tokens point into its entries."""

    folder_id: str
    params: _DeltaParams
    base: dict[str, int]
    entries: list[tuple[str, str]]  # ("message" | "removed", id)
    generation: int
    dropped: list[str] = field(default_factory=list)  # cut by the filter cap, yet counted as synced


@dataclass
class _DeltaState:
    folder_id: str
    params: _DeltaParams
    known: dict[str, int]
    generation: int


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeGraph(MailActions):
    """Serve a fake Entra tenant and one fake mailbox on https://127.0.0.1:PORT."""

    def __init__(self, *, tenant: str = "0d7a11c5-6f42-4c8e-9a65-0a1b2c3d4e5f",
                 client_id: str = "4f1c2b3a-5d6e-4f70-8a9b-0c1d2e3f4a5b",
                 client_secret: str = "fake-secret-Xy9~kq",
                 mailbox: str = "omis@contoso.example",
                 page_cap: int | None = None,
                 token_lifetime: int = 3599,
                 tls: TlsMaterial | None = None) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.mailbox = mailbox
        self.page_cap = page_cap
        self.token_lifetime = token_lifetime
        self.ignore_body_preference = False  # answer HTML bodies even when text is preferred
        self.filter_cap = FILTER_CAP        # messages a filtered delta round returns at most
        self.filter_cap_keeps = "newest"    # which of them: "newest" or "oldest" (Graph does not say)
        self.tls = tls or shared_tls_material()
        self.last_correlation_id: str | None = None
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._faults: list[Fault] = []
        self._tokens: dict[str, tuple[str, float]] = {}
        self._certificates: list[x509.Certificate] = []
        self._ids = itertools.count(1)
        self._folders: dict[str, FakeFolder] = {}
        self._messages: dict[str, FakeMessage] = {}
        self._rounds: dict[str, _Round] = {}
        self._delta_states: dict[str, _DeltaState] = {}
        self._generation = 0
        self._expiry = (410, "SyncStateNotFound")
        root = FakeFolder(self._new_id("FLD"), "Top of Information Store", None, "msgfolderroot")
        self._folders[root.id] = root
        self._root_id = root.id
        for well_known, name in WELL_KNOWN_FOLDERS.items():
            self._make_folder(root, name, well_known)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._init_mail()

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeGraph:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on a free loopback port."""
        fake = self

        class Handler(_Handler):
            owner = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        wrap_server(server, self.tls)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-graph", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeGraph is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def authority_host(self) -> str:
        return self.base_url

    @property
    def graph_url(self) -> str:
        """The Graph root without a version, like OMIS_GRAPH_URL (the client adds /v1.0)."""
        return self.base_url

    @property
    def ca_bundle(self) -> str:
        return str(self.tls.ca_bundle)

    def env(self, **overrides: str) -> dict[str, str]:
        """Return OMIS_* settings that point OMIS at this fake."""
        values = {
            "OMIS_OUTLOOK_EMAIL": self.mailbox,
            "OMIS_OUTLOOK_TENANT_ID": self.tenant,
            "OMIS_OUTLOOK_CLIENT_ID": self.client_id,
            "OMIS_OUTLOOK_CLIENT_SECRET": self.client_secret,
            "OMIS_GRAPH_URL": self.graph_url,
            "OMIS_AUTHORITY_HOST": self.authority_host,
            "OMIS_SECRET_KEY": "test-secret-key",
        }
        values.update(overrides)
        return values

    # -- what happened -------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def graph_calls(self, path_contains: str = "") -> list[Call]:
        """Return the Graph calls, optionally only those whose path contains a text."""
        return [c for c in self.calls
                if c.kind == "graph" and path_contains.lower() in c.path.lower()]

    def login_calls(self, path_contains: str = "") -> list[Call]:
        """Return the sign-in calls, optionally only those whose path contains a text."""
        return [c for c in self.calls if c.kind == "login" and path_contains in c.path]

    @property
    def token_requests(self) -> int:
        return len(self.login_calls("/oauth2/v2.0/token"))

    @property
    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    # -- the mailbox ---------------------------------------------------------------------

    def _new_id(self, kind: str) -> str:
        # Real ids are base64 with '-', '_' and '=': keep those characters to test quoting.
        return f"AAMk{kind}-{next(self._ids):04d}_x="

    def _make_folder(self, parent: FakeFolder, name: str, well_known: str | None = None,
                     hidden: bool = False) -> FakeFolder:
        folder = FakeFolder(self._new_id("FLD"), name, parent.id, well_known, hidden=hidden)
        self._folders[folder.id] = folder
        parent.children.append(folder.id)
        return folder

    def _top_level(self, segment: str) -> FakeFolder | None:
        root = self._folders[self._root_id]
        if segment.lower() == "msgfolderroot":
            return root
        for child_id in root.children:
            child = self._folders[child_id]
            if child.well_known == segment.lower():
                return child
        return self._child_named(root, segment)

    def _child_named(self, parent: FakeFolder, name: str) -> FakeFolder | None:
        for child_id in parent.children:
            child = self._folders[child_id]
            if child.display_name.casefold() == name.casefold():
                return child
        return None

    def add_folder(self, path: str, *, hidden: bool = False) -> str:
        """Create the folders of a '/'-separated path that do not exist, hidden ones if asked; return the last id."""
        with self._lock:
            segments = [s for s in path.split("/") if s]
            folder = self._top_level(segments[0])
            if folder is None:
                folder = self._make_folder(self._folders[self._root_id], segments[0], hidden=hidden)
            for name in segments[1:]:
                folder = self._child_named(folder, name) or self._make_folder(folder, name, hidden=hidden)
            return folder.id

    def folder_id(self, path: str) -> str:
        """Return the id of an existing folder path."""
        with self._lock:
            segments = [s for s in path.split("/") if s]
            folder = self._top_level(segments[0])
            for name in segments[1:]:
                folder = folder and self._child_named(folder, name)
            if folder is None:
                raise KeyError(path)
            return folder.id

    def add_message(self, folder_path: str, subject: str, body: str, received: dt.datetime,
                    sender: str = "Подрядчик <contractor@example.net>", *,
                    internet_message_id: str | None = None, conversation_id: str | None = None,
                    unique_body: str | None = None, html_body: str | None = None) -> str:
        """Deliver a message into a folder (created when missing); return its Graph id.

        html_body: the message as its sender's client wrote it, served as is when Graph answers
        in HTML (`body` is then the text Exchange would make of it).
        """
        folder_id = self.add_folder(folder_path)
        name, address = parseaddr(sender)
        with self._lock:
            message_id = self._new_id("MSG")
            number = message_id.split("-")[1][:4]
            self._messages[message_id] = FakeMessage(
                id=message_id, folder_id=folder_id, subject=subject, body=body,
                unique_body=unique_body, sender_name=name or address, sender_address=address,
                received=received.astimezone(dt.timezone.utc),
                internet_message_id=internet_message_id or f"<fake-{number}@example.net>",
                conversation_id=conversation_id or f"AAQkConv-{number}=", html_body=html_body)
            return message_id

    def touch_message(self, message_id: str) -> None:
        """Change a message (as marking it read would): delta reports it as updated."""
        with self._lock:
            self._messages[message_id].version += 1

    def delete_message(self, message_id: str) -> None:
        """Remove a message: delta reports it with @removed."""
        with self._lock:
            del self._messages[message_id]

    # -- scripting -----------------------------------------------------------------------

    def fail_next(self, count: int, status: int | None = None, *, retry_after: str | int | None = None,
                  code: str | None = None, message: str | None = None, delay: float = 0.0,
                  path_contains: str | None = None, login: bool = False, after: int = 0) -> None:
        """Answer the next `count` matching calls with an error status and/or after a delay.

        after: let that many matching calls through first (a failure in the middle of paging).
        """
        with self._lock:
            self._faults.append(Fault(count, status, None if retry_after is None else str(retry_after),
                                      code, message, delay, path_contains, login, after))

    def clear_faults(self) -> None:
        """Forget every scripted fault (an outage is over)."""
        with self._lock:
            self._faults.clear()

    def meet_next(self, count: int, *, path_contains: str | None = None, timeout: float = 30.0) -> None:
        """Hold the next `count` matching calls until all of them have arrived (overlapping passes)."""
        with self._lock:
            self._faults.append(Fault(count, path_contains=path_contains,
                                      barrier=threading.Barrier(count, timeout=timeout)))

    def expire_sync_states(self, status: int = 410, code: str = "SyncStateNotFound") -> None:
        """Make every skip and delta token issued so far unusable."""
        with self._lock:
            self._generation += 1
            self._expiry = (status, code)

    def revoke_tokens(self) -> None:
        """Forget every access token issued so far (Graph answers 401)."""
        with self._lock:
            self._tokens.clear()

    def register_certificate(self, certificate_pem: bytes) -> None:
        """Accept client assertions signed with this certificate's key."""
        with self._lock:
            self._certificates.append(x509.load_pem_x509_certificate(certificate_pem))

    # -- request handling (called from handler threads) ----------------------------------

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def _take_fault(self, call: Call) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining <= 0 or fault.login != (call.kind == "login"):
                    continue
                if fault.path_contains and fault.path_contains.lower() not in call.path.lower():
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.remaining -= 1
                return fault
        return None

    def _token_ok(self, authorization: str) -> str | None:
        """Return None when the bearer token is valid, else why not."""
        if not authorization.startswith("Bearer "):
            return "Access token is empty."
        with self._lock:
            entry = self._tokens.get(authorization[len("Bearer "):])
        if entry is None:
            return "Lifetime validation failed, the token is expired."
        scope, expires = entry
        if time.monotonic() > expires:
            return "Lifetime validation failed, the token is expired."
        if scope != f"{self.graph_url}/.default":
            return "Access token validation failure. Invalid audience."
        return None

    def _issue_token(self, scope: str) -> str:
        token = "fake-at-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (scope, time.monotonic() + self.token_lifetime)
        return token

    def _check_assertion(self, assertion: str, token_endpoint: str) -> tuple[int, str] | None:
        """Return None when the client assertion is signed by a registered certificate."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            return 50027, f"JWT token is invalid or malformed: {exc}"
        with self._lock:
            certificates = list(self._certificates)
        for cert in certificates:
            der = cert.public_bytes(serialization.Encoding.DER)
            # msal keeps the base64 padding; compare without it.
            sha1 = _b64url(hashlib.sha1(der).digest())  # noqa: S324 - the x5t header is a SHA-1 thumbprint
            if str(header.get("x5t#S256", "")).rstrip("=") != _b64url(hashlib.sha256(der).digest()) and \
                    str(header.get("x5t", "")).rstrip("=") != sha1:
                continue
            try:
                jwt.decode(assertion, cert.public_key(), algorithms=["RS256", "PS256"],
                           audience=token_endpoint, issuer=self.client_id)
            except jwt.PyJWTError as exc:
                return 700027, f"Client assertion failed signature validation: {exc}"
            return None
        return 700027, ("The certificate with identifier used to sign the client assertion "
                        "is not registered on application.")

    # -- Graph ---------------------------------------------------------------------------

    def _folder_by_ref(self, ref: str) -> FakeFolder | None:
        if ref in self._folders:
            return self._folders[ref]
        if ref.lower() in WELL_KNOWN_FOLDERS or ref.lower() == "msgfolderroot":
            return self._top_level(ref)
        return None

    def _folder_json(self, folder: FakeFolder, select: tuple[str, ...] | None) -> dict[str, Any]:
        full = {
            "id": folder.id, "displayName": folder.display_name,
            "parentFolderId": folder.parent_id, "childFolderCount": len(folder.children),
            "unreadItemCount": 0,
            "totalItemCount": sum(1 for m in self._messages.values() if m.folder_id == folder.id),
            "isHidden": folder.hidden,
        }
        return _select(full, select)

    def _message_json(self, message: FakeMessage, select: tuple[str, ...] | None,
                      text_body: bool) -> dict[str, Any]:
        def body(text: str) -> dict[str, str]:
            if text_body:
                return {"contentType": "text", "content": text}
            if message.html_body is not None and text == message.body:
                return {"contentType": "html", "content": message.html_body}
            paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in text.split("\n"))
            return {"contentType": "html", "content": f"<html><body>{paragraphs}</body></html>"}

        address = {"emailAddress": {"name": message.sender_name, "address": message.sender_address}}
        full = {
            "@odata.type": "#microsoft.graph.message",
            "@odata.etag": f'W/"CQAAABYAAA{message.version:04d}"',
            "id": message.id,
            "receivedDateTime": _iso(message.received),
            "sentDateTime": _iso(message.received - dt.timedelta(seconds=5)),
            "internetMessageId": message.internet_message_id,
            "conversationId": message.conversation_id,
            "subject": message.subject,
            "bodyPreview": message.body[:255],
            "body": body(message.body),
            "uniqueBody": body(message.unique_body if message.unique_body is not None else message.body),
            "from": address, "sender": address,
            "toRecipients": [{"emailAddress": {"name": "OMIS", "address": self.mailbox}}],
            "isRead": False, "hasAttachments": False,
        }
        return _select(full, select, keep=("@odata.type", "@odata.etag", "id"))

    def _matching(self, folder_id: str, params: _DeltaParams) -> list[FakeMessage]:
        found = [m for m in self._messages.values() if m.folder_id == folder_id]
        if params.since is not None:
            found = [m for m in found if m.received > params.since
                     or (not params.strictly_after and m.received == params.since)]
        # Newest first, as Outlook tends to answer: the client must not rely on order.
        return sorted(found, key=lambda m: (m.received, m.id), reverse=True)

    def _link(self, folder_id: str, query: str) -> str:
        return f"{self.graph_url}/v1.0/users/{self.mailbox}/mailFolders('{folder_id}')/messages/delta?{query}"

    def graph(self, call: Call, prefer: dict[str, str]) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        """Answer one Graph call."""
        for pattern, action in ((_SEND_PATH, self._send_mail), (_REPLY_PATH, self._reply)):
            post = pattern.match(call.path)
            if post:
                if unquote(post["user"]).lower() != self.mailbox.lower():
                    return _graph_error(404, "ErrorInvalidUser",
                                        f"The requested user '{unquote(post['user'])}' is invalid.")
                if call.method != "POST":
                    return _graph_error(405, "ErrorInvalidRequest", "The OData request is not supported.")
                with self._lock:
                    return action(call, *(unquote(v) for k, v in post.groupdict().items() if k != "user"))
        match = _GRAPH_PATH.match(call.path)
        if not match:
            return _graph_error(400, "BadRequest", f"Resource not found for the segment '{call.path}'.")
        if unquote(match["user"]).lower() != self.mailbox.lower():
            return _graph_error(404, "ErrorInvalidUser",
                                f"The requested user '{unquote(match['user'])}' is invalid.")
        ref = match["fid"] or match["fid2"]
        rest = (match["rest"] or "").lower()
        with self._lock:
            if ref is None:
                return self._list_folders(self._folders[self._root_id], call, prefer)
            folder = self._folder_by_ref(unquote(ref))
            if folder is None:
                return _graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            if rest == "/childfolders":
                return self._list_folders(folder, call, prefer)
            if rest == "/messages/delta":
                return self._delta(folder, call, prefer)
            if rest == "/messages":
                return self._list_messages(folder, call, prefer)
            select = _select_param(call.query)
            return 200, {"@odata.context": f"{self.graph_url}/v1.0/$metadata#users('{self.mailbox}')/mailFolders/$entity",
                         **self._folder_json(folder, select)}, {}

    def _list_folders(self, parent: FakeFolder, call: Call,
                      prefer: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        top = int(call.query.get("$top") or prefer.get("odata.maxpagesize") or DEFAULT_PAGE_SIZE)
        if self.page_cap:
            top = min(top, self.page_cap)
        skip = int(call.query.get("$skip") or 0)
        select = _select_param(call.query)
        hidden_too = call.query.get("includeHiddenFolders", "").lower() == "true"
        children = [self._folders[i] for i in parent.children if hidden_too or not self._folders[i].hidden]
        page = children[skip:skip + top]
        body: dict[str, Any] = {"value": [self._folder_json(f, select) for f in page]}
        if skip + len(page) < len(children):
            query = f"$top={top}&$skip={skip + len(page)}"
            if "$select" in call.query:
                query += f"&$select={call.query['$select']}"
            if hidden_too:
                query += "&includeHiddenFolders=true"
            segment = "childFolders" if parent.id != self._root_id else ""
            base = f"{self.graph_url}/v1.0/users/{self.mailbox}/mailFolders"
            body["@odata.nextLink"] = (f"{base}('{parent.id}')/{segment}?{query}" if segment
                                       else f"{base}?{query}")
        return 200, body, {}

    def _delta(self, folder: FakeFolder, call: Call,
               prefer: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        skiptoken = call.query.get("$skiptoken")
        deltatoken = call.query.get("$deltatoken")
        if skiptoken is not None:
            round_id, _, offset_text = skiptoken.partition("~")
            sync_round = self._rounds.get(round_id)
            if sync_round is None or sync_round.generation < self._generation or not offset_text.isdigit():
                return self._expired(folder)
            offset = int(offset_text)
        elif deltatoken:
            state = self._delta_states.get(deltatoken)
            if state is None or state.generation < self._generation:
                return self._expired(folder)
            sync_round = self._next_round(state)
            offset = 0
        else:
            params = _delta_params(call.query)
            if isinstance(params, str):
                return _graph_error(400, "ErrorInvalidUrlQueryFilter", params)
            found = [m.id for m in self._matching(folder.id, params)]   # newest first
            dropped: list[str] = []
            if params.since is not None and len(found) > self.filter_cap:
                keep = found[:self.filter_cap] if self.filter_cap_keeps == "newest" else found[-self.filter_cap:]
                dropped = [i for i in found if i not in set(keep)]
                found = keep
            sync_round = _Round(folder.id, params, {}, [("message", i) for i in found], self._generation,
                                dropped)
            offset = 0
        round_id = secrets.token_urlsafe(8)
        self._rounds[round_id] = sync_round
        size = int(prefer.get("odata.maxpagesize") or sync_round.params.top or DEFAULT_PAGE_SIZE)
        if self.page_cap:
            size = min(size, self.page_cap)
        chunk = sync_round.entries[offset:offset + size]
        text_body = (prefer.get("outlook.body-content-type", "").strip('"').lower() == "text"
                     and not self.ignore_body_preference)
        value = []
        for kind, message_id in chunk:
            if kind == "removed":
                value.append({"@odata.type": "#microsoft.graph.message", "id": message_id,
                              "@removed": {"reason": "deleted"}})
            elif message_id in self._messages:
                value.append(self._message_json(self._messages[message_id], sync_round.params.select,
                                                text_body))
        body: dict[str, Any] = {"@odata.context": f"{self.graph_url}/v1.0/$metadata#Collection(message)",
                                "value": value}
        if offset + len(chunk) < len(sync_round.entries):
            body["@odata.nextLink"] = self._link(folder.id, f"$skiptoken={round_id}~{offset + len(chunk)}")
        else:
            known = dict(sync_round.base)
            known.update({i: self._messages[i].version for i in sync_round.dropped if i in self._messages})
            for kind, message_id in sync_round.entries:
                if kind == "removed":
                    known.pop(message_id, None)
                elif message_id in self._messages:
                    known[message_id] = self._messages[message_id].version
            token = secrets.token_urlsafe(12)
            self._delta_states[token] = _DeltaState(folder.id, sync_round.params, known, self._generation)
            body["@odata.deltaLink"] = self._link(folder.id, f"$deltatoken={token}")
        applied = [f"odata.maxpagesize={size}"] if "odata.maxpagesize" in prefer else []
        if text_body:
            applied.append('outlook.body-content-type="text"')
        return 200, body, ({"Preference-Applied": ", ".join(applied)} if applied else {})

    def _next_round(self, state: _DeltaState) -> _Round:
        current = self._matching(state.folder_id, state.params)
        change_type = (state.params.change_type or "").lower()
        entries: list[tuple[str, str]] = []
        for message in current:
            if message.id not in state.known:
                if change_type in ("", "created"):
                    entries.append(("message", message.id))
            elif state.known[message.id] != message.version and change_type in ("", "updated"):
                entries.append(("message", message.id))
        if change_type in ("", "deleted"):
            present = {m.id for m in current}
            entries += [("removed", i) for i in state.known if i not in present]
        return _Round(state.folder_id, state.params, dict(state.known), entries, self._generation)

    def _expired(self, folder: FakeFolder) -> tuple[int, dict[str, Any], dict[str, str]]:
        status, code = self._expiry
        status_code, body, headers = _graph_error(
            status, code, "The sync state generation is not found. The delta token is expired "
                          "and data must be synchronized again.")
        if status == 410:
            headers["Location"] = self._link(folder.id, "$deltatoken=")
        return status_code, body, headers

    # -- sign-in -------------------------------------------------------------------------

    def login(self, call: Call, form: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one sign-in call."""
        parts = call.path.strip("/").split("/")
        if call.path == "/common/discovery/instance":
            host = f"127.0.0.1:{self.port}"
            return 200, {"tenant_discovery_endpoint":
                         f"{self.base_url}/{self.tenant}/v2.0/.well-known/openid-configuration",
                         "api-version": "1.1",
                         "metadata": [{"preferred_network": host, "preferred_cache": host,
                                       "aliases": [host]}]}, {}
        correlation_id = call.headers.get("client-request-id") or str(uuid.uuid4())
        self.last_correlation_id = correlation_id
        tenant = parts[0] if parts else ""
        if tenant != self.tenant:
            return self._login_error(400, "invalid_tenant", 90002,
                                     f"Tenant '{tenant}' not found.", correlation_id)
        base = f"{self.base_url}/{self.tenant}"
        if call.method == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return 200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{base}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post", "private_key_jwt", "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "tenant_region_scope": "EU",
            }, {}
        if call.method != "POST" or parts[1:] != ["oauth2", "v2.0", "token"]:
            return self._login_error(404, "invalid_request", 900561, "Endpoint not found.", correlation_id)
        if form.get("grant_type") != "client_credentials":
            return self._login_error(400, "unsupported_grant_type", 70003,
                                     "The app requested an unsupported grant type.", correlation_id)
        if form.get("client_id") != self.client_id:
            return self._login_error(400, "unauthorized_client", 700016,
                                     f"Application with identifier '{form.get('client_id')}' was not "
                                     f"found in the directory '{self.tenant}'.", correlation_id)
        if "client_assertion" in form:
            problem = self._check_assertion(form["client_assertion"], f"{base}/oauth2/v2.0/token")
            if problem:
                return self._login_error(401, "invalid_client", *problem, correlation_id)
        elif form.get("client_secret") != self.client_secret:
            return self._login_error(
                401, "invalid_client", 7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the "
                f"client secret value, not the client secret ID, for a secret added to app '{self.client_id}'.",
                correlation_id)
        scope = form.get("scope", "")
        if not scope.endswith("/.default") or " " in scope:
            return self._login_error(400, "invalid_scope", 1002012,
                                     f"The provided value for scope {scope} is not valid.", correlation_id)
        return 200, {"token_type": "Bearer", "expires_in": self.token_lifetime,
                     "ext_expires_in": self.token_lifetime,
                     "access_token": self._issue_token(scope)}, {}

    def _login_error(self, status: int, error: str, code: int, text: str,
                     correlation_id: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        trace_id = str(uuid.uuid4())
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        return status, {
            "error": error,
            "error_description": (f"AADSTS{code}: {text} Trace ID: {trace_id} "
                                  f"Correlation ID: {correlation_id} Timestamp: {stamp}"),
            "error_codes": [code], "timestamp": stamp, "trace_id": trace_id,
            "correlation_id": correlation_id,
        }, {}


def _select(full: dict[str, Any], select: tuple[str, ...] | None,
            keep: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    if select is None:
        return full
    wanted = {s.lower() for s in select} | {k.lower() for k in keep}
    return {k: v for k, v in full.items() if k.lower() in wanted}


def _select_param(query: dict[str, str]) -> tuple[str, ...] | None:
    raw = query.get("$select")
    return tuple(s.strip() for s in raw.split(",") if s.strip()) if raw else None


def _delta_params(query: dict[str, str]) -> _DeltaParams | str:
    since, strictly_after = None, False
    if query.get("$filter"):
        match = _FILTER.match(query["$filter"])
        if not match:
            return f"The query filter '{query['$filter']}' is not supported for delta."
        try:
            since = dt.datetime.fromisoformat(match[2].replace("Z", "+00:00"))
        except ValueError:
            return f"Invalid filter clause: '{match[2]}' is not a DateTimeOffset."
        if since.tzinfo is None:
            return f"Invalid filter clause: '{match[2]}' has no time zone."
        strictly_after = match[1].lower() == "gt"
    top = query.get("$top")
    return _DeltaParams(_select_param(query), since, strictly_after, query.get("changeType"),
                        int(top) if top and top.isdigit() else None)


def _graph_error(status: int, code: str, message: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    request_id = str(uuid.uuid4())
    return status, {"error": {"code": code, "message": message, "innerError": {
        "date": _iso(dt.datetime.now(dt.timezone.utc)), "request-id": request_id,
        "client-request-id": request_id}}}, {"request-id": request_id}


_DEFAULT_FAULT_CODES = {
    400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "ErrorAccessDenied",
    404: "ErrorItemNotFound", 410: "SyncStateNotFound", 429: "ApplicationThrottled",
    500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout",
}


def _parse_prefer(values: list[str]) -> dict[str, str]:
    prefer: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            name, _, setting = item.strip().partition("=")
            if name:
                prefer[name.strip().lower()] = setting.strip()
    return prefer


class _Handler(BaseHTTPRequestHandler):
    owner: FakeGraph
    protocol_version = "HTTP/1.1"
    # One buffered write per response and no Nagle: no 40 ms delayed-ACK stalls per call.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Keep the test output quiet."""

    def handle(self) -> None:
        # The client gave up (a timeout test) or closed the connection.
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            super().handle()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        kind = "graph" if split.path.startswith("/v1.0/") else "login"
        form = ({k: v[0] for k, v in parse_qs(raw_body.decode(), keep_blank_values=True).items()}
                if kind == "login" and method == "POST" else {})
        call = Call(kind, method, unquote(split.path), query, headers, form, body=raw_body)
        fake = self.owner
        fake._record(call)
        fault = fake._take_fault(call)
        if fault and fault.barrier:
            fault.barrier.wait()
        if fault and fault.delay:
            time.sleep(fault.delay)
            if fake._server is None:
                return  # stopped meanwhile: the client has long given up
        if fault and fault.status:
            status, body, extra = _graph_error(
                fault.status, fault.code or _DEFAULT_FAULT_CODES.get(fault.status, "UnknownError"),
                fault.message or "Scripted failure.")
            if fault.retry_after is not None:
                extra["Retry-After"] = fault.retry_after
        elif kind == "graph":
            problem = fake._token_ok(self.headers.get("Authorization", ""))
            if problem:
                status, body, extra = _graph_error(401, "InvalidAuthenticationToken", problem)
            else:
                status, body, extra = fake.graph(call, _parse_prefer(self.headers.get_all("Prefer") or []))
        else:
            status, body, extra = fake.login(call, form)
        call.status = status
        if status == 0:  # accepted, then the connection breaks before the answer (graph_mail.py)
            self.close_connection = True
            self.connection.close()
            return
        # ASCII-escaped like any JSON writer may: "\\ud800" is how a lone surrogate can reach a client.
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
