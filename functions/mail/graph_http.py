"""Call Microsoft Graph as the app: one HTTP call with retries, throttling and "not before".

`GraphTransport` is what the reader (graph.py) and the sender (graph_send.py) share: the
session, the timeouts, and how a failure is answered:

- 429/503/504 wait exactly as long as `Retry-After` asks (never less), within a budget of
  waiting per client (one client per pass); a wait past that budget raises GraphThrottled
  with `retry_at`, the caller saves it, and a client built with `not_before=retry_at` makes
  no call at all (not even a sign-in) until then;
- a request that may have taken effect (a POST that sends mail) is retried in place only when
  Graph refused it for sure (429, or 401 before a fresh token); after a 5xx or a broken
  connection it raises GraphError with `uncertain=True`, and the caller looks the mail up
  before sending it again.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from ..settings import Settings
from .graph_errors import GraphError, GraphThrottled, SyncStateExpired, parse_not_before, utc_now
from .graph_signin import forget_sign_in_apps, sign_in_app, sign_in_failure

__all__ = ["DEFAULT_TIMEOUT", "GRAPH_VERSION", "GraphError", "GraphThrottled", "GraphTransport",
           "SyncStateExpired", "forget_sign_in_apps", "parse_not_before", "utc_now"]

logger = logging.getLogger(__name__)

GRAPH_VERSION = "v1.0"
# Error codes Graph (and Exchange behind it) use when a skip/delta token can no longer be used.
SYNC_STATE_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid",
                              "errorinvalidsyncstatedata"})
THROTTLE_STATUSES = frozenset({429, 503, 504})
MAX_BACKOFF_SECONDS = 30.0
WAIT_BUDGET_SECONDS = 60.0
DEFAULT_TIMEOUT = (5.0, 30.0)


# -- HTTP ----------------------------------------------------------------------------------

def _retry_after(response: requests.Response, now: datetime) -> float | None:
    """Return the wait Graph asked for, in seconds, or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
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


class GraphTransport:
    """Signed-in calls to Graph for one mailbox: the part the reader and the sender share.

    One client is meant for one pass: `wait_budget` seconds of waiting are spent across all
    its calls. `calls` counts every HTTP attempt to Graph (not the sign-in).
    """

    RETRY_LATER = "запрос будет повторён в следующий раз"

    def __init__(self, settings: Settings, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], datetime] = utc_now,
                 not_before: datetime | None = None, max_retries: int = 4,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 wait_budget: float = WAIT_BUDGET_SECONDS) -> None:
        missing = settings.missing_outlook_settings()
        if missing:
            raise GraphError("Не заданы настройки Outlook: " + ", ".join(missing))
        self._settings = settings
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self.not_before = not_before
        self._max_retries = max(0, max_retries)
        self._timeout = timeout
        self._wait_budget = wait_budget
        self._waited = 0.0
        self._api = f"{settings.graph_url}/{GRAPH_VERSION}"
        self._mailbox_url = f"{self._api}/users/{quote(settings.outlook_email or '', safe='@')}"
        self._scope = f"{settings.graph_url}/.default"
        self.calls = 0

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def _token(self, *, fresh: bool = False) -> str:
        app = sign_in_app(self._settings, self._timeout)
        if fresh:
            app.remove_tokens_for_client()
        try:
            result = app.acquire_token_for_client(scopes=[self._scope])
        except requests.RequestException as exc:
            raise GraphError(f"Нет связи со службой входа {self._settings.authority_host}: "
                             f"{type(exc).__name__}") from None
        if "access_token" not in result:
            raise sign_in_failure(result, self._settings)
        return result["access_token"]

    def _is_own_link(self, link: str) -> bool:
        link_parts, api_parts = urlsplit(link), urlsplit(self._api)
        return (link_parts.scheme.lower() == api_parts.scheme.lower()
                and link_parts.netloc.lower() == api_parts.netloc.lower()
                and link_parts.path.lower().startswith(api_parts.path.lower() + "/"))

    def _throttled(self, wait: float, status: int | None, code: str | None) -> GraphThrottled:
        """Remember the new "not before" and return the error that says so."""
        retry_at = self._clock() + timedelta(seconds=wait)
        if self.not_before is None or retry_at > self.not_before:
            self.not_before = retry_at
        return GraphThrottled(retry_at, wait=wait, zone=self._settings.timezone, status=status, code=code,
                              retry_later=self.RETRY_LATER)

    def _check_not_before(self) -> None:
        if self.not_before is not None:
            left = (self.not_before - self._clock()).total_seconds()
            if left > 0:
                raise GraphThrottled(self.not_before, wait=left, zone=self._settings.timezone,
                                     retry_later=self.RETRY_LATER)

    def _get(self, url: str, *, params: dict[str, str] | None = None, prefer: str | None = None,
             sync: bool = False) -> dict[str, Any]:
        """GET a Graph URL as JSON."""
        response = self._request("GET", url, params=params, prefer=prefer, sync=sync)
        try:
            return response.json()
        except ValueError:
            raise GraphError(f"Microsoft Graph ответил не JSON (HTTP {response.status_code})") from None

    def _request(self, method: str, url: str, *, params: dict[str, str] | None = None,
                 prefer: str | None = None, sync: bool = False, data: bytes | None = None,
                 json_body: Any = None, content_type: str | None = None, safe: bool = True) -> requests.Response:
        """Make one Graph call, retrying what can be retried; return the 2xx response.

        safe=False: the call may take effect even when its answer is lost (sending mail).
        """
        self._check_not_before()
        if not self._is_own_link(url):
            raise GraphError(f"Graph вернул ссылку на чужой адрес ({urlsplit(url).netloc}); "
                             "токен туда не отправляется")
        fresh_token = False
        for attempt in range(self._max_retries + 1):
            headers = {"Authorization": f"Bearer {self._token(fresh=fresh_token)}", "Accept": "application/json"}
            if prefer:
                headers["Prefer"] = prefer
            if content_type:
                headers["Content-Type"] = content_type
            self.calls += 1
            try:
                response = self._session.request(method, url, params=params, headers=headers, data=data,
                                                 json=json_body, timeout=self._timeout)
            except requests.exceptions.SSLError as exc:
                raise GraphError(f"Ошибка TLS при обращении к {self._settings.graph_url}: {exc}. "
                                 "Проверьте сертификаты (REQUESTS_CA_BUNDLE).") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                if not safe:
                    raise GraphError(f"Microsoft Graph не ответил ({type(exc).__name__}): неизвестно, принят ли "
                                     "запрос", code="timeout", uncertain=True) from None
                failure = GraphError(f"Microsoft Graph не ответил ({type(exc).__name__}) "
                                     f"после {attempt + 1} попыток", code="timeout")
                delay = min(MAX_BACKOFF_SECONDS, 2.0 ** attempt)
            else:
                if response.status_code < 300:
                    return response
                failure, delay = self._failure(response, attempt, fresh_token, sync, safe)
                fresh_token = fresh_token or response.status_code == 401
            if attempt == self._max_retries or self._waited + delay > self._wait_budget:
                raise failure
            logger.warning("Graph call failed (%s); retrying in %.1f s, attempt %d of %d",
                           failure.status or failure.code, delay, attempt + 2, self._max_retries + 1)
            if delay > 0:
                self._sleep(delay)
                self._waited += delay
        raise AssertionError("unreachable: the last attempt raises")

    def _failure(self, response: requests.Response, attempt: int, fresh_token: bool, sync: bool,
                 safe: bool) -> tuple[GraphError, float]:
        """Classify an error answer: return it with the wait before a retry, or raise it when none helps."""
        status = response.status_code
        code, text = _error_details(response)
        request_id = response.headers.get("request-id", "")
        if sync and (status == 410 or code.lower() in SYNC_STATE_CODES):
            raise SyncStateExpired(f"Graph больше не знает ссылку продолжения (HTTP {status} {code})",
                                   status=status, code=code)
        if status == 401 and not fresh_token:
            # The cached token may have been revoked: ask for a new one once.
            return self._http_failure(status, code, text, request_id), 0.0
        if status in THROTTLE_STATUSES and (safe or status == 429):
            asked = _retry_after(response, self._clock())
            if asked is not None and self._waited + asked > self._wait_budget:
                raise self._throttled(asked, status, code)
            failure = GraphError(f"Microsoft Graph ограничивает запросы (throttling, HTTP {status} {code}) и после "
                                 f"{attempt + 1} попыток; {self.RETRY_LATER}", status=status, code=code)
            return failure, min(MAX_BACKOFF_SECONDS, 2.0 ** attempt) if asked is None else asked
        if status >= 500:
            failure = GraphError(f"Ошибка Microsoft Graph после {attempt + 1} попыток: HTTP {status} {code}: "
                                 f"{text} (request-id {request_id or 'нет'})", status=status, code=code,
                                 detail=text, uncertain=not safe)
            if not safe:
                asked = _retry_after(response, self._clock())
                if asked:  # the next pass waits as asked, and looks for the mail before sending it again
                    throttled = self._throttled(asked, status, code)
                    throttled.uncertain = True
                    raise throttled
                raise failure
            return failure, min(MAX_BACKOFF_SECONDS, 2.0 ** attempt)
        raise self._http_failure(status, code, text, request_id)

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
        return GraphError(message, status=status, code=code, detail=text)
