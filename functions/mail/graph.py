"""Read the contractor's mail through Microsoft Graph: app-only sign-in, folder lookup, delta paging.

One msal ConfidentialClientApplication per process signs in (it keeps the token cache); the
client follows `@odata.nextLink` page by page, honours `Retry-After`, and hands back a resume
link (the next page, or the delta link once the folder is read to the end) for the next pass.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..settings import Settings
from .message import GraphMessage, message_from_graph

logger = logging.getLogger(__name__)

GRAPH_VERSION = "v1.0"
MESSAGE_FIELDS = ("subject", "body", "uniqueBody", "from", "receivedDateTime",
                  "internetMessageId", "conversationId")
WELL_KNOWN_FOLDERS = frozenset({
    "archive", "clutter", "conflicts", "conversationhistory", "deleteditems", "drafts", "inbox",
    "junkemail", "localfailures", "msgfolderroot", "outbox", "recoverableitemsdeletions",
    "scheduled", "searchfolders", "sentitems", "serverfailures", "syncissues",
})
# Error codes Graph (and Exchange behind it) use when a skip/delta token can no longer be used.
SYNC_STATE_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid",
                              "errorinvalidsyncstatedata"})
THROTTLE_STATUSES = frozenset({429, 503, 504})
MAX_PAGE_SIZE = 50
MAX_PAGES_PER_BATCH = 200
MAX_SLEEP_SECONDS = 120.0
DEFAULT_TIMEOUT = (5.0, 30.0)
SIGN_IN_HINTS = {
    "7000215": "проверьте OMIS_OUTLOOK_CLIENT_SECRET: нужно значение секрета, а не его идентификатор",
    "7000222": "срок действия секрета истёк: создайте новый и обновите OMIS_OUTLOOK_CLIENT_SECRET",
    "700016": "проверьте OMIS_OUTLOOK_CLIENT_ID и OMIS_OUTLOOK_TENANT_ID",
    "90002": "проверьте OMIS_OUTLOOK_TENANT_ID",
    "700027": "сертификат не зарегистрирован у приложения или ключ не подходит (OMIS_OUTLOOK_CERTIFICATE_PATH)",
}


class GraphError(Exception):
    """Graph or sign-in failed; the message says what happened, in Russian."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


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


class SyncStateExpired(GraphError):
    """Graph no longer knows a resume link (410 Gone, syncStateNotFound): read the window again."""


@dataclass
class MailBatch:
    """What one pass read, and where the next pass goes on."""

    messages: list[GraphMessage]
    resume_link: str
    complete: bool
    calls: int
    restarted: bool = False


# -- sign-in -------------------------------------------------------------------------------

_apps: dict[tuple[str, str, str], msal.ConfidentialClientApplication] = {}
_apps_lock = threading.Lock()


def forget_sign_in_apps() -> None:
    """Drop the process's msal applications and their cached tokens."""
    with _apps_lock:
        for app in _apps.values():
            app.http_client.close()
        _apps.clear()


def _certificate_credential(path: str) -> tuple[dict[str, str], str]:
    """Load a PEM with a private key and its certificate; return msal's credential and the thumbprint."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise GraphError(f"Не удалось прочитать OMIS_OUTLOOK_CERTIFICATE_PATH ({path}): {exc.strerror}") from None
    key_block = re.search(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", data, re.S)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if key_block is None or not certificates:
        raise GraphError(f"OMIS_OUTLOOK_CERTIFICATE_PATH ({path}): нужен файл PEM с закрытым ключом "
                         "и сертификатом (BEGIN PRIVATE KEY и BEGIN CERTIFICATE)")
    try:
        key = serialization.load_pem_private_key(key_block.group(0), password=None)
    except (TypeError, ValueError):
        raise GraphError(f"OMIS_OUTLOOK_CERTIFICATE_PATH ({path}): закрытый ключ не читается "
                         "или защищён паролем; сохраните его без пароля") from None
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    leaf = next((c for c in certificates if c.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == public), None)
    if leaf is None:
        raise GraphError(f"OMIS_OUTLOOK_CERTIFICATE_PATH ({path}): ни один сертификат в файле "
                         "не соответствует закрытому ключу")
    # An identifier, not a signature: Entra ID names certificates by their SHA-1 thumbprint.
    thumbprint = leaf.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - what the Azure portal shows
    # With the certificate (and no SHA-1 thumbprint) msal signs with PS256 and x5t#S256.
    credential = {"private_key": key_block.group(0).decode(),
                  "public_certificate": leaf.public_bytes(serialization.Encoding.PEM).decode()}
    return credential, thumbprint


def _sign_in_app(settings: Settings, timeout: tuple[float, float]) -> msal.ConfidentialClientApplication:
    """Return the process's msal application for these settings, creating it on first use."""
    authority = f"{settings.authority_host}/{settings.outlook_tenant_id}"
    path = settings.outlook_certificate_path
    if path:
        try:  # a certificate replaced at the same path gets a new application
            fingerprint = f"cert:{path}:{Path(path).stat().st_mtime_ns}"
        except OSError:
            fingerprint = f"cert:{path}"
    else:
        fingerprint = "secret:" + hashlib.sha256((settings.outlook_client_secret or "").encode()).hexdigest()
    key = (authority.lower(), settings.outlook_client_id or "", fingerprint)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            credential: str | dict[str, str] = settings.outlook_client_secret or ""
            if path:
                credential, thumbprint = _certificate_credential(path)
                logger.info("Signing in to %s with certificate %s", authority, thumbprint)
            try:
                # instance_discovery=False: well-known hosts skip it anyway, and any other
                # configured host would make msal ask login.microsoftonline.com about it.
                app = msal.ConfidentialClientApplication(
                    settings.outlook_client_id, client_credential=credential, authority=authority,
                    instance_discovery=False, timeout=timeout)
            except requests.RequestException as exc:
                raise GraphError(f"Нет связи со службой входа {settings.authority_host}: "
                                 f"{type(exc).__name__}") from None
            except (ValueError, RuntimeError, msal.exceptions.MsalError) as exc:
                raise GraphError(f"Не удалось настроить вход через {authority}: {exc}. Проверьте "
                                 "OMIS_OUTLOOK_TENANT_ID и OMIS_AUTHORITY_HOST.") from None
            _apps[key] = app
    return app


def _sign_in_failure(result: dict[str, Any], settings: Settings) -> GraphError:
    error = result.get("error") or "unknown_error"
    description = str(result.get("error_description") or "").split(" Trace ID:")[0].splitlines()
    summary = description[0].strip() if description else ""
    codes = [str(c) for c in result.get("error_codes") or []]
    hint = next((SIGN_IN_HINTS[c] for c in codes if c in SIGN_IN_HINTS), None)
    message = (f"Microsoft Entra отказал во входе приложению {settings.outlook_client_id}: {error}"
               f"{' — ' + summary if summary else ''}"
               f" (correlation_id {result.get('correlation_id') or 'нет'})"
               f"{'; ' + hint if hint else ''}")
    if settings.outlook_client_secret:
        message = message.replace(settings.outlook_client_secret, "***")
    return GraphError(message, code=error)


# -- HTTP ----------------------------------------------------------------------------------

def _retry_after(response: requests.Response) -> float | None:
    """Return the wait Graph asked for, in seconds, or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def _error_details(response: requests.Response) -> tuple[str, str]:
    """Return Graph's error code and message from an error response."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return "", response.text[:200]
    if isinstance(error, str):  # OAuth-style bodies
        return error, ""
    return str(error.get("code") or ""), str(error.get("message") or "")


# -- the client ------------------------------------------------------------------------------

class GraphMailClient:
    """Read one mailbox folder through Graph for one process (sign-in shared, folder id cached)."""

    def __init__(self, settings: Settings, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, max_retries: int = 4,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT, max_total_wait: float = 300.0) -> None:
        missing = settings.missing_outlook_settings()
        if missing:
            raise GraphError("Не заданы настройки Outlook: " + ", ".join(missing))
        self._settings = settings
        self._session = session or requests.Session()
        self._sleep = sleep
        self._max_retries = max(0, max_retries)
        self._timeout = timeout
        self._max_total_wait = max_total_wait
        self._api = f"{settings.graph_url}/{GRAPH_VERSION}"
        self._mailbox_url = f"{self._api}/users/{quote(settings.outlook_email or '', safe='@')}"
        self._scope = f"{settings.graph_url}/.default"
        self._folder_id: str | None = None
        self.calls = 0

    @property
    def state_key(self) -> str:
        """Name what a resume link belongs to: keep links per key, drop them when it changes."""
        s = self._settings
        return f"{s.graph_url}|{s.outlook_email}|{s.outlook_folder}".lower()

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    # -- sign-in and HTTP ------------------------------------------------------------------

    def _token(self, *, fresh: bool = False) -> str:
        app = _sign_in_app(self._settings, self._timeout)
        if fresh:
            app.remove_tokens_for_client()
        try:
            result = app.acquire_token_for_client(scopes=[self._scope])
        except requests.RequestException as exc:
            raise GraphError(f"Нет связи со службой входа {self._settings.authority_host}: "
                             f"{type(exc).__name__}") from None
        if "access_token" not in result:
            raise _sign_in_failure(result, self._settings)
        return result["access_token"]

    def _is_own_link(self, link: str) -> bool:
        link_parts, api_parts = urlsplit(link), urlsplit(self._api)
        return (link_parts.scheme.lower() == api_parts.scheme.lower()
                and link_parts.netloc.lower() == api_parts.netloc.lower()
                and link_parts.path.lower().startswith(api_parts.path.lower() + "/"))

    def _get(self, url: str, *, params: dict[str, str] | None = None, prefer: str | None = None,
             sync: bool = False) -> dict[str, Any]:
        """GET a Graph URL as JSON, retrying throttling and transient failures."""
        if not self._is_own_link(url):
            raise GraphError(f"Graph вернул ссылку на чужой адрес ({urlsplit(url).netloc}); "
                             "токен туда не отправляется")
        waited, fresh_token = 0.0, False
        for attempt in range(self._max_retries + 1):
            headers = {"Authorization": f"Bearer {self._token(fresh=fresh_token)}",
                       "Accept": "application/json"}
            if prefer:
                headers["Prefer"] = prefer
            self.calls += 1
            try:
                response = self._session.get(url, params=params, headers=headers, timeout=self._timeout)
            except requests.exceptions.SSLError as exc:
                raise GraphError(f"Ошибка TLS при обращении к {self._settings.graph_url}: {exc}. "
                                 "Проверьте сертификаты (REQUESTS_CA_BUNDLE).") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = GraphError(f"Microsoft Graph не ответил ({type(exc).__name__}) "
                                     f"после {attempt + 1} попыток", code="timeout")
                delay = min(MAX_SLEEP_SECONDS, 2.0 ** attempt)
            else:
                if response.status_code < 300:
                    try:
                        return response.json()
                    except ValueError:
                        raise GraphError(f"Microsoft Graph ответил не JSON (HTTP {response.status_code})") from None
                status = response.status_code
                code, text = _error_details(response)
                request_id = response.headers.get("request-id", "")
                if sync and (status == 410 or code.lower() in SYNC_STATE_CODES):
                    raise SyncStateExpired(f"Graph больше не знает ссылку продолжения (HTTP {status} {code})",
                                           status=status, code=code)
                if status == 401 and not fresh_token:
                    fresh_token = True  # the cached token may have been revoked: ask for a new one once
                    failure, delay = self._http_failure(status, code, text, request_id), 0.0
                elif status in THROTTLE_STATUSES:
                    asked = _retry_after(response)
                    delay = min(MAX_SLEEP_SECONDS, 2.0 ** attempt) if asked is None else asked
                    failure = GraphError(
                        f"Microsoft Graph ограничивает запросы (throttling, HTTP {status} {code}) и после "
                        f"{attempt + 1} попыток; почта будет прочитана в следующий раз", status=status, code=code)
                elif status >= 500:
                    delay = min(MAX_SLEEP_SECONDS, 2.0 ** attempt)
                    failure = GraphError(f"Ошибка Microsoft Graph после {attempt + 1} попыток: HTTP {status} "
                                         f"{code}: {text} (request-id {request_id or 'нет'})",
                                         status=status, code=code)
                else:
                    raise self._http_failure(status, code, text, request_id)
            delay = min(delay, MAX_SLEEP_SECONDS)
            if attempt == self._max_retries or waited + delay > self._max_total_wait:
                raise failure
            logger.warning("Graph call failed (%s); retrying in %.1f s, attempt %d of %d",
                           failure.status or failure.code, delay, attempt + 2, self._max_retries + 1)
            if delay > 0:
                self._sleep(delay)
                waited += delay
        raise AssertionError("unreachable: the last attempt raises")

    def _http_failure(self, status: int, code: str, text: str, request_id: str) -> GraphError:
        mailbox = self._settings.outlook_email
        detail = f"HTTP {status} {code}: {text} (request-id {request_id or 'нет'})"
        if status == 401:
            message = f"Microsoft Graph не принял токен приложения: {detail}"
        elif status == 403:
            message = (f"Нет доступа к ящику {mailbox}: {detail}. Приложению нужно разрешение Mail.Read "
                       "(Application) с согласием администратора и доступ к этому ящику в Exchange.")
        elif code.lower() in ("errorinvaliduser", "mailboxnotenabledforrestapi", "resourcenotfound"):
            message = f"Ящик {mailbox} недоступен (OMIS_OUTLOOK_EMAIL): {detail}"
        else:
            message = f"Microsoft Graph отклонил запрос: {detail}"
        return GraphError(message, status=status, code=code)

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
        """Find a folder by display name (case-insensitive) among all pages of a listing."""
        names: list[str] = []
        params: dict[str, str] | None = {"$select": "id,displayName", "$top": "100"}
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
        A second expiry in the same call raises SyncStateExpired.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        calls_before = self.calls
        restarted = False
        link = resume_link
        if link is not None and not self._is_own_link(link):
            logger.warning("The stored resume link is not on %s: reading the look-back window again",
                           self._settings.graph_url)
            link, restarted = None, True
        try:
            messages, next_link, complete = self._read(link, now)
        except SyncStateExpired as exc:
            logger.warning("Graph sync state expired (%s %s): reading the look-back window again",
                           exc.status, exc.code)
            restarted = True
            messages, next_link, complete = self._read(None, now)
        messages.sort(key=lambda m: (m.received, m.graph_id))
        batch = MailBatch(messages, next_link, complete, self.calls - calls_before, restarted)
        logger.info("Read %d message(s) from Graph in %d call(s)%s%s", len(messages), batch.calls,
                    "" if complete else ", more to come", ", restarted from the look-back window"
                    if restarted else "")
        return batch

    def _read(self, link: str | None, now: datetime) -> tuple[list[GraphMessage], str, bool]:
        """Follow pages from link (or a new delta query) until the delta link or the message limit."""
        limit = self._settings.outlook_max_messages
        params: dict[str, str] | None = None
        if link is None:
            since = (now - timedelta(minutes=self._settings.outlook_lookback_minutes)).astimezone(timezone.utc)
            folder_id = self.resolve_folder()
            link = f"{self._mailbox_url}/mailFolders/{quote(folder_id, safe='')}/messages/delta"
            # changeType=created: a message marked read or categorised is not read again.
            params = {"$select": ",".join(MESSAGE_FIELDS),
                      "$filter": f"receivedDateTime ge {since:%Y-%m-%dT%H:%M:%SZ}",
                      "changeType": "created"}
        collected: dict[str, GraphMessage] = {}
        for _ in range(MAX_PAGES_PER_BATCH):
            # Ask for no more than is still allowed, so a batch ends at a page boundary within the limit.
            page_size = max(1, min(MAX_PAGE_SIZE, limit - len(collected)))
            page = self._get(link, params=params, sync=True,
                             prefer=f'outlook.body-content-type="text", odata.maxpagesize={page_size}')
            params = None
            for item in page.get("value", []):
                if "@removed" in item:
                    continue
                message = message_from_graph(item)
                if message is not None:
                    collected.setdefault(message.graph_id, message)
            if page.get("@odata.deltaLink"):
                return list(collected.values()), page["@odata.deltaLink"], True
            if not page.get("@odata.nextLink"):
                raise GraphError("Microsoft Graph не вернул ни @odata.nextLink, ни @odata.deltaLink")
            link = page["@odata.nextLink"]
            if len(collected) >= limit:
                break
        return list(collected.values()), link, False
